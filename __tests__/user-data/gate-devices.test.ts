// A key per device (issue 20): with --device NAME (or sshd's ExposeAuthInfo naming NAME's key in the host's
// registry) the gate's root is backups/NAME. Every command btrbk sends is accepted inside it, the same command on the
// other device's directory or on the backup root is refused, `subvolume list` and `show` say nothing of the other
// devices, whole-volume diagnostics are refused, and the receive is confined with --device NAME (btrbk-receive's -m).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ACCEPTED,
  GATE,
  loadAttacks,
  R,
  SUDOERS,
  dryRun,
  makeSandbox,
  runInSandbox,
  type GateResult,
  type Sandbox,
} from './gate-harness.js';

const KEY_A = 'AAAAC3NzaC1lZDI1NTE5AAAAIAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const KEY_B = 'AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const KEY_LEGACY = 'AAAAC3NzaC1lZDI1NTE5AAAAILllllllllllllllllllllllllllllllllllllllllll';
const KEY_GONE = 'AAAAC3NzaC1lZDI1NTE5AAAAIGgggggggggggggggggggggggggggggggggggggggggg';

let tmp: string;
let registry: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-devices-'));
  registry = path.join(tmp, 'devices');
  fs.writeFileSync(
    registry,
    `# test registry\nlegacy ${KEY_LEGACY}\ndevice a ${KEY_A}\ndevice b ${KEY_B}\nrevoked old\n`,
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const asA = () => ['--registry', registry, '--device', 'a'];
/** The command with every path of the backup root moved into device `d`'s directory. */
const into = (d: string, text: string) => text.replaceAll(R, `${R}/${d}`);

describe('every command btrbk sends, with --device a', () => {
  test.each(ACCEPTED)('%s', (command, stages) => {
    const usesRoot = command.includes(R);
    const usage = / filesystem usage /.test(command);
    // (a command that spells the root in quoted pieces cannot be moved by text: its plain twins are covered)
    if (!usesRoot && JSON.stringify(stages).includes(R)) return;
    // in a's own directory: accepted, the same stages (a receive gets --device a), or refused for whole-volume usage
    const own = dryRun(into('a', command), asA());
    if (usage) {
      expect(own.status).toBe(255);
      expect(own.stderr).toMatch(/^rejected: btrfs filesystem usage: not for a device's key/);
    } else {
      expect({ status: own.status, stderr: own.stderr }).toEqual({ status: 0, stderr: '' });
      const want = stages.map((argv) => {
        const moved = argv.map((w) => into('a', w));
        return moved[2] === '/usr/local/sbin/btrbk-receive'
          ? [...moved.slice(0, 3), '--device', 'a', ...moved.slice(3)]
          : moved;
      });
      expect(own.stages).toEqual(want);
    }
    if (!usesRoot) return;
    // the same command in b's directory, or on the backup root and the legacy layout, is refused before anything runs
    for (const other of [into('b', command), command]) {
      const r = dryRun(other, asA());
      expect(r.status).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^rejected: /);
      expect(r.stderr).not.toMatch(/\/b\b.*exists|No such/);
    }
  });

  test('a path that only starts like the device name is outside (backups/ab is not in backups/a)', () => {
    for (const cmd of [`sudo -n btrfs receive '${R}/ab/'`, `sudo -n btrfs send '${R}/ab/x'`, `mkdir -p '${R}/a-/x'`]) {
      const r = dryRun(cmd, asA());
      expect(r.status).toBe(255);
      expect(r.stderr).toMatch(/^rejected: path outside the backup root \/backup_volume\/backups\/a: /);
    }
  });

  test('send: -p and -c from another device are refused even when the subvolume sent is the device own', () => {
    for (const cmd of [
      `sudo -n btrfs send -p '${R}/b/home.1' '${R}/a/home.2'`,
      `sudo -n btrfs send -c '${R}/b/home.1' '${R}/a/home.2'`,
      `sudo -n btrfs send -c '${R}/a/home.0' -c '${R}/home.1' '${R}/a/home.2'`,
      `sudo -n btrfs send -p '${R}/a/../b/home.1' '${R}/a/home.2'`,
    ]) {
      const r = dryRun(cmd, asA());
      expect(r.status).toBe(255);
      expect(r.stdout).toBe('');
    }
  });

  test('delete: the device own selftest scratch area only (append-only); never the shared one or a backup', () => {
    expect(dryRun(`sudo -n btrfs subvolume delete '${R}/a/selftest/x.1'`, asA()).stages).toEqual([
      ['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'subvolume', 'delete', `${R}/a/selftest/x.1`],
    ]);
    for (const p of [`${R}/selftest/x.1`, `${R}/a/home.1`, `${R}/b/selftest/x.1`, `${R}/a`]) {
      expect(dryRun(`sudo -n btrfs subvolume delete '${p}'`, asA()).status).toBe(255);
    }
  });

  test('the root of its own directory is its root: receive and readlink accepted there, the volume mount for list/show only', () => {
    expect(dryRun(`sudo -n btrfs receive '${R}/a/'`, asA()).stages).toEqual([
      ['/usr/bin/sudo', '-n', '/usr/local/sbin/btrbk-receive', '--device', 'a', `${R}/a`],
    ]);
    expect(dryRun(`readlink -v -e '${R}/a'`, asA()).status).toBe(0);
    expect(dryRun(`sudo -n btrfs subvolume show --rootid=5 '/backup_volume'`, asA()).status).toBe(0);
    for (const cmd of [
      `readlink -v -e '${R}'`,
      `test -d '${R}'`,
      `mkdir -p '${R}/b'`,
      `sudo -n btrfs filesystem usage -b '/backup_volume'`,
      `btrbk-manifest '${R}/b/home.1'`,
      `test -d '/backup_volume'`,
    ]) {
      expect(dryRun(cmd, asA()).status).toBe(255);
    }
  });
});

describe("the attack corpus with a device's key, in its own directory too", () => {
  test.each(loadAttacks().map((a) => [a.why, a.command]))('%s', (_why, command) => {
    // (a command that names no path of the backup root is the same text in a's directory: it runs once)
    for (const c of new Set([command, into('a', command)])) {
      const r = dryRun(c, asA());
      expect({ c, status: r.status, stdout: r.stdout }).toEqual({ c, status: 255, stdout: '' });
    }
  });
});

describe('diagnostics with a device key: nothing of the whole volume or the host logs', () => {
  test.each(['usage', 'boot-log', 'cloud-init-log', 'retention', 'scrub'])('btrbk-diag %s is refused', (d) => {
    const r = dryRun(`btrbk-diag ${d}`, asA());
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/not for a device's key/);
  });

  test('help lists what it may run; version names its root and device', () => {
    expect(dryRun('btrbk-diag help', asA()).stages[0].slice(2)).toEqual([
      'btrbk-diag device-stats',
      'btrbk-diag mount',
      'btrbk-diag version',
    ]);
    expect(dryRun('btrbk-diag version', asA()).stages[0].slice(3)).toEqual([
      `${R}/a`,
      '/backup_volume',
      'append-only',
      ' device=a',
    ]);
  });
});

describe('which device: only the host says (registry, ExposeAuthInfo), never the client', () => {
  /** The gate as sshd runs it with ExposeAuthInfo: SSH_USER_AUTH names a file listing the key used. */
  function asKey(blob: string | undefined, command: string, args: string[] = []): GateResult {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: command };
    if (blob !== undefined) {
      const f = path.join(tmp, `auth-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(f, `publickey ssh-ed25519 ${blob}\n`);
      env.SSH_USER_AUTH = f;
    }
    const r = spawnSync(
      '/bin/bash',
      ['-p', GATE, '--dry-run', '--logger', '/bin/true', '--registry', registry, ...args],
      {
        env,
        encoding: 'utf8',
      },
    );
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }
  const version = (r: GateResult) =>
    r.status === 0 ? (JSON.parse(r.stdout) as string[]).slice(3).join(' ') : r.stderr;

  test("sshd's ForceCommand (no --device): the key that logged in decides", () => {
    expect(version(asKey(KEY_A, 'btrbk-diag version'))).toBe(`${R}/a /backup_volume append-only  device=a`);
    expect(version(asKey(KEY_B, 'btrbk-diag version'))).toBe(`${R}/b /backup_volume append-only  device=b`);
    expect(version(asKey(KEY_LEGACY, 'btrbk-diag version'))).toBe(`${R} /backup_volume append-only `);
  });

  test('a key the registry does not know (a revoked device), or no way to tell, is refused while devices exist', () => {
    expect(asKey(KEY_GONE, 'btrbk-diag version').stderr).toMatch(/^rejected: this key is not registered/);
    expect(asKey(undefined, 'btrbk-diag version').stderr).toMatch(
      /^rejected: the host cannot tell which key logged in/,
    );
    expect(asKey(undefined, 'btrbk-diag version', ['--device', 'old']).stderr).toMatch(
      /^rejected: device old is not registered/,
    );
    expect(asKey(undefined, 'btrbk-diag version', ['--device', 'nosuch']).status).toBe(255);
  });

  test("the key line's --device must agree with the registry", () => {
    expect(asKey(KEY_B, 'btrbk-diag version', ['--device', 'a']).stderr).toMatch(
      /^rejected: gate misconfigured: the key line says --device a, the registry says b/,
    );
    expect(asKey(KEY_LEGACY, 'btrbk-diag version', ['--device', 'a']).status).toBe(255);
    expect(version(asKey(KEY_A, 'btrbk-diag version', ['--device', 'a']))).toMatch(/ device=a$/);
  });

  test('the client cannot name a device: a --device in the command is not a gate option', () => {
    const r = asKey(KEY_A, `sudo -n btrfs receive --device b '${R}/b/'`);
    expect(r.status).toBe(255);
    expect(r.stdout).toBe('');
  });

  test('no registry and no auth info: the single-key gate, exactly as before devices existed', () => {
    const r = spawnSync(
      '/bin/bash',
      ['-p', GATE, '--dry-run', '--logger', '/bin/true', '--registry', path.join(tmp, 'none')],
      {
        env: { PATH: process.env.PATH, SSH_ORIGINAL_COMMAND: `sudo -n btrfs receive '${R}/laptop/'` },
        encoding: 'utf8',
      },
    );
    expect(r.stdout).toBe(`["/usr/bin/sudo","-n","/usr/local/sbin/btrbk-receive","${R}/laptop"]\n`);
  });
});

describe("what a device's key learns of the volume: its own directory, and the backup root's line btrbk hangs it on", () => {
  let sb: Sandbox;
  let args: string[];
  beforeEach(() => {
    sb = makeSandbox();
    const reg = path.join(sb.dir, 'devices');
    fs.writeFileSync(reg, `device a ${KEY_A}\ndevice b ${KEY_B}\n`);
    args = [...sb.args, '--registry', reg, '--device', 'a'];
    fs.mkdirSync(path.join(sb.root, 'a'));
  });
  afterEach(() => sb.cleanup());
  const U = {
    top: 'fefe339c-fae5-4041-a461-b58eb35c17de',
    root: '997bdcf5-7554-164a-82d7-878b586e7a6f',
    a: '3f58ee75-ff4d-ad48-bd0f-4732b9b2c5cf',
    a1: '0a0a0a0a-ff4d-ad48-bd0f-4732b9b2c5cf',
    b: 'b0b0b0b0-1111-2222-3333-444444444444',
    b1: 'b1b1b1b1-1111-2222-3333-444444444444',
  };
  const line = (id: number, top: number, uuid: string, p: string, parent = '-') =>
    `ID ${id} gen 9 cgen 8 top level ${top} parent_uuid ${parent.padEnd(36)} received_uuid -                                    uuid ${uuid} path ${p}`;
  const setOutput = (text: string) => fs.writeFileSync(path.join(sb.dir, 'btrfs-output'), text);
  const run = (command: string) => runInSandbox({ ...sb, args }, command);

  test('subvolume list: the backup root line, a and its backups; nothing of b (names, UUIDs, IDs)', () => {
    const kept = [
      line(257, 5, U.root, '<FS_TREE>/backups'),
      line(258, 257, U.a, '<FS_TREE>/backups/a'),
      line(260, 258, U.a1, '<FS_TREE>/backups/a/laptop/home.1'),
    ];
    setOutput(
      [
        kept[0],
        kept[1],
        line(259, 257, U.b, '<FS_TREE>/backups/b'),
        kept[2],
        line(261, 259, U.b1, '<FS_TREE>/backups/b/home.1'),
        line(262, 257, U.b1, '<FS_TREE>/backups/ab/home.1'),
        line(263, 257, U.b1, '<FS_TREE>/backups/legacy-laptop/home.1'),
        line(264, 5, U.b1, '<FS_TREE>/.btrbk-staging/rcv.X/x path backups/a/y'),
        '',
      ].join('\n'),
    );
    for (const command of [
      `sudo -n btrfs subvolume list -a -c -u -q -R '${sb.mount}'`,
      `sudo -n btrfs subvolume list -a -o -c -u -q -R '${sb.root}/a'`,
    ]) {
      const r = run(command);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${kept.join('\n')}\n`);
      expect(r.stdout).not.toMatch(new RegExp(`${U.b}|${U.b1}|backups/b|ab/|legacy|259|261|262`));
    }
  });

  test("subvolume show: its own subvolumes; b's by path, by --rootid, or one that does not exist: one answer, no detail", () => {
    fs.mkdirSync(`${sb.root}/a/laptop`, { recursive: true }); // (a path through a directory that does not exist runs nothing)
    const own = `backups/a/laptop/home.1\n\tName: \t\t\thome.1\n\tUUID: \t\t\t${U.a1}\n\tSubvolume ID: \t\t260\n`;
    setOutput(`${own}\tSnapshot(s):\n\t\t\t\tbackups/b/home.9\n`);
    expect(run(`sudo -n btrfs subvolume show '${sb.root}/a/laptop/home.1'`)).toMatchObject({ status: 0, stdout: own });
    const refused = `rejected: btrfs subvolume show: not a subvolume of the backup root ${sb.root}/a\n`;
    setOutput(`backups/b/home.1\n\tName: \t\t\thome.1\n\tUUID: \t\t\t${U.b1}\n\tSubvolume ID: \t\t261\n`);
    const byId = run(`sudo -n btrfs subvolume show --rootid=261 '${sb.root}/a'`);
    expect(byId).toEqual({ status: 255, stdout: '', stderr: refused });
    setOutput(`backups/ab\n\tName: \t\t\tab\n\tUUID: \t\t\t${U.b}\n`);
    expect(run(`sudo -n btrfs subvolume show --rootid=262 '${sb.mount}'`)).toEqual({
      status: 255,
      stdout: '',
      stderr: refused,
    });
    // btrfs itself failing (an ID that does not exist, or an error that names something) says the same
    const failing = path.join(sb.dir, 'failing-sudo');
    fs.writeFileSync(failing, `#!/bin/sh\necho "ERROR: cannot find subvolume 9999 (backups/b/secret)" >&2\nexit 1\n`, {
      mode: 0o755,
    });
    const r = runInSandbox(
      { ...sb, args: [...args, '--sudo', failing] },
      `sudo -n btrfs subvolume show --rootid=9999 '${sb.root}/a'`,
    );
    expect(r).toEqual({ status: 255, stdout: '', stderr: refused });
    const l = runInSandbox(
      { ...sb, args: [...args, '--sudo', failing] },
      `sudo -n btrfs subvolume list -a '${sb.mount}'`,
    );
    expect(l).toEqual({ status: 255, stdout: '', stderr: 'rejected: btrfs subvolume list failed\n' });
  });

  test('nothing of b runs: refused commands reach no sudo', () => {
    for (const command of [
      `sudo -n btrfs send '${sb.root}/b/home.1'`,
      `sudo -n btrfs receive '${sb.root}/b/'`,
      `btrbk-manifest '${sb.root}/b/home.1'`,
      `mkdir -p '${sb.root}/b/x'`,
      `sudo -n btrfs subvolume show '${sb.root}/b/home.1'`,
      `sudo -n btrfs subvolume list -a '${sb.root}'`,
    ]) {
      expect(run(command).status).toBe(255);
    }
    expect(sb.sudoCalls()).toEqual([]);
    expect(fs.existsSync(path.join(sb.root, 'b'))).toBe(false);
  });
});

