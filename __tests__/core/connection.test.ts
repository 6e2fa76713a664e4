import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  CONNECTION_KEYS,
  connectionFromEnv,
  connectionToEnv,
  formatConnection,
  parseEnvText,
  readConnection,
  resolveEnvFile,
  writeConnection,
  REQUIRED_KEYS,
  isLocalTarget,
  type Connection,
} from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

const sample: Connection = {
  host: '203.0.113.7',
  port: 22,
  user: 'btrbk',
  keyFile: "/home/o'brien/.ssh/btrbk aws",
  knownHostsFile: '/tmp/known hosts',
  targetUrl: `ssh://btrbk@203.0.113.7${BACKUP_ROOT}/`,
  backupRoot: BACKUP_ROOT,
  instanceId: 'i-0123456789abcdef0',
  volumeId: 'vol-0123456789abcdef0',
  region: 'us-west-1',
};

/** A file as setup wrote it before the connection was typed (the format has not changed), by hand. */
const SETUP_FILE = `# Written by scripts/setup.mjs; read by every script in scripts/.
BTRBK_AWS_HOST='203.0.113.7'
BTRBK_AWS_USER='btrbk'
BTRBK_AWS_SSH_KEY='/home/o'\\''brien/.ssh/btrbk aws'
BTRBK_AWS_TARGET='ssh://btrbk@203.0.113.7${BACKUP_ROOT}/'
BTRBK_AWS_PATH='${BACKUP_ROOT}/'
BTRBK_AWS_INSTANCE_ID='i-0123456789abcdef0'
BTRBK_AWS_VOLUME_ID='vol-0123456789abcdef0'
BTRBK_AWS_REGION='us-west-1'
BTRBK_AWS_KNOWN_HOSTS='/tmp/known hosts'
MY_NOTE='added by hand'
lower_case=1
`;

describe('connection file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conn-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes the seed keys in order, then the port and known_hosts, mode 0600', () => {
    const file = writeConnection(path.join(dir, 'aws_connection.env'), sample);
    const keys = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^[A-Z]/.test(l))
      .map((l) => l.split('=')[0]);
    expect(keys).toEqual([...REQUIRED_KEYS, 'BTRBK_AWS_SSH_PORT', 'BTRBK_AWS_KNOWN_HOSTS']);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('round-trips values with quotes and spaces, and a POSIX shell sources the same values', () => {
    const file = writeConnection(path.join(dir, 'c.env'), sample);
    expect(readConnection(file)).toEqual(sample);
    const sh = spawnSync('sh', ['-c', '. "$1" && printf %s "$BTRBK_AWS_SSH_KEY"', 'sh', file], { encoding: 'utf8' });
    expect(sh.stdout).toBe(sample.keyFile);
  });

  it('reads a file in the format setup has always written into typed fields, with the port defaulted', () => {
    const file = path.join(dir, 'aws_connection.env');
    fs.writeFileSync(file, SETUP_FILE);
    expect(readConnection(file)).toEqual({ ...sample, extra: { MY_NOTE: 'added by hand', lower_case: '1' } });
  });

  it('writes back the keys it does not know, after its own, and reads the same connection again', () => {
    const file = path.join(dir, 'aws_connection.env');
    fs.writeFileSync(file, SETUP_FILE);
    const conn = readConnection(file);
    writeConnection(file, { ...conn, port: 2222 });
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toMatch(
      /^BTRBK_AWS_SSH_PORT='2222'\nBTRBK_AWS_KNOWN_HOSTS='\/tmp\/known hosts'\nMY_NOTE='added by hand'\nlower_case='1'\n$/m,
    );
    expect(readConnection(file)).toEqual({ ...conn, port: 2222 });
  });

  it('names every field by its key in one table, and the KEY -> value form round-trips', () => {
    expect(Object.values(CONNECTION_KEYS).slice(0, REQUIRED_KEYS.length)).toEqual([...REQUIRED_KEYS]);
    const env = connectionToEnv({ ...sample, extra: { X_Y: 'z' } });
    expect(env).toMatchObject({ BTRBK_AWS_SSH_KEY: sample.keyFile, BTRBK_AWS_SSH_PORT: '22', X_Y: 'z' });
    expect(connectionFromEnv(env)).toEqual({ ...sample, extra: { X_Y: 'z' } });
  });

  it('reads bare and double-quoted values and ignores comments', () => {
    expect(parseEnvText('# c\nA=b # note\nexport B="x \\"y\\""\n')).toEqual({ A: 'b', B: 'x "y"' });
  });

  it('names the missing keys and the next step', () => {
    fs.writeFileSync(path.join(dir, 'bad.env'), "BTRBK_AWS_HOST='h'\n");
    expect(() => readConnection(path.join(dir, 'bad.env'))).toThrow(/lacks BTRBK_AWS_USER, BTRBK_AWS_SSH_KEY/);
    expect(() => writeConnection(path.join(dir, 'w.env'), { ...sample, user: '' })).toThrow(/lacks BTRBK_AWS_USER$/);
    expect(fs.existsSync(path.join(dir, 'w.env'))).toBe(false);
  });

  it('refuses a malformed line and a bad port', () => {
    expect(() => parseEnvText('this is not a setting')).toThrow(OperatorError);
    fs.writeFileSync(path.join(dir, 'p.env'), formatConnection(sample).replace("SSH_PORT='22'", "SSH_PORT='70000'"));
    expect(() => readConnection(path.join(dir, 'p.env'))).toThrow(/BTRBK_AWS_SSH_PORT=70000 is not a TCP port/);
    expect(() => writeConnection(path.join(dir, 'q.env'), { ...sample, port: 0 })).toThrow(/not a TCP port/);
  });

  it('points at setup and the local target when the file is absent', () => {
    try {
      readConnection(path.join(dir, 'nope.env'));
      throw new Error('expected an error');
    } catch (e) {
      expect(e).toBeInstanceOf(OperatorError);
      expect((e as OperatorError).next).toMatch(/local-target\.mjs up/);
    }
  });

  it('chooses --env, then BTRBK_ENV_FILE, then aws_connection.env', () => {
    expect(resolveEnvFile('x.env', { BTRBK_ENV_FILE: 'y.env' })).toBe(path.resolve('x.env'));
    expect(resolveEnvFile(undefined, { BTRBK_ENV_FILE: 'y.env' })).toBe(path.resolve('y.env'));
    expect(resolveEnvFile(undefined, {})).toMatch(/aws_connection\.env$/);
  });

  it('tells the local target from AWS by its instance id', () => {
    expect(isLocalTarget(sample)).toBe(false);
    expect(isLocalTarget({ ...sample, instanceId: 'local-target' })).toBe(true);
  });
});
