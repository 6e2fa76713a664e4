import { createHmac, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  classifyConnectError,
  connectSsh,
  fingerprint,
  knownHostsName,
  makeHostVerifier,
  pinnedKeys,
  probeTcp,
  readPinnedKeys,
  sshArgs,
  sshParams,
} from '../../scripts/lib/remote/ssh.js';
import type { Connection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { sampleConnection } from '../support/connection-fixture.js';

/** A syntactically real ssh-ed25519 key blob (type string + 32 bytes). */
function edBlob(seed = randomBytes(32)): Buffer {
  const t = Buffer.from('ssh-ed25519');
  const len = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  return Buffer.concat([len(t.length), t, len(32), seed]);
}

const pinnedBlob = edBlob();
const otherBlob = edBlob();

const conn = (over: Partial<Connection> = {}) => sampleConnection({ port: 2222, ...over });

describe('ssh: pinned host keys', () => {
  it('matches OpenSSH fingerprints (ssh-keygen -lf)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssh-fp-'));
    try {
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
      const pub = fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').split(' ');
      const lf = spawnSync('ssh-keygen', ['-lf', path.join(dir, 'k.pub')], { encoding: 'utf8' }).stdout.split(' ')[1];
      expect(fingerprint(pub[1])).toBe(lf);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds the key pinned for [host]:port, not the one for the bare host or other hosts', () => {
    const text = [
      `203.0.113.7 ssh-ed25519 ${otherBlob.toString('base64')}`,
      `# comment`,
      `[203.0.113.7]:2222 ssh-ed25519 ${pinnedBlob.toString('base64')} pinned`,
      `@revoked [203.0.113.7]:2222 ssh-ed25519 ${otherBlob.toString('base64')}`,
      `[198.51.100.1]:2222 ssh-ed25519 ${otherBlob.toString('base64')}`,
    ].join('\n');
    const keys = pinnedKeys(text, '203.0.113.7', 2222);
    expect(keys.map((k) => k.blob)).toEqual([pinnedBlob.toString('base64')]);
    expect(pinnedKeys(text, '203.0.113.7', 22).map((k) => k.blob)).toEqual([otherBlob.toString('base64')]);
    expect(knownHostsName('h', 22)).toBe('h');
    expect(knownHostsName('h', '2222')).toBe('[h]:2222');
  });

  it('understands hashed known_hosts entries (HashKnownHosts yes)', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[203.0.113.7]:2222').digest('base64');
    const text = `|1|${salt.toString('base64')}|${hash} ssh-ed25519 ${pinnedBlob.toString('base64')}\n`;
    expect(pinnedKeys(text, '203.0.113.7', 2222)).toHaveLength(1);
    expect(pinnedKeys(text, '203.0.113.8', 2222)).toHaveLength(0);
  });

  it('explains an empty known_hosts setting, a missing file and a file without this host', () => {
    expect(() => readPinnedKeys(conn({ knownHostsFile: '' }))).toThrow(/pins no host key/);
    const enoent = () => {
      throw Object.assign(new Error('nope'), { code: 'ENOENT' });
    };
    expect(() => readPinnedKeys(conn(), { readFile: enoent })).toThrow(/cannot read the pinned host key file/);
    try {
      readPinnedKeys(conn(), { readFile: () => `other ssh-ed25519 ${pinnedBlob.toString('base64')}\n` });
      throw new Error('expected an error');
    } catch (e) {
      expect((e as OperatorError).what).toMatch(/pins no key for \[203\.0\.113\.7\]:2222/);
      expect((e as OperatorError).next).toMatch(/re-run setup/);
    }
  });

  it('the host verifier accepts only the pinned key and records what was offered', () => {
    const { verifier, state } = makeHostVerifier(
      pinnedKeys(`[h]:2222 ssh-ed25519 ${pinnedBlob.toString('base64')}`, 'h', 2222),
    );
    expect(verifier(otherBlob)).toBe(false);
    expect(state.matched).toBe(false);
    expect(state.offered).toEqual({ keyType: 'ssh-ed25519', fingerprint: fingerprint(otherBlob) });
    expect(verifier(pinnedBlob)).toBe(true);
    expect(state.matched).toBe(true);
  });
});

