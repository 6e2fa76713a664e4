// `setup --target local --yes` end to end against the running local target (the shared one: `up` is idempotent;
// this test never takes it down), then the btrbk.conf it prints, used by the real btrbk client with the ssh
// config block it prints, in a dry run against the target (read-only on the target).
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isLocalTarget, readConnection, REPO_ROOT, type Connection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';
import { readKnownHosts } from '../../scripts/lib/remote/host-key.js';
import { renderBtrbkConf, sshConfigBlock } from '../../scripts/lib/deploy/btrbk-conf.js';
import { createSubvolume, withScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';

jest.setTimeout(15 * 60_000);

const ZX = path.join(REPO_ROOT, 'node_modules', 'zx', 'build', 'cli.js');
const setup = (...args: string[]) => {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [ZX, 'scripts/setup.mjs', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 14 * 60_000,
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  return { ...r, seconds: (Date.now() - t0) / 1000 };
};

interface SetupJson {
  target: string;
  envFile: string;
  connection: Connection;
  hostKey: { fingerprint: string; file: string };
  smoke: {
    ok: boolean;
    passed: number;
    failed: number;
    checks: { check: string; results: { name: string; ok: boolean }[] }[];
  };
  btrbkConf: string;
}

describe('setup --target local (real local target, real SSH gate)', () => {
  let first: ReturnType<typeof setup>;
  let result: SetupJson;

  beforeAll(() => {
    first = setup('--target', 'local', '--yes', '--json');
    if (first.status !== 0) throw new Error(`setup failed (exit ${first.status}):\n${first.stderr}\n${first.stdout}`);
    result = JSON.parse(first.stdout) as SetupJson;
  });

  test('exits 0 after every step, printing progress on stderr', () => {
    expect(first.status).toBe(0);
    for (const step of ['[1/4] Prerequisites', '[2/4] Local target up', '[3/4] Pinned host key', '[4/4] Smoke tests']) {
      expect(first.stderr).toContain(step);
    }
  });

  test('the smoke tests ran (check-ssh and check-volume through the troubleshoot library) and passed', () => {
    expect(result.smoke.checks.map((c) => c.check)).toEqual(['check-ssh', 'check-volume']);
    expect(result.smoke.failed).toBe(0);
    expect(result.smoke.passed).toBeGreaterThanOrEqual(8);
    const names = result.smoke.checks.flatMap((c) => c.results.map((r) => r.name)).join('\n');
    expect(names).toMatch(/gate refuses a forbidden command/);
    expect(names).toMatch(/btrfs/);
    expect(first.stderr).toMatch(/smoke tests: \d+ passed, 0 failed/);
  });

  test('the connection file validates and describes the local target, with a pinned key the target really offers', () => {
    const conn = readConnection(result.envFile);
    expect(isLocalTarget(conn)).toBe(true);
    expect(conn).toEqual(result.connection);
    const pinned = readKnownHosts(conn.knownHostsFile).map((k) => k.fingerprint);
    expect(pinned).toContain(result.hostKey.fingerprint);
    const scan = spawnSync('ssh-keyscan', ['-t', 'ed25519', '-p', String(conn.port), conn.host], {
      encoding: 'utf8',
    });
    const offered = spawnSync('ssh-keygen', ['-lf', '-'], { input: scan.stdout, encoding: 'utf8' }).stdout;
    expect(offered).toContain(result.hostKey.fingerprint);
  });

  test('a second run is safe: nothing to do, smoke tests run again, same result', () => {
    const again = setup('--target', 'local', '--yes', '--json');
    expect(again.status).toBe(0);
    const r = JSON.parse(again.stdout) as SetupJson;
    expect(r.smoke).toMatchObject({ ok: true, failed: 0 });
    expect(r.hostKey.fingerprint).toBe(result.hostKey.fingerprint);
    expect(r.connection).toEqual(result.connection);
  });

  test('without --json it prints the next steps and the btrbk.conf', () => {
    const plain = setup('--target', 'local', '--yes');
    expect(plain.status).toBe(0);
    expect(plain.stdout).toContain('Next steps');
    expect(plain.stdout).toMatch(/^ssh_user\s+btrbk$/m);
    expect(plain.stdout).toContain(`target send-receive ssh://127.0.0.1:${result.connection.port}${BACKUP_ROOT}`);
  });

  test('an unknown option (a mistyped safety flag) is refused before anything runs', () => {
    const r = setup('--target', 'local', '--allow-data-volume-replace');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown option --allow-data-volume-replace/);
    expect(r.stderr).not.toContain('[1/4]');
  });

  test('the printed btrbk.conf and ssh config block work with the real btrbk client: dryrun against the target', async () => {
    await withScratchBtrfs(
      { sizeMiB: 256, label: 'setup-it' },
      async (scratch: { mountpoint: string; path: (...p: string[]) => string }) => {
        await createSubvolume(scratch.path('home'));
        fs.writeFileSync(scratch.path('home', 'hello.txt'), 'hello\n');
        fs.mkdirSync(scratch.path('btrbk_snapshots'));
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'setup-btrbk-'));
        try {
          const conf = path.join(dir, 'btrbk.conf');
          fs.writeFileSync(conf, renderBtrbkConf(result.connection, { volume: scratch.mountpoint, subvolume: 'home' }));
          // btrbk has no ssh option for known_hosts: the person adds the printed block to ~/.ssh/config. Here an
          // `ssh` wrapper on PATH passes the same block with -F, so the user's real ~/.ssh/config is untouched.
          fs.writeFileSync(path.join(dir, 'ssh_config'), `${sshConfigBlock(result.connection)}\n    BatchMode yes\n`);
          fs.writeFileSync(
            path.join(dir, 'ssh'),
            `#!/bin/sh\necho "$*" >> ${dir}/ssh.log\nexec /usr/bin/ssh -F ${dir}/ssh_config "$@"\n`,
            { mode: 0o755 },
          );
          const r = spawnSync('btrbk', ['-c', conf, 'dryrun'], {
            encoding: 'utf8',
            env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
          });
          expect(r.stderr).not.toMatch(/ERROR/);
          expect(r.status).toBe(0);
          // first backup: a full (non-incremental) send to the target, planned after reading the target's subvolumes
          expect(r.stdout).toMatch(
            new RegExp(`\\*\\*\\* 127\\.0\\.0\\.1\\[${result.connection.port}\\]:${BACKUP_ROOT}/home\\.\\d{8}T\\d{4}`),
          );
          expect(fs.readFileSync(path.join(dir, 'ssh.log'), 'utf8')).toMatch(
            new RegExp(`-p ${result.connection.port} (-c \\S+ )?-i \\S+ btrbk@127\\.0\\.0\\.1 .*btrfs`),
          );
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  });
});
