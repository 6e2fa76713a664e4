// The troubleshooting checks against the test run's local target, broken on purpose: sshd stopped, the volume
// unmounted, the volume filled past 90 %, a private key readable by others, a wrong pinned host key. Each
// test asserts that the diagnosis names the cause, and puts back what it broke (finally), so the target is
// left healthy; the last test proves that.
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseUsage } from '../../scripts/lib/core/btrfs-output.js';
import {
  LOCAL_ENV_FILE,
  REPO_ROOT,
  readConnection,
  writeConnection,
  type Connection,
} from '../../scripts/lib/core/connection.js';
import { MOUNT_POINT } from '../../user-data/host-layout.js';
import { allPassed, runChecks } from '../../scripts/lib/diagnose/checks.js';
import { execInTarget, sshBanner } from '../../scripts/lib/local-target/local-target.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';

jest.setTimeout(180_000);

const envFile = process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE;
const conn = readConnection(envFile);
const port = conn.port;
let tmp: string;

function inTarget(...argv: string[]) {
  const r = execInTarget(argv, { timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in the target failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor<T>(fn: () => Promise<T> | T, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

const results = async (c: Connection, names: string[]) =>
  (await runChecks(c, names, { lines: 20 })).flatMap((x) => x.results);
const find = (rs: any[], re: RegExp) => {
  const r = rs.find((x) => re.test(x.name));
  if (!r) throw new Error(`no test matching ${re} in: ${rs.map((x) => x.name).join(' | ')}`);
  return r;
};
/** A copy of the connection in a temp env file, with some keys replaced. */
function tempConn(over: Partial<Connection>) {
  const file = path.join(tmp, `conn-${Math.random().toString(16).slice(2)}.env`);
  writeConnection(file, { ...conn, ...over });
  return readConnection(file);
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'troubleshoot-it-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('troubleshoot against the local target', () => {
  it('healthy: check-all passes through the CLI, check-aws is not applicable, exit 0', () => {
    const r = spawnSync(
      path.join(REPO_ROOT, 'node_modules', '.bin', 'zx'),
      [path.join(REPO_ROOT, 'scripts', 'troubleshoot.mjs'), 'check-all', '--env', envFile, '--json'],
      { encoding: 'utf8', timeout: 120_000 },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ ok: true, failed: 0, skipped: 1 });
    const all = j.checks.flatMap((c: any) => c.results);
    expect(find(all, /refuses a forbidden command/).detail).toMatch(/exit 255, rejected:/);
    expect(find(all, /boot script log/).detail).toMatch(/^SUCCESS/);
    expect(find(all, /device stats/).ok).toBe(true);
  });

  it('sshd stopped: "connection refused … sshd is stopped", and check-logs says where the log is', async () => {
    inTarget('systemctl', 'stop', 'ssh.service');
    try {
      await waitFor(async () => !(await sshBanner(port, { timeoutMs: 1000 })), 'sshd to stop');
      const rs = await results(conn, ['check-ssh', 'check-volume', 'check-logs']);
      expect(find(rs, /^TCP/)).toMatchObject({
        ok: false,
        cause: expect.stringMatching(/connection refused: nothing listens on port \d+ \(sshd is stopped/),
      });
      expect(find(rs, /reach the volume/)).toMatchObject({ ok: false, next: expect.stringMatching(/check-ssh/) });
      expect(find(rs, /logs through the SSH gate/)).toMatchObject({
        ok: false,
        cause: expect.stringMatching(/nothing accepts SSH connections/),
      });
      // without SSH, the local target's kept boot output stands in for the EC2 console
      expect(find(rs, /local target boot output/)).toMatchObject({
        ok: true,
        detail: expect.stringMatching(/^SUCCESS/),
      });
    } finally {
      inTarget('systemctl', 'start', 'ssh.service');
      await waitFor(() => sshBanner(port, { timeoutMs: 1000 }), 'sshd to answer again');
    }
  });

  it('volume unmounted: "nothing is mounted at /backup_volume" and the backup root is missing', async () => {
    const [source, options] = inTarget('findmnt', '-n', '-o', 'SOURCE,OPTIONS', '--mountpoint', MOUNT_POINT)
      .trim()
      .split(/\s+/);
    // a transfer still finishing (another test's btrfs receive) keeps the mount busy for a moment
    await waitFor(
      () => execInTarget(['umount', MOUNT_POINT]).status === 0,
      `umount ${MOUNT_POINT} (target busy)`,
      60_000,
    );
    try {
      const rs = await results(conn, ['check-volume']);
      expect(find(rs, /mounted at \/backup_volume/)).toMatchObject({
        ok: false,
        cause: `nothing is mounted at ${MOUNT_POINT}`,
        next: expect.stringMatching(/detached or its mount failed/),
      });
      expect(find(rs, /backup root/)).toMatchObject({
        ok: false,
        cause: expect.stringMatching(/does not exist \(the volume is not mounted\)/),
      });
      // check-ssh's btrbk command fails too, and says why
      expect(find(await results(conn, ['check-ssh']), /btrbk command/).ok).toBe(false);
    } finally {
      const again = execInTarget(['mount', MOUNT_POINT]);
      if (again.status !== 0)
        inTarget(
          'mount',
          '-o',
          options
            .split(',')
            .filter((o) => !/^subvol/.test(o))
            .join(','),
          source,
          MOUNT_POINT,
        );
      expect(execInTarget(['mountpoint', '-q', MOUNT_POINT]).status).toBe(0);
    }
  });

  it('volume filled past 90 %: a warning that names the percentage (and still passes)', async () => {
    const { used, free } = parseUsage(inTarget('btrfs', 'filesystem', 'usage', '-b', MOUNT_POINT))!;
    const fill = Math.floor((used + free) * 0.94 - used);
    const file = `${MOUNT_POINT}/troubleshoot-fill-${process.pid}`;
    try {
      // inside try: a failed fallocate can leave an empty file behind
      inTarget('fallocate', '-l', String(fill), file);
      inTarget('btrfs', 'filesystem', 'sync', MOUNT_POINT);
      const rs = await results(conn, ['check-volume']);
      const u = find(rs, /usage below 90 %/);
      expect(u).toMatchObject({
        ok: true,
        warn: true,
        cause: expect.stringMatching(/^the volume is 9\d\.\d % full$/),
        next: expect.stringMatching(/prune old backups|grow the volume/),
      });
      expect(rs.filter((x) => !x.ok)).toEqual([]);
    } finally {
      execInTarget(['rm', '-f', file]);
      execInTarget(['btrfs', 'filesystem', 'sync', MOUNT_POINT]);
    }
    expect(find(await results(conn, ['check-volume']), /usage/).warn).toBeFalsy();
  });

  it('private key readable by others: "mode 0644 … UNPROTECTED PRIVATE KEY FILE", and OpenSSH indeed refuses it', async () => {
    const key = path.join(tmp, 'key-0644');
    fs.copyFileSync(conn.keyFile, key);
    fs.chmodSync(key, 0o644);
    const c = tempConn({ keyFile: key });
    const t = find(await results(c, ['check-ssh']), /private key file permissions/);
    expect(t).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/mode 0644: group or others can read it.*UNPROTECTED PRIVATE KEY FILE/),
      next: `chmod 600 ${key}`,
    });
    const viaCli = await runRemote(c, 'btrbk-diag version');
    expect(viaCli.status).toBe(255);
    expect(viaCli.stderr).toMatch(/UNPROTECTED PRIVATE KEY FILE/);
  });

  it('wrong pinned host key: "does NOT match the pinned key", nothing sent; OpenSSH refuses too', async () => {
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(tmp, 'impostor')]);
    const [type, blob] = fs.readFileSync(path.join(tmp, 'impostor.pub'), 'utf8').split(' ');
    const kh = path.join(tmp, 'known_hosts-wrong');
    fs.writeFileSync(kh, `[127.0.0.1]:${port} ${type} ${blob}\n`);
    const c = tempConn({ knownHostsFile: kh });
    const rs = await results(c, ['check-ssh']);
    expect(rs.at(-1)).toMatchObject({
      name: 'host key matches the pinned key',
      ok: false,
      cause: expect.stringMatching(
        /does NOT match the pinned key: not connecting: the host was replaced .*possible man-in-the-middle/,
      ),
      detail: expect.stringMatching(/offered: {2}ssh-ed25519 SHA256:.*\npinned: {3}ssh-ed25519 SHA256:/),
    });
    expect(rs.find((x) => /key accepted/.test(x.name))).toBeUndefined();
    const viaCli = await runRemote(c, 'btrbk-diag version');
    expect(viaCli.status).toBe(255);
    expect(viaCli.stderr).toMatch(/Host key verification failed/);
  });

  it('the target is left healthy', async () => {
    const out = await runChecks(conn, ['check-all'], { lines: 5 });
    expect(out.flatMap((c) => c.results).filter((r) => !r.ok || r.warn)).toEqual([]);
    expect(allPassed(out)).toBe(true);
  });
});