describe('ssh: connecting with node-ssh (fake client)', () => {
  const known = `[203.0.113.7]:2222 ssh-ed25519 ${pinnedBlob.toString('base64')}\n`;
  const fakeClient = (offered: Buffer, after: (cfg: any) => void) =>
    class {
      config: any;
      async connect(cfg: any) {
        this.config = cfg;
        if (!cfg.hostVerifier(offered)) throw new Error('Host denied (verification failed)');
        after(cfg);
      }
      dispose() {}
    };

  it('passes the pinned-key verifier, the key path, user and port to node-ssh', async () => {
    let seen: any;
    const { hostKey } = await connectSsh(conn(), {
      readFile: () => known,
      NodeSSHClass: fakeClient(pinnedBlob, (c) => (seen = c)) as any,
    });
    expect(seen).toMatchObject({
      host: '203.0.113.7',
      port: 2222,
      username: 'btrbk',
      privateKeyPath: '/keys/id_ed25519',
      tryKeyboard: false,
    });
    expect(hostKey?.fingerprint).toBe(fingerprint(pinnedBlob));
  });

  it('a different host key is its own diagnosis, naming both fingerprints', async () => {
    await expect(
      connectSsh(conn(), { readFile: () => known, NodeSSHClass: fakeClient(otherBlob, () => {}) as any }),
    ).rejects.toMatchObject({
      kind: 'host-key-mismatch',
      what: expect.stringMatching(/does NOT match the pinned key/),
      details: expect.stringContaining(fingerprint(otherBlob)),
    });
  });

  it('classifies refused, timeout, auth and key-file errors with a next step each', () => {
    const c = conn();
    const kinds = [
      [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'refused', /sshd is not running/],
      [
        Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }),
        'timeout',
        /security group|stopped/,
      ],
      [
        Object.assign(new Error('All configured authentication methods failed'), { level: 'client-authentication' }),
        'auth',
        /not the key/,
      ],
      [new Error('Cannot parse privateKey: Unsupported key format'), 'key-file', /Cannot parse/],
      [Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' }), 'dns', /ENOTFOUND/],
    ] as const;
    for (const [err, kind, text] of kinds) {
      const r = classifyConnectError(err, c);
      expect(r.kind).toBe(kind);
      expect(`${r.error.what} ${r.error.likelyCause}`).toMatch(text);
      expect(r.error.next).not.toBe('');
    }
  });

  it('probeTcp says refused for a closed loopback port', async () => {
    const srv = await import('node:net').then((net) => net.createServer());
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as any).port;
    await new Promise<void>((r) => srv.close(() => r()));
    expect(await probeTcp('127.0.0.1', port)).toMatchObject({ ok: false, code: 'ECONNREFUSED' });
  });
});

describe('ssh: the OpenSSH argv for pipelines', () => {
  it('pins the host key strictly, uses only the backup key, never prompts', () => {
    const a = sshArgs(conn({ knownHostsFile: '/pins/known hosts' }));
    const opts = a.filter((_, i) => a[i - 1] === '-o');
    expect(opts).toEqual(
      expect.arrayContaining([
        'UserKnownHostsFile="/pins/known hosts"',
        'GlobalKnownHostsFile=/dev/null',
        'StrictHostKeyChecking=yes',
        'BatchMode=yes',
        'IdentitiesOnly=yes',
      ]),
    );
    expect(a.slice(0, 4)).toEqual(['-i', '/keys/id_ed25519', '-p', '2222']);
    expect(a.at(-1)).toBe('btrbk@203.0.113.7');
  });

  it('OpenSSH itself parses the argv (ssh -G) with the values we meant', () => {
    const r = spawnSync('ssh', ['-G', ...sshArgs(conn({ knownHostsFile: '/pins/known hosts' }))], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^stricthostkeychecking true$/m);
    expect(r.stdout).toMatch(/^userknownhostsfile "?\/pins\/known hosts"?$/m);
    expect(r.stdout).toMatch(/^port 2222$/m);
    expect(r.stdout).toMatch(/^batchmode yes$/m);
  });

  it('refuses host and user values that ssh would read as options', () => {
    expect(() => sshParams(conn({ host: '-oProxyCommand=touch /tmp/x' }))).toThrow(OperatorError);
    expect(() => sshParams(conn({ user: '-x' }))).toThrow(OperatorError);
    expect(() => sshArgs(conn({ knownHostsFile: '' }))).toThrow(/pins no host key/);
  });
});
