// Runs user-data/btrbk-ssh-gate.sh the way sshd does (the client's text in SSH_ORIGINAL_COMMAND), with
// stand-ins for sudo and logger that only record what they were asked to do, so a test can tell whether
// anything behind the gate ran. Shared by the gate unit tests.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MANIFEST_PATH, MOUNT_POINT, RECEIVE_PATH, SCRUB_PATH } from '../../user-data/host-layout.js';

export const REPO = REPO_ROOT;
export const GATE = path.join(REPO, 'user-data', 'btrbk-ssh-gate.sh');
export const SUDOERS = path.join(REPO, 'user-data', 'sudoers-btrbk');

export interface Attack {
  command: string;
  why: string;
}

/** The team's shared corpus (../shared/ssh-gate-attacks.json, copied verbatim into the fixtures). */
export const SHARED_ATTACKS = path.join(REPO, '__tests__', 'fixtures', 'gate-attacks-shared.json');
export const EXTRA_ATTACKS = path.join(REPO, '__tests__', 'fixtures', 'gate-attacks-extra.json');
const LIVE_SHARED = path.resolve(REPO, '..', 'shared', 'ssh-gate-attacks.json');

const readAttacks = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8')) as Attack[];

/** Shared + our own attacks; plus any line the live shared file (next to the checkout, if there) has gained. */
export function loadAttacks(): Attack[] {
  const all = [...readAttacks(SHARED_ATTACKS), ...readAttacks(EXTRA_ATTACKS)];
  if (fs.existsSync(LIVE_SHARED)) {
    const known = new Set(all.map((a) => a.command));
    all.push(...readAttacks(LIVE_SHARED).filter((a) => !known.has(a.command)));
  }
  return all;
}

