// The troubleshoot entry point: as a person runs it (exit status, the pass/fail lines), and through the same runner
// in-process (--json, refused command lines; scripts.test.ts runs the script without a connection file). No
// network: the connection file points at a closed loopback port and a local-* instance (so check-aws makes no AWS
// call).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { TROUBLESHOOT } from '../../scripts/lib/cli/entries/checks.js';
import { runEntry, scriptProg } from '../../scripts/lib/cli/runner.js';
import { REPO_ROOT, writeConnection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

const zx = path.join(REPO_ROOT, 'node_modules', '.bin', 'zx');
const { FORCE_COLOR: _ignored, ...baseEnv } = process.env;
const run = (args: string[]) =>
  spawnSync(zx, [path.join(REPO_ROOT, 'scripts', 'troubleshoot.mjs'), ...args], {
    encoding: 'utf8',
    env: { ...baseEnv, NO_COLOR: '1' },
    timeout: 60000,
  });
/** The same command line through the runner in-process: exit status and output, or the message a person sees. */
const runHere = async (args: string[]) => {
  const text = { stdout: '', stderr: '' };
  const io = { stdout: new PassThrough(), stderr: new PassThrough(), env: { NO_COLOR: '1' } };
  io.stdout.on('data', (d: Buffer) => (text.stdout += d.toString()));
  io.stderr.on('data', (d: Buffer) => (text.stderr += d.toString()));
  try {
    return { status: await runEntry(TROUBLESHOOT, args, scriptProg('troubleshoot'), io), ...text };
  } catch (err) {
    if (!(err instanceof OperatorError)) throw err;
    return { status: err.exitCode, stdout: text.stdout, stderr: `${err.format()}\n` };
  }
};

describe('scripts/troubleshoot.mjs', () => {
  let dir: string;
  let env: string;
  let port: number;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'troubleshoot-'));
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'key')]);
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const pub = fs.readFileSync(path.join(dir, 'key.pub'), 'utf8').split(' ');
    fs.writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${pub[0]} ${pub[1]}\n`);
    env = writeConnection(path.join(dir, 'test.env'), {
      host: '127.0.0.1',
      user: 'btrbk',
      keyFile: path.join(dir, 'key'),
      targetUrl: `ssh://127.0.0.1${BACKUP_ROOT}/`,
      backupRoot: BACKUP_ROOT,
      instanceId: 'local-unit-test',
      volumeId: 'vol-0123456789abcdef0',
      region: 'local',
      port: port,
      knownHostsFile: path.join(dir, 'known_hosts'),
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('nothing listening: exit 1, the failed test with its cause and next step, the closing line', () => {
    const r = run(['check-all', '--env', env]);
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`FAIL {2}TCP 127\\.0\\.0\\.1:${port} reachable`));
    expect(r.stdout).toMatch(/cause: connection refused: nothing listens on port/);
    expect(r.stdout).toMatch(/next: {2}read the boot log/);
    expect(r.stdout).toMatch(/SKIP {2}AWS instance and volume {2}not applicable/);
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ passed, [1-9]\d* failed, 1 not applicable$/);
    expect(r.stderr).toBe('');
  });

  it('--json prints the same results as data', async () => {
    const r = await runHere(['check-ssh', '--env', env, '--json']);
    expect(r.status).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(false);
    expect(j.checks[0].check).toBe('check-ssh');
    expect(j.checks[0].results.find((t: any) => /^TCP/.test(t.name))).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/connection refused/),
    });
  });

  it('explains an unknown check, a bad --lines and a missing connection file', async () => {
    let r = await runHere(['check-disk', '--env', env]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /✗ unknown check "check-disk"\n {2}next: {2}use one of: check-ssh, check-volume, check-aws, check-logs, check-all/,
    );
    r = await runHere(['check-logs', '--env', env, '--lines', 'many']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--lines many is not a number/);
    r = await runHere(['check-ssh', '--env', path.join(dir, 'nope.env')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no connection file at/);
  });
});

describe('report formatting', () => {
  it('colours only when asked: a TTY without NO_COLOR, or FORCE_COLOR', async () => {
    const { formatResult, useColor } = await import('../../scripts/lib/core/report.js');
    expect(useColor({ isTTY: true }, {})).toBe(true);
    expect(useColor({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(useColor({ isTTY: false }, {})).toBe(false);
    expect(useColor({ isTTY: false }, { FORCE_COLOR: '1' })).toBe(true);
    const failed = { name: 't', ok: false, detail: 'd', cause: 'c', next: 'n' };
    expect(formatResult(failed, { color: true })).toContain('\x1b[31mFAIL\x1b[39m');
    expect(formatResult(failed)).toBe('  FAIL  t  d\n        cause: c\n        next:  n');
    expect(formatResult({ name: 'w', ok: true, warn: true, cause: 'c', next: 'n' })).toMatch(
      /^ {2}WARN {2}w\n {8}cause: c/,
    );
    expect(formatResult({ name: 'l', ok: true, output: 'x\ny' })).toBe('  PASS  l\n        │ x\n        │ y');
  });
});