test('sudoers lets the gate run what it runs for a device (the receive with --device, the device selftest delete)', () => {
  const text = fs.readFileSync(SUDOERS, 'utf8');
  const alias = (name: string) =>
    (new RegExp(`^Cmnd_Alias ${name} = (.*)$`, 'm').exec(text)?.[1] ?? '')
      .split(/,\s+/)
      .map((e) => new RegExp(/^\S+ (.*)$/.exec(e)?.[1] ?? '^$'));
  const allows = (name: string, args: string) => alias(name).some((re) => re.test(args));
  expect(allows('BTRBK_RECEIVE', `--device a ${R}/a`)).toBe(true);
  expect(allows('BTRBK_RECEIVE', `--device a -v --max-errors=0 ${R}/a/laptop`)).toBe(true);
  expect(allows('BTRBK_RECEIVE', `${R}/laptop`)).toBe(true);
  expect(allows('BTRBK_RECEIVE', `--device ../x ${R}/a`)).toBe(false);
  expect(allows('BTRBK_RECEIVE', `--device A ${R}/a`)).toBe(false);
  expect(allows('BTRBK_SELFTEST_DELETE', `subvolume delete ${R}/a/selftest/x.1`)).toBe(true);
  expect(allows('BTRBK_SELFTEST_DELETE', `subvolume delete ${R}/selftest/x.1`)).toBe(true);
  expect(allows('BTRBK_SELFTEST_DELETE', `subvolume delete ${R}/a/home.1`)).toBe(false);
  expect(allows('BTRBK_SELFTEST_DELETE', `subvolume delete ${R}/a/b/selftest/x`)).toBe(false);
});