export interface GateResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the gate once. `args` are the gate's own options (what root writes into authorized_keys). */
export function runGate(command: string | undefined, args: string[] = [], input?: Buffer | string): GateResult {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, SSH_CONNECTION: '192.0.2.7 50000 192.0.2.1 22' };
  if (command !== undefined) env.SSH_ORIGINAL_COMMAND = command;
  const r = spawnSync('/bin/bash', ['-p', GATE, ...args], { env, input, encoding: 'buffer', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

/** Dry run: the parsed stages, one argv per line (JSON), or the rejection. */
export function dryRun(command: string, args: string[] = []): GateResult & { stages: string[][] } {
  const r = runGate(command, ['--dry-run', '--logger', '/bin/true', ...args]);
  const stages =
    r.status === 0
      ? r.stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as string[])
      : [];
  return { ...r, stages };
}

/**
 * A scratch directory with a backup volume layout (mnt/backups), a recording fake sudo and logger, and a
 * PATH directory of trap programs (sh, bash, id, touch, tee, ...) that leave a marker if anything runs them.
 * Paths under `dir` stay free of characters the gate refuses.
 */
export interface Sandbox {
  dir: string;
  mount: string;
  root: string;
  sudoLog: string;
  loggerLog: string;
  trapLog: string;
  args: string[];
  sudoCalls(): string[];
  /** Names of the environment variables the last sudo call saw. */
  sudoEnv(): string[];
  logLines(): string[];
  trapped(): string[];
  cleanup(): void;
}

export function makeSandbox(): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-'));
  const mount = path.join(dir, 'backup_volume');
  const root = path.join(mount, 'backups');
  fs.mkdirSync(root, { recursive: true });
  const sudoLog = path.join(dir, 'sudo.log');
  const loggerLog = path.join(dir, 'logger.log');
  const trapLog = path.join(dir, 'trap.log');
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  // The fake sudo records its argv. For `btrbk-receive DIR` it stores the stream in DIR/stream.bin, for
  // `btrfs send SUBVOL` it emits SUBVOL/payload.bin, for `btrfs subvolume ...` the file btrfs-output when there is
  // one (what the real btrfs would print, for the gate's output filters); anything else it runs as it is.
  fs.writeFileSync(
    path.join(dir, 'fake-sudo'),
    `#!/bin/bash
printf '%s\\n' "$*" >> '${sudoLog}'
env -0 | tr '\\0' '\\n' | sed 's/=.*//' | sort > '${sudoLog}.env'
[[ $1 == -n ]] && shift
last=\${!#}
case "$1 $2" in
  '/usr/local/sbin/btrbk-receive '*) cat > "$last/stream.bin" ;;
  '/usr/bin/btrfs send') cat "$last/payload.bin" ;;
  '/usr/bin/btrfs subvolume') if [[ -f '${dir}/btrfs-output' ]]; then cat '${dir}/btrfs-output'; else echo "fake btrfs $*"; fi ;;
  '/usr/bin/btrfs '*) echo "fake btrfs $*" ;;
  *) exec "$@" ;;
esac
`,
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(dir, 'fake-logger'), `#!/bin/sh\nprintf '%s\\n' "$*" >> '${loggerLog}'\n`, {
    mode: 0o755,
  });
  for (const name of [
    'sh',
    'bash',
    'dash',
    'id',
    'touch',
    'tee',
    'cat',
    'sudo',
    'btrfs',
    'env',
    'rm',
    'cp',
    'chmod',
    'nc',
    'curl',
    'python3',
    'perl',
  ]) {
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${trapLog}'\n`, { mode: 0o755 });
  }
  const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
  return {
    dir,
    mount,
    root,
    sudoLog,
    loggerLog,
    trapLog,
    args: [
      '--root',
      root,
      '--mount',
      mount,
      '--sudo',
      path.join(dir, 'fake-sudo'),
      '--logger',
      path.join(dir, 'fake-logger'),
    ],
    sudoCalls: () => read(sudoLog),
    sudoEnv: () => read(`${sudoLog}.env`),
    logLines: () => read(loggerLog),
    trapped: () => read(trapLog),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs the gate for real (not a dry run) in a sandbox, with the trap directory first on the caller's PATH. */
export function runInSandbox(sb: Sandbox, command: string, input?: Buffer | string): GateResult {
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.join(sb.dir, 'bin')}:${process.env.PATH}`,
    SSH_ORIGINAL_COMMAND: command,
    SSH_CONNECTION: '192.0.2.7 50000 192.0.2.1 22',
    BASH_ENV: path.join(sb.dir, 'bin', 'sh'),
    ENV: path.join(sb.dir, 'bin', 'sh'),
    LD_PRELOAD: '',
  };
  const r = spawnSync('/bin/bash', ['-p', GATE, ...sb.args], { env, input, encoding: 'buffer', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

/** Replaces the production paths in a command with the sandbox's. */
export function intoSandbox(sb: Sandbox, command: string): string {
  return command.replaceAll(MOUNT_POINT, sb.mount);
}

// What btrbk 0.32.x sends (read from /usr/bin/btrbk: run_cmd, vinfo_cmd, the btrfs_* and system_* subs) and the
// argv the gate runs for it. Used by the grammar test and the sudoers cross-check.
export const R = BACKUP_ROOT;
export const SUDO_BTRFS = ['/usr/bin/sudo', '-n', '/usr/bin/btrfs'];
/** Every receive runs through btrbk-receive (--chroot into a staging directory of its own), never btrfs itself. */
export const SUDO_RECEIVE = ['/usr/bin/sudo', '-n', RECEIVE_PATH];

/** [what btrbk (or a restore) sends, the stages the gate runs] */
export const ACCEPTED: Array<[string, string[][]]> = [
  // btrfs_send_receive(): remote target, no stream options
  [`sudo -n btrfs receive '${R}/laptop/'`, [[...SUDO_RECEIVE, `${R}/laptop`]]],
  [`sudo -n btrfs receive '${R}/'`, [[...SUDO_RECEIVE, R]]],
  [`sudo -n btrfs receive --max-errors=0 '${R}/laptop/'`, [[...SUDO_RECEIVE, '--max-errors=0', `${R}/laptop`]]],
  [
    `sudo -n btrfs receive --max-errors=0 -v '${R}/laptop/'`,
    [[...SUDO_RECEIVE, '-v', '--max-errors=0', `${R}/laptop`]],
  ],
  // stream_compress (decompress in front of receive), stream_buffer_remote / rate_limit_remote (mbuffer)
  [
    `zstd -d -c | sudo -n btrfs receive '${R}/laptop/'`,
    [
      ['/usr/bin/zstd', '-d', '-c'],
      [...SUDO_RECEIVE, `${R}/laptop`],
    ],
  ],
  [
    `zstd -d -c -T4 --long=27 | mbuffer -v 1 -q -m 2% -r 10m | sudo -n btrfs receive '${R}/laptop/'`,
    [
      ['/usr/bin/zstd', '-d', '-c', '-T4', '--long=27'],
      ['/usr/bin/mbuffer', '-v', '1', '-q', '-m', '2%', '-r', '10m'],
      [...SUDO_RECEIVE, `${R}/laptop`],
    ],
  ],
  [
    `gzip -d -c | sudo -n btrfs receive '${R}/l/'`,
    [
      ['/usr/bin/gzip', '-d', '-c'],
      [...SUDO_RECEIVE, `${R}/l`],
    ],
  ],
  [
    `xz -d -c -T2 | sudo -n btrfs receive '${R}/l/'`,
    [
      ['/usr/bin/xz', '-d', '-c', '-T2', '--memlimit-decompress=128MiB'],
      [...SUDO_RECEIVE, `${R}/l`],
    ],
  ],
  [
    `lz4 -d -c | sudo -n btrfs receive '${R}/l/'`,
    [
      ['/usr/bin/lz4', '-d', '-c'],
      [...SUDO_RECEIVE, `${R}/l`],
    ],
  ],
  [
    `mbuffer -v 1 -q -m 25% | sudo -n btrfs receive '${R}/l/'`,
    [
      ['/usr/bin/mbuffer', '-v', '1', '-q', '-m', '25%'],
      [...SUDO_RECEIVE, `${R}/l`],
    ],
  ],
  [
    `mbuffer -v 1 -q -s 128k -m 100m -R 5M | sudo -n btrfs receive '${R}/l/'`,
    [
      ['/usr/bin/mbuffer', '-v', '1', '-q', '-s', '128k', '-m', '100m', '-R', '5M'],
      [...SUDO_RECEIVE, `${R}/l`],
    ],
  ],
  // btrfs send from the target: restore, archive, or a second device
  [`sudo -n btrfs send '${R}/laptop/home.20260101T0000'`, [[...SUDO_BTRFS, 'send', `${R}/laptop/home.20260101T0000`]]],
  [
    `sudo -n btrfs send -p '${R}/l/home.1' -c '${R}/l/home.0' -c '${R}/l/root.1' '${R}/l/home.2' | mbuffer -v 1 -q -r 20m | zstd -c -19 -T0 --long=27 --adapt`,
    [
      [...SUDO_BTRFS, 'send', '-p', `${R}/l/home.1`, '-c', `${R}/l/home.0`, '-c', `${R}/l/root.1`, `${R}/l/home.2`],
      ['/usr/bin/mbuffer', '-v', '1', '-q', '-r', '20m'],
      ['/usr/bin/zstd', '-c', '-19', '-T0', '--long=27', '--adapt'],
    ],
  ],
  [
    `sudo -n btrfs send '${R}/l/a' | gzip -c -9`,
    [
      [...SUDO_BTRFS, 'send', `${R}/l/a`],
      ['/usr/bin/gzip', '-c', '-9'],
    ],
  ],
  [
    `sudo -n btrfs send '${R}/l/a' | xz -c -0 -T8`,
    [
      [...SUDO_BTRFS, 'send', `${R}/l/a`],
      ['/usr/bin/xz', '-c', '-0', '-T8', '--memlimit-compress=128MiB'],
    ],
  ],
  [
    `sudo -n btrfs send --compressed-data --proto 2 -q '${R}/l/a'`,
    [[...SUDO_BTRFS, 'send', '-q', '--proto', '2', '--compressed-data', `${R}/l/a`]],
  ],
  // btr_tree() on the mount point, btrfs_subvolume_list_readonly_flag(), deleted_only, subvol_only
  [
    `sudo -n btrfs subvolume list -a -c -u -q -R '/backup_volume'`,
    [[...SUDO_BTRFS, 'subvolume', 'list', '-a', '-c', '-u', '-q', '-R', '/backup_volume']],
  ],
  [
    `sudo -n btrfs subvolume list -a -r '/backup_volume'`,
    [[...SUDO_BTRFS, 'subvolume', 'list', '-a', '-r', '/backup_volume']],
  ],
  [
    `sudo -n btrfs subvolume list -a -d -c -u -q -R '/backup_volume'`,
    [[...SUDO_BTRFS, 'subvolume', 'list', '-a', '-d', '-c', '-u', '-q', '-R', '/backup_volume']],
  ],
  [
    `sudo -n btrfs subvolume list -a -o -c -u -q -R '${R}/l'`,
    [[...SUDO_BTRFS, 'subvolume', 'list', '-a', '-o', '-c', '-u', '-q', '-R', `${R}/l`]],
  ],
  // btrfs_subvolume_show(): after a receive, and --rootid=5 on the mount point
  [
    `sudo -n btrfs subvolume show '${R}/l/home.20260101T0000'`,
    [[...SUDO_BTRFS, 'subvolume', 'show', `${R}/l/home.20260101T0000`]],
  ],
  [
    `sudo -n btrfs subvolume show --rootid=5 '/backup_volume'`,
    [[...SUDO_BTRFS, 'subvolume', 'show', '--rootid=5', '/backup_volume']],
  ],
  // the round trip's and the bench's scratch area: the one place the key may delete on an append-only host
  [
    `sudo -n btrfs subvolume delete --commit-after '${R}/selftest/roundtrip-test/rt.1'`,
    [[...SUDO_BTRFS, 'subvolume', 'delete', '--commit-after', `${R}/selftest/roundtrip-test/rt.1`]],
  ],
  // btrfs_filesystem_usage() (btrbk usage) on the mount point
  [`sudo -n btrfs filesystem usage '/backup_volume'`, [[...SUDO_BTRFS, 'filesystem', 'usage', '/backup_volume']]],
  // system_realpath(), system_testdir() (compat busybox), system_mkdir(), system_list_mountinfo(): as btrbk
  [`sudo -n readlink -v -e '${R}/l'`, [['/usr/bin/readlink', '-v', '-e', `${R}/l`]]],
  [`readlink -v -f '${R}'`, [['/usr/bin/readlink', '-v', '-f', R]]],
  [`sudo -n test -d '${R}/l'`, [['/usr/bin/test', '-d', `${R}/l`]]],
  [`mkdir -p '${R}/laptop'`, [['/usr/bin/mkdir', '-p', `${R}/laptop`]]],
  ['cat /proc/self/mountinfo', [['/usr/bin/cat', '/proc/self/mountinfo']]],
  [`cat '/proc/self/mountinfo'`, [['/usr/bin/cat', '/proc/self/mountinfo']]],
  // backend btrfs-progs (no sudo in the client's text): the gate still runs btrfs through sudo
  [`btrfs receive '${R}/l/'`, [[...SUDO_RECEIVE, `${R}/l`]]],
  [`btrfs subvolume list -a -r '/backup_volume'`, [[...SUDO_BTRFS, 'subvolume', 'list', '-a', '-r', '/backup_volume']]],
  // the tokenizer: quoted and plain parts of one word join, as in a shell; runs of spaces separate
  [`mkdir -p /backup_volume/'backups'/x`, [['/usr/bin/mkdir', '-p', `${R}/x`]]],
  [`mkdir  -p   '${R}/x'`, [['/usr/bin/mkdir', '-p', `${R}/x`]]],
  [`'mkdir' '-p' '${R}/h/root.20261123T2250+0000_1'`, [['/usr/bin/mkdir', '-p', `${R}/h/root.20261123T2250+0000_1`]]],
  [`mkdir -p '${R}/@home'`, [['/usr/bin/mkdir', '-p', `${R}/@home`]]],
  // backup.mjs verify: what a backup holds (user-data/btrbk-manifest), all of it or a seeded sample
  [`btrbk-manifest '${R}/l/home.20260101T0000'`, [['/usr/bin/sudo', '-n', MANIFEST_PATH, `${R}/l/home.20260101T0000`]]],
  [
    `btrbk-manifest --sample 5 --seed 123456789012345678 '${R}/l/home.1'`,
    [['/usr/bin/sudo', '-n', MANIFEST_PATH, '--sample', '5', '--seed', '123456789012345678', `${R}/l/home.1`]],
  ],
  [
    `btrbk-manifest --sample 100 --seed 0 '${R}/l/home.1'`,
    [['/usr/bin/sudo', '-n', MANIFEST_PATH, '--sample', '100', '--seed', '0', `${R}/l/home.1`]],
  ],
  // backup.mjs ls and find: names and metadata only, below a path in the backup, to a depth (laptop/browse.ts)
  [`btrbk-manifest --list '${R}/l/home.1'`, [['/usr/bin/sudo', '-n', MANIFEST_PATH, '--list', `${R}/l/home.1`]]],
  [
    `btrbk-manifest --list --under me/My%20Documents/.config --depth 2 '${R}/l/home.1'`,
    [
      [
        '/usr/bin/sudo',
        '-n',
        MANIFEST_PATH,
        '--list',
        '--under',
        'me/My%20Documents/.config',
        '--depth',
        '2',
        `${R}/l/home.1`,
      ],
    ],
  ],
  // backup.mjs diff and find: what changed between two backups, metadata only
  [
    `sudo -n btrfs send --no-data -p '${R}/l/home.1' '${R}/l/home.2'`,
    [[...SUDO_BTRFS, 'send', '--no-data', '-p', `${R}/l/home.1`, `${R}/l/home.2`]],
  ],
];

/** btrfs_subvolume_delete() (client-side retention, garbled receives): only with the gate's --allow-delete (the
 * stack's append_only = false); the default gate refuses them. */
export const ALLOW_DELETE = ['--allow-delete'];
export const ACCEPTED_WITH_ALLOW_DELETE: Array<[string, string[][]]> = [
  [`sudo -n btrfs subvolume delete '${R}/l/home.1'`, [[...SUDO_BTRFS, 'subvolume', 'delete', `${R}/l/home.1`]]],
  [
    `sudo -n btrfs subvolume delete --commit-each '${R}/l/home.1'`,
    [[...SUDO_BTRFS, 'subvolume', 'delete', '--commit-each', `${R}/l/home.1`]],
  ],
  [
    `sudo -n btrfs subvolume delete --commit-after '${R}/l/home.1'`,
    [[...SUDO_BTRFS, 'subvolume', 'delete', '--commit-after', `${R}/l/home.1`]],
  ],
];

export const DIAGNOSTICS: Array<[string, string[]]> = [
  ['btrbk-diag usage', [...SUDO_BTRFS, 'filesystem', 'usage', '-b', '/backup_volume']],
  ['btrbk-diag device-stats', [...SUDO_BTRFS, 'device', 'stats', '/backup_volume']],
  [
    'btrbk-diag mount',
    ['/usr/bin/findmnt', '--noheadings', '--output', 'TARGET,SOURCE,FSTYPE,OPTIONS', '--mountpoint', '/backup_volume'],
  ],
  ['btrbk-diag boot-log', ['/usr/bin/tail', '-n', '200', '/var/log/btrbk-backup-host.log']],
  ['btrbk-diag cloud-init-log', ['/usr/bin/tail', '-n', '200', '/var/log/cloud-init-output.log']],
  ['btrbk-diag retention', ['/usr/bin/sudo', '-n', '/usr/local/sbin/btrbk-prune', 'report']],
  ['btrbk-diag scrub', [SCRUB_PATH, 'report']],
];
