// A key per device, each confined to its own backups (issue 20), over real SSH on a local target of this file's own
// (real sshd with ExposeAuthInfo, the real gate, btrbk-receive as root, real btrbk clients on scratch btrfs):
//  - the boot script gives each device a key line, a subvolume backups/NAME and a registry entry; the legacy key's
//    line is as it was;
//  - devices alpha and bravo back up with btrbk; alpha's key then tries every gate command on bravo's backups (list,
//    show by path and --rootid, send, receive, manifest, mkdir, delete, the diagnostics) and crafted streams naming
//    bravo's UUIDs as snapshot and clone sources, and a clone path that climbs out of alpha's backup with `..`: all
//    refused, nothing of bravo's in what alpha's key is told, nothing left behind (these probes ride one master
//    connection of alpha's key, sessions of their own as btrbk's are: a new connection per probe cost a second each);
//  - both still back up (incrementally) and restore; the legacy key still reaches everything, as before;
//  - bravo removed (the boot script run again without it): its key is refused at once, its backups stay through the
//    host's prunes (btrbk-prune --now, a moving clock), frozen, and check-volume with the legacy key lists it as
//    revoked and frozen beside alpha (alpha's key: its own device only); bravo added back: its key works and the
//    prune applies.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { jest } from '@jest/globals';
import { readConnection, type Connection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, PRUNE_PATH, STAGING_DIR } from '../../user-data/host-layout.js';
import {
  deviceEnvFile,
  down,
  execInTarget,
  installBootScript,
  localTargetPaths,
  renderFor,
  rerunBootScript,
  up,
} from '../../scripts/lib/local-target/local-target.js';
import { sshArgs } from '../../scripts/lib/remote/ssh.js';
import { checkVolume } from '../../scripts/lib/diagnose/check-volume.js';
import { createScratchBtrfs, createSubvolume, type ScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';
import { HEADER_LEN, newUuid, SendStream, simpleSubvolume } from '../support/send-stream.js';
import { btrbkClient, masterConnection, runEach, waitUntil, type BtrbkClient } from './btrbk-client-harness.js';
import { freePort } from './test-target.js';

jest.setTimeout(20 * 60_000);

const A = 'alpha';
const B = 'bravo';
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-test-dev-'));
const env = {
  ...process.env,
  BTRBK_LOCAL_TARGET_STATE: stateDir,
  BTRBK_LOCAL_TARGET_NAME: `btrbk-test-dev-${path.basename(stateDir).slice(-6)}`,
  BTRBK_LOCAL_TARGET_ENV_FILE: path.join(stateDir, 'connection.env'),
  BTRBK_LOCAL_TARGET_PORT: '',
  BTRBK_LOCAL_TARGET_DEVICES: '',
};
const paths = (devices = [A, B]) => ({ ...localTargetPaths(env), devices });
// whole blocks, so that a clone of them is a real extent clone
const SECRET_B = `bravo-secret-${crypto.randomBytes(4).toString('hex')}\n`.repeat(512);
const DATA_A = `alpha-data-${crypto.randomBytes(4).toString('hex')}\n`.repeat(512);

let legacy: Connection;
let connA: Connection;
let connB: Connection;
const laptops: Record<string, { fs: ScratchBtrfs; work: string; client: BtrbkClient }> = {};
/** When the last btrbk run started: btrbk names snapshots to the second (long-iso), so the next run of a series
 * must start in a later second (a run takes seconds: this rarely waits at all). */
let lastRunAt = 0;
const btrbkRun = (client: BtrbkClient) => {
  lastRunAt = Date.now();
  return client.run('run');
};
const nextSecond = () => new Promise((r) => setTimeout(r, Math.max(0, lastRunAt + 1100 - Date.now())));

/** Where the master connections of masterOf live (ControlPath: a socket per key, as install names them). */
const muxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-mux-'));
const masters: Array<() => void> = [];
/** A command through CONN's key: a connection of its own, or a session over a master connection (`mux`: its reuse). */
function ssh(conn: Connection, command: string, input?: Buffer, { mux = [] }: { mux?: string[] } = {}) {
  const r = spawnSync('ssh', ['-F', '/dev/null', ...sshArgs(conn, { extra: mux }), '--', command], {
    input: input ?? Buffer.alloc(0),
    timeout: 120_000,
    maxBuffer: 256 << 20,
  });
  return {
    status: r.status,
    stdout: r.stdout ?? Buffer.alloc(0),
    stderr: (r.stderr ?? Buffer.alloc(0)).toString('utf8'),
  };
}
/** A master connection of CONN's key in muxDir (masterConnection), closed at the file's end if not before. */
function masterOf(conn: Connection, name: string): { reuse: string[]; close: () => void } {
  const master = masterConnection(conn, path.join(muxDir, name));
  masters.push(master.close);
  return master;
}
/** A receive through CONN's key into DIR, its stream written by the caller (the session stays open until stdin ends). */
function openReceive(conn: Connection, dir: string) {
  const child = spawn('ssh', ['-F', '/dev/null', ...sshArgs(conn), '--', `sudo -n btrfs receive '${dir}/'`], {
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => {}); // a refused session may close before we do
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, closed, stderr: () => stderr };
}
function root(argv: string[], input?: string): string {
  const r = execInTarget(argv, { paths: paths(), ...(input === undefined ? {} : { input }) });
  if (r.status !== 0) throw new Error(`on the host: ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
const rootSh = (script: string, ...args: string[]) => root(['/bin/bash', '-c', script, 'bash', ...args]);
/** As root: deletes every subvolume in DIR (made writable first: received ones are read-only), then DIR itself unless
 * keepDir. */
function deleteSubvolumesIn(dir: string, { keepDir = false } = {}) {
  rootSh(
    `for s in "$1"/*; do btrfs property set -f -ts "$s" ro false; btrfs subvolume delete -c "$s" >/dev/null; done; ${keepDir ? 'true' : 'rmdir "$1"'}`,
    dir,
  );
}
const field = (show: string, name: string) => new RegExp(`^\\s*${name}:\\s*(\\S+)`, 'm').exec(show)?.[1] ?? '';
/** Every subvolume below DIR (path, UUID, received UUID), as root: what must not change. */
const inventory = (dir: string) =>
  rootSh(
    'cd "$1" && for s in $(find . -mindepth 1 -type d -inum 256 | sort); do printf "%s %s\\n" "$s" "$(btrfs subvolume show "$s" | sed -n "s/^[[:space:]]*\\(UUID\\|Received UUID\\|Subvolume ID\\):[[:space:]]*//p" | tr "\\n" " ")"; done',
    dir,
  );
const backupsOf = (dir: string) =>
  rootSh('find "$1" -mindepth 1 -type d -inum 256 -printf "%P\\n" | sort', dir).split('\n').filter(Boolean);
const leftovers = () =>
  rootSh('ls -A "$1"; ls -A /run/btrbk-backup-host | grep receive-err || true', STAGING_DIR)
    .split('\n')
    .filter(Boolean);

async function laptop(name: string, conn: Connection, files: Record<string, string>) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `dev-${name}-`));
  const scratch = await createScratchBtrfs({ sizeMiB: 256, label: name });
  await createSubvolume(scratch.path('home'));
  fs.mkdirSync(scratch.path('snaps'));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(scratch.path('home', f), text);
  const client = btrbkClient(conn, work, {
    volume: scratch.mountpoint,
    subvolume: 'home',
    targetDir: `${conn.backupRoot}/laptop`,
  });
  laptops[name] = { fs: scratch, work, client };
  return laptops[name];
}

beforeAll(async () => {
  env.BTRBK_LOCAL_TARGET_PORT = String(await freePort());
  await up({ env, devices: [A, B], onProgress: (l) => process.stderr.write(`[devices] ${l}\n`) });
  legacy = readConnection(env.BTRBK_LOCAL_TARGET_ENV_FILE);
  connA = readConnection(deviceEnvFile(paths(), A));
  connB = readConnection(deviceEnvFile(paths(), B));
});

afterAll(async () => {
  await runEach([
    ...masters,
    ...Object.values(laptops).map((l) => () => l.fs.destroy()),
    ...Object.values(laptops).map((l) => () => fs.rmSync(l.work, { recursive: true, force: true })),
    () => down({ env, purge: true }),
    () => fs.rmSync(stateDir, { recursive: true, force: true }),
    () => fs.rmSync(muxDir, { recursive: true, force: true }),
  ]);
});

describe('the boot script: a key line, a subvolume and a registry entry per device', () => {
  test('authorized_keys: the legacy line as before, one line per device with --device; backups/NAME subvolumes owned by btrbk', () => {
    const keys = root(['cat', '/home/btrbk/.ssh/authorized_keys']).trim().split('\n');
    const pub = (f: string) => fs.readFileSync(`${f}.pub`, 'utf8').trim();
    expect(keys).toEqual([
      `restrict,command="/usr/local/sbin/btrbk-ssh-gate" ${pub(legacy.keyFile)}`,
      `restrict,command="/usr/local/sbin/btrbk-ssh-gate --device ${A}" ${pub(connA.keyFile)}`,
      `restrict,command="/usr/local/sbin/btrbk-ssh-gate --device ${B}" ${pub(connB.keyFile)}`,
    ]);
    expect(connA.backupRoot).toBe(`${BACKUP_ROOT}/${A}`);
    expect(connA.targetUrl).toMatch(new RegExp(`${BACKUP_ROOT}/${A}/$`));
    for (const d of [A, B]) {
      expect(rootSh('stat -c "%i %U:%G %a" "$1"', `${BACKUP_ROOT}/${d}`).trim()).toBe('256 btrbk:btrbk 750');
    }
    expect(root(['cat', '/etc/btrbk-backup-host/devices'])).toMatch(
      new RegExp(`^legacy \\S+\\ndevice ${A} \\S+\\ndevice ${B} \\S+\\n$`, 'm'),
    );
    expect(root(['sshd', '-T', '-C', 'user=btrbk,host=x,addr=127.0.0.1'])).toMatch(/^exposeauthinfo yes$/m);
  });
});

describe('two devices back up with btrbk; one key reaches nothing of the other', () => {
  let bravo: { paths: string[]; uuids: string[]; ids: string[] };

  test('alpha and bravo each back up (a full, then an incremental) into their own directory', async () => {
    for (const [name, conn, files] of [
      [A, connA, { 'data.bin': DATA_A }],
      [B, connB, { 'secret.bin': SECRET_B }],
    ] as const) {
      expect(ssh(conn, `mkdir -p '${conn.backupRoot}/laptop'`).status).toBe(0);
      const l = await laptop(name, conn, files);
      const first = btrbkRun(l.client);
      expect({ name, status: first.status, out: first.out + first.err }).toMatchObject({ name, status: 0 });
      fs.writeFileSync(l.fs.path('home', 'more.txt'), `${name} again\n`);
      await nextSecond();
      const second = btrbkRun(l.client);
      expect({ name, status: second.status, out: second.out + second.err }).toMatchObject({ name, status: 0 });
      expect(l.client.receivedBytes()).toBeLessThan(1 << 20);
      expect(backupsOf(`${BACKUP_ROOT}/${name}/laptop`)).toHaveLength(2);
    }
    const ps = backupsOf(`${BACKUP_ROOT}/${B}/laptop`).map((n) => `${BACKUP_ROOT}/${B}/laptop/${n}`);
    const shows = ps.map((p) => root(['btrfs', 'subvolume', 'show', p]));
    bravo = {
      paths: ps,
      uuids: [
        ...shows.flatMap((s) => [field(s, 'UUID'), field(s, 'Received UUID'), field(s, 'Parent UUID')]),
        field(root(['btrfs', 'subvolume', 'show', `${BACKUP_ROOT}/${B}`]), 'UUID'),
      ].filter((u) => /^[0-9a-f-]{36}$/.test(u)),
      ids: [
        ...shows.map((s) => field(s, 'Subvolume ID')),
        field(root(['btrfs', 'subvolume', 'show', `${BACKUP_ROOT}/${B}`]), 'Subvolume ID'),
      ],
    };
    expect(bravo.uuids.length).toBeGreaterThanOrEqual(5);
  });

  test("alpha's key on bravo's backups: every gate command (ls/find/diff's too) refused or filtered; bravo's names, UUIDs, data in no answer; nothing changed", () => {
    const [b1, b2] = bravo.paths;
    const [a1, a2] = backupsOf(`${BACKUP_ROOT}/${A}/laptop`).map((n) => `${BACKUP_ROOT}/${A}/laptop/${n}`);
    const before = inventory(BACKUP_ROOT);
    // every command below is a session of its own over one master connection of alpha's key (as btrbk's are)
    const master = masterOf(connA, A);
    const mux = { mux: master.reuse };
    const commands = [
      // backup.mjs ls, find and diff (issue 21): the listing and the metadata-only send, on bravo's backups, on the
      // top level and the roots, or climbing out of alpha's own backup (--under is a path inside it)
      `btrbk-manifest --list '${b1}'`,
      `btrbk-manifest --list --under laptop '${BACKUP_ROOT}/${B}'`,
      `btrbk-manifest --list --depth 1 '${MOUNT_POINT}'`,
      `btrbk-manifest --list --under ${B} '${BACKUP_ROOT}'`,
      `btrbk-manifest --list --under %2E%2E/%2E%2E/${B}/laptop '${a1}'`,
      `btrbk-manifest --list --under ../../${B} '${a1}'`,
      `sudo -n btrfs send --no-data '${b1}'`,
      `sudo -n btrfs send --no-data -p '${b1}' '${b2}'`,
      `sudo -n btrfs send --no-data -p '${b1}' '${a1}'`,
      `sudo -n btrfs send --no-data -p '${a1}' '${b2}'`,
      `sudo -n btrfs send --no-data '${MOUNT_POINT}'`,
      `sudo -n btrfs send --no-data '${BACKUP_ROOT}/${B}'`,
      `sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -a -r '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -a -d '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -o '${BACKUP_ROOT}/${A}'`,
      `sudo -n btrfs subvolume list -a '${BACKUP_ROOT}'`,
      `sudo -n btrfs subvolume list -a '${BACKUP_ROOT}/${B}'`,
      `sudo -n btrfs subvolume show '${b1}'`,
      `sudo -n btrfs subvolume show '${BACKUP_ROOT}/${B}'`,
      `sudo -n btrfs subvolume show --rootid=5 '${MOUNT_POINT}'`,
      ...bravo.ids.flatMap((id) => [
        `sudo -n btrfs subvolume show --rootid=${id} '${MOUNT_POINT}'`,
        `sudo -n btrfs subvolume show --rootid=${id} '${BACKUP_ROOT}/${A}'`,
      ]),
      `sudo -n btrfs subvolume show --rootid=99999 '${BACKUP_ROOT}/${A}'`,
      `sudo -n btrfs subvolume show --uuid=${bravo.uuids[0]} '${MOUNT_POINT}'`,
      `sudo -n btrfs send '${b1}'`,
      `sudo -n btrfs send -p '${b1}' '${b2}'`,
      `sudo -n btrfs send -p '${b1}' '${BACKUP_ROOT}/${A}/laptop/x'`,
      `sudo -n btrfs send -c '${b1}' '${BACKUP_ROOT}/${A}/laptop/x'`,
      `sudo -n btrfs receive '${BACKUP_ROOT}/${B}/laptop/'`,
      `sudo -n btrfs receive '${BACKUP_ROOT}/'`,
      `btrbk-manifest '${b1}'`,
      `btrbk-manifest --sample 50 --seed 1 '${b1}'`,
      `mkdir -p '${BACKUP_ROOT}/${B}/x'`,
      `test -d '${BACKUP_ROOT}/${B}'`,
      `readlink -v -e '${b1}'`,
      `sudo -n btrfs subvolume delete '${b1}'`,
      `sudo -n btrfs subvolume delete '${BACKUP_ROOT}/${B}/selftest/x'`,
      `sudo -n btrfs filesystem usage -b '${MOUNT_POINT}'`,
      ...['usage', 'retention', 'boot-log', 'cloud-init-log', 'scrub', 'version', 'mount', 'device-stats', 'help'].map(
        (d) => `btrbk-diag ${d}`,
      ),
    ];
    const refused: string[] = [];
    for (const command of commands) {
      const r = ssh(
        connA,
        command,
        simpleSubvolume(`drop-${crypto.randomBytes(2).toString('hex')}`, { f: 'x' }).stream,
        mux,
      );
      if (r.status !== 0) refused.push(command);
      // what the key was told, less the words it sent itself (a refusal names the path it was given)
      let said = `${r.stdout.toString('latin1')}\n${r.stderr}`;
      // (longest first: a short word such as '1' must not break up a path the refusal quotes)
      for (const w of command
        .split(' ')
        .map((x) => x.replace(/'/g, ''))
        .sort((x, y) => y.length - x.length))
        said = said.replaceAll(w, '<sent>');
      const leaks = [B, ...bravo.uuids, SECRET_B.slice(0, 20), ...bravo.paths.map((p) => path.basename(p))].filter(
        (s) => said.includes(s),
      );
      expect({ command, leaks }).toEqual({ command, leaks: [] });
    }
    // accepted: the list of the mount point (filtered), the top level's stand-in, and the harmless diagnostics
    expect(commands.filter((c) => !refused.includes(c))).toEqual([
      `sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -a -r '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -a -d '${MOUNT_POINT}'`,
      `sudo -n btrfs subvolume list -o '${BACKUP_ROOT}/${A}'`,
      `sudo -n btrfs subvolume show --rootid=5 '${MOUNT_POINT}'`,
      'btrbk-diag version',
      'btrbk-diag mount',
      'btrbk-diag device-stats',
      'btrbk-diag help',
    ]);
    // the control: alpha's own backups list and diff through alpha's key
    const own = ssh(connA, `btrbk-manifest --list --depth 1 '${a1}'`, undefined, mux);
    expect([own.status, own.stdout.toString('utf8').split('\n')[0]]).toEqual([0, '# btrbk-manifest 1 list']);
    expect(ssh(connA, `sudo -n btrfs send --no-data -p '${a1}' '${a2}'`, undefined, mux).status).toBe(0);
    // a subvolume ID of bravo's and one that does not exist get the same answer
    const byId = ssh(
      connA,
      `sudo -n btrfs subvolume show --rootid=${bravo.ids[0]} '${BACKUP_ROOT}/${A}'`,
      undefined,
      mux,
    );
    const none = ssh(connA, `sudo -n btrfs subvolume show --rootid=99999 '${BACKUP_ROOT}/${A}'`, undefined, mux);
    expect([byId.status, byId.stderr]).toEqual([none.status, none.stderr]);
    // alpha's own list: its backups, under the backup root's line
    const list = ssh(
      connA,
      `sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`,
      undefined,
      mux,
    ).stdout.toString('utf8');
    master.close();
    expect(
      list
        .trim()
        .split('\n')
        .map((l) => l.replace(/^.* path /, '').replace(/^<FS_TREE>\//, '')),
    ).toEqual([
      'backups',
      `backups/${A}`,
      ...backupsOf(`${BACKUP_ROOT}/${A}/laptop`).map((n) => `backups/${A}/laptop/${n}`),
    ]);
    expect(inventory(BACKUP_ROOT)).toBe(before);
    expect(leftovers()).toEqual([]);
  });

  test("crafted streams through alpha's key naming bravo's backups by UUID (snapshot, clone) or by `..` (clone path, also through /proc/1/root) are refused and leave nothing; alpha's own backup as the source lands (control)", () => {
    const dir = `${BACKUP_ROOT}/${A}/attack`;
    const master = masterOf(connA, A);
    const mux = { mux: master.reuse };
    expect(ssh(connA, `mkdir -p '${dir}'`, undefined, mux).status).toBe(0);
    const before = inventory(BACKUP_ROOT);
    const bShow = root(['btrfs', 'subvolume', 'show', bravo.paths[1]]);
    const aPath = `${BACKUP_ROOT}/${A}/laptop/${backupsOf(`${BACKUP_ROOT}/${A}/laptop`)[1]}`;
    const aShow = root(['btrfs', 'subvolume', 'show', aPath]);
    const aRel = `laptop/${path.basename(aPath)}`;
    const bRel = `${B}/laptop/${path.basename(bravo.paths[1])}`;
    const viaProc = `${'../'.repeat(10)}proc/1/root${BACKUP_ROOT}/${bRel}/secret.bin`;
    const snapshot = (label: string, uuid: string) =>
      new SendStream().snapshot(`snap-${label}`, newUuid(), 1, uuid, 1).end().toBuffer();
    const clone = (label: string, uuid: string, file: string, len: number) =>
      new SendStream()
        .subvol(`clone-${label}`, newUuid(), 1)
        .mkfile('leak', 258)
        .clone('leak', 0, len, uuid, 1, file, 0)
        .end()
        .toBuffer();
    const attacks: Array<[string, Buffer]> = [
      ["snapshot of bravo's backup by its UUID", snapshot('b-uuid', field(bShow, 'UUID'))],
      ["snapshot of bravo's backup by its received UUID", snapshot('b-ruuid', field(bShow, 'Received UUID'))],
      ["snapshot of bravo's directory by its UUID", snapshot('b-root', bravo.uuids.at(-1)!)],
      [
        "clone from bravo's backup by received UUID",
        clone('b-ruuid', field(bShow, 'Received UUID'), 'secret.bin', SECRET_B.length),
      ],
      ["clone from bravo's backup by UUID", clone('b-uuid', field(bShow, 'UUID'), 'secret.bin', SECRET_B.length)],
      [
        "clone from alpha's own backup with a path that climbs into bravo's",
        clone('dotdot', field(aShow, 'Received UUID'), `../../../${bRel}/secret.bin`, SECRET_B.length),
      ],
      [
        "clone from alpha's own backup with a path that climbs to the backup root and back into bravo's",
        clone('dotdot2', field(aShow, 'Received UUID'), `../../../../backups/${bRel}/secret.bin`, SECRET_B.length),
      ],
      [
        // PID 1's root is the host's /, where the volume is mounted with nothing covered: this copied bravo's file
        // before btrbk-receive took every procfs out of its namespace
        "clone from alpha's own backup with a path that climbs out of the volume and back in through /proc/1/root",
        clone('proc', field(aShow, 'Received UUID'), viaProc, SECRET_B.length),
      ],
    ];
    for (const [what, stream] of attacks) {
      const r = ssh(connA, `sudo -n btrfs receive '${dir}/'`, stream, mux);
      expect({ what, status: r.status === 0 ? 'landed' : 'refused' }).toEqual({ what, status: 'refused' });
      let said = r.stderr;
      for (const s of [`../../../${bRel}/secret.bin`, `../../../../backups/${bRel}/secret.bin`, viaProc])
        said = said.replaceAll(s, '<sent>');
      expect({ what, leaks: [B, ...bravo.uuids, SECRET_B.slice(0, 20)].filter((s) => said.includes(s)) }).toEqual({
        what,
        leaks: [],
      });
    }
    expect(inventory(BACKUP_ROOT)).toBe(before);
    expect(leftovers()).toEqual([]);
    // the control: the same shapes with alpha's own backup land, with its data
    for (const stream of [
      snapshot('own', field(aShow, 'Received UUID')),
      clone('own', field(aShow, 'Received UUID'), 'data.bin', DATA_A.length),
    ]) {
      const r = ssh(connA, `sudo -n btrfs receive '${dir}/'`, stream, mux);
      expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 0 });
    }
    master.close();
    expect(root(['cat', `${dir}/snap-own/data.bin`, `${dir}/clone-own/leak`])).toBe(`${DATA_A}${DATA_A}`);
    expect(aRel).toMatch(/^laptop\/home\./);
    deleteSubvolumesIn(dir);
  });

  test("the gate's path check raced with a receive: a path through a directory that appears, while it is checked, as alpha's backup holding a symlink into bravo's never sends bravo's backup", async () => {
    // Before the gate refused paths through a directory that does not exist (it checked up to the first missing
    // component, then ran the command), one of these sends ran after R1 had landed and sent bravo's backup through
    // R1's symlink (and the same race deleted backups through the selftest delete). Workers loop over the send
    // through one master connection while alpha receives R1; both sides of the window must be seen.
    const dir = `${BACKUP_ROOT}/${A}/race`;
    const master = masterOf(connA, `${A}-race`);
    expect(ssh(connA, `mkdir -p '${dir}'`, undefined, { mux: master.reuse }).status).toBe(0);
    const victim = `${dir}/R1/l/${path.basename(bravo.paths[1])}`;
    const stream = new SendStream()
      .subvol('R1', newUuid(), 1)
      .symlink('l', 257, `${BACKUP_ROOT}/${B}/laptop`)
      .chmod('', 0o755)
      .end()
      .toBuffer();
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dev-race-'));
    const loop =
      'out=$1 w=$2; shift 2; for i in $(seq 1 60); do "$@" >"$out/o.$w.$i" 2>"$out/e.$w.$i" </dev/null; echo $? >>"$out/s.$w"; done';
    const sshArgv = ['ssh', '-F', '/dev/null', ...sshArgs(connA, { extra: master.reuse }), '--'];
    const workers = [1, 2, 3, 4].map(
      (w) =>
        new Promise<void>((resolve) =>
          spawn('bash', ['-c', loop, 'bash', out, String(w), ...sshArgv, `sudo -n btrfs send '${victim}'`], {
            stdio: 'ignore',
          }).on('close', () => resolve()),
        ),
    );
    try {
      // (every worker has had a send refused before R1 exists: the early side of the window)
      await waitUntil(
        () => [1, 2, 3, 4].every((w) => fs.existsSync(path.join(out, `s.${w}`))),
        30_000,
        'a first refused send from every worker',
      );
      const rcv = ssh(connA, `sudo -n btrfs receive '${dir}/'`, stream, { mux: master.reuse });
      expect({ status: rcv.status, err: rcv.stderr }).toMatchObject({ status: 0 });
      await Promise.all(workers);
      const files = fs.readdirSync(out);
      const statuses = files
        .filter((f) => f.startsWith('s.'))
        .flatMap((f) => fs.readFileSync(path.join(out, f), 'utf8').trim().split('\n'));
      const said = files.filter((f) => f.startsWith('e.')).map((f) => fs.readFileSync(path.join(out, f), 'utf8'));
      const sent = files.filter((f) => f.startsWith('o.')).map((f) => fs.readFileSync(path.join(out, f)));
      expect(statuses.length).toBe(240);
      expect(statuses.filter((x) => x === '0')).toEqual([]);
      expect(sent.filter((b) => b.length > 0).length).toBe(0);
      // the window was covered: some sends were checked before R1 was there, some after
      expect(said.some((e) => /ERROR: cannot access '.*\/race\/R1': No such file or directory/.test(e))).toBe(true);
      expect(said.some((e) => /rejected: path goes through a subvolume: .*\/race\/R1/.test(e))).toBe(true);
    } finally {
      await Promise.all(workers);
      fs.rmSync(out, { recursive: true, force: true });
      master.close();
      deleteSubvolumesIn(dir);
    }
  });

  test("btrbk-manifest paused by its reader while alpha deletes the backup it walks (selftest) and receives one of that name with a symlink into bravo's: the walk reads none of bravo's files", async () => {
    // Before btrbk-manifest looked its entries up by name from where it is, the rest of the walk went through the new
    // backup's symlink: the hash of bravo's file (and, aimed there, of the host's key) came back to alpha
    const dir = `${BACKUP_ROOT}/${A}/selftest`;
    const master = masterOf(connA, `${A}-swap`);
    const mux = { mux: master.reuse };
    expect(ssh(connA, `mkdir -p '${dir}'`, undefined, mux).status).toBe(0);
    // enough output to fill ssh's window and the pipes (names of 200 bytes), then bravo's file name, last in order
    const names = Array.from({ length: 20_000 }, (_, i) => `${String(i).padStart(5, '0')}${'n'.repeat(195)}`);
    const first = new SendStream().subvol('X', newUuid(), 1).mkdir('a', 257);
    names.forEach((n, i) => first.mkfile(`a/${n}`, 300 + i));
    first.mkfile('a/secret.bin', 258).chmod('a', 0o755).chmod('', 0o755);
    expect(ssh(connA, `sudo -n btrfs receive '${dir}/'`, first.end().toBuffer(), mux).status).toBe(0);
    const bravoBackup = bravo.paths[1];
    const second = new SendStream()
      .subvol('X', newUuid(), 1)
      .symlink('a', 257, bravoBackup)
      .chmod('', 0o755)
      .end()
      .toBuffer();
    const walk = spawn(
      'ssh',
      ['-F', '/dev/null', ...sshArgs(connA, { extra: master.reuse }), '--', `btrbk-manifest '${dir}/X'`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const chunks: Buffer[] = [];
    let stderr = '';
    walk.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<void>((resolve) => walk.on('close', () => resolve()));
    try {
      await new Promise<void>((resolve) =>
        walk.stdout.once('data', (d: Buffer) => {
          chunks.push(d);
          walk.stdout.pause();
          resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 3000)); // ssh's window and the pipes fill; the walk waits in a/
      const del = ssh(connA, `sudo -n btrfs subvolume delete '${dir}/X'`, undefined, mux);
      const again = del.status === 0 ? ssh(connA, `sudo -n btrfs receive '${dir}/'`, second, mux) : undefined;
      walk.stdout.on('data', (d: Buffer) => chunks.push(d));
      walk.stdout.resume();
      await closed;
      const out = Buffer.concat(chunks).toString('latin1');
      const sha = crypto.createHash('sha256').update(SECRET_B).digest('hex');
      expect({ delete: del.status, again: again?.status, leaked: out.includes(sha) || out.includes(B) }).toEqual({
        delete: 0,
        again: 0,
        leaked: false,
      });
      // what it printed for a/secret.bin, if anything, is alpha's empty file
      const line = /^a\/secret\.bin\t.*$/m.exec(out)?.[0];
      if (line) expect(line.split('\t').at(-1)).toBe(crypto.createHash('sha256').update('').digest('hex'));
      expect(stderr).not.toContain(B);
    } finally {
      walk.kill('SIGKILL');
      master.close();
      deleteSubvolumesIn(dir, { keepDir: true });
    }
  });

  // A forged `btrfs subvolume list` line, by three routes: the subvolume's own name; a rename of the subvolume in
  // staging after it is made (`..`); the same through a symlink to / that the stream made (no `..` at all)
  const FORGED = 'ID 4242 gen 1 top level 5 path backups';
  test.each([
    [
      'its subvolume named with it',
      () => new SendStream().subvol(`x\n${FORGED}`, newUuid(), 1).mkfile('f', 258),
      ["the stream names its subvolume 'x%0AID%20", 'not a plain name'],
    ],
    [
      'its subvolume renamed to it',
      () => new SendStream().subvol('ok', newUuid(), 1).mkfile('f', 258).rename('../ok', `../x\n${FORGED}`),
      ['Device or resource busy'],
    ],
    [
      'its subvolume renamed to it through a symlink to / it made',
      () => new SendStream().subvol('ok', newUuid(), 1).symlink('a', 258, '/').rename('a/ok', `a/y\n${FORGED}`),
      ['Device or resource busy'],
    ],
  ] as const)(
    "alpha's receive, %s, its session held open: refused at once; bravo's subvolume list shows no forged line and bravo's btrbk runs meanwhile",
    async (_, stream, said) => {
      // Before btrbk-stream-check, btrfs receive made the subvolume under the stream's name in staging at once
      // (btrbk-receive checked the name at the end); before the check bind-mounted it on itself in the receive's
      // namespace, a later rename gave it any name. `btrfs subvolume list` printed it raw, and every key's filter kept
      // the forged line: bravo's btrbk failed ("Failed to parse subvolume list", exit 10) while alpha's session lasted
      const { child: rcv, closed, stderr } = openReceive(connA, `${connA.backupRoot}/laptop`);
      rcv.stdin.write(stream().toBuffer()); // and nothing more: a client that trickles or waits keeps it open
      try {
        // refused at once, or still open after 15 s (then it had the time to read what was sent: a loaded machine
        // takes a few seconds for the session to start)
        const refusedAtOnce = await Promise.race([
          closed.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), 15_000)),
        ]);
        const list = ssh(connB, `sudo -n btrfs subvolume list -a -c -u -q -R '${MOUNT_POINT}'`);
        expect(list.status).toBe(0);
        expect(list.stdout.toString('utf8')).not.toContain(FORGED);
        expect(rootSh('btrfs subvolume list -a "$1"', MOUNT_POINT)).not.toContain(FORGED);
        fs.appendFileSync(laptops[B].fs.path('home', 'during.txt'), 'bravo during\n');
        await nextSecond();
        const run = btrbkRun(laptops[B].client);
        expect({ status: run.status, out: run.out + run.err }).toMatchObject({ status: 0 });
        expect(refusedAtOnce).toBe(true);
      } finally {
        rcv.stdin.end();
        rcv.kill('SIGKILL');
      }
      expect(await closed).not.toBe(0);
      for (const words of said) expect(stderr()).toContain(words);
      await waitUntil(() => leftovers().length === 0, 30_000, 'staging and receive files cleaned up');
      expect(backupsOf(`${BACKUP_ROOT}/${A}/laptop`).filter((n) => !n.startsWith('home.'))).toEqual([]);
    },
  );

  test("a receive of alpha's held open reaches nothing of a receive of bravo's that starts later: a clone path into bravo's staging directory, named exactly, is refused and copies nothing", async () => {
    // Each receive's namespace covered the staging directories that existed when it started: one that started
    // later was open to it, and a clone path climbing from alpha's own backup into bravo's staging directory copied
    // bravo's file into alpha's backup (a review; it needs the directory's random name, which the test reads as root)
    const aPath = `${BACKUP_ROOT}/${A}/laptop/${backupsOf(`${BACKUP_ROOT}/${A}/laptop`)[1]}`;
    const aRuuid = field(root(['btrfs', 'subvolume', 'show', aPath]), 'Received UUID');
    const secret = `bravo-in-flight-${crypto.randomBytes(4).toString('hex')}\n`.repeat(256);
    const alpha = openReceive(connA, `${connA.backupRoot}/laptop`);
    let bravoRcv: ReturnType<typeof openReceive> | undefined;
    try {
      alpha.child.stdin.write(new SendStream().subvol('cd', newUuid(), 1).mkfile('g', 258).toBuffer());
      await waitUntil(
        () => rootSh('ls "$1"', STAGING_DIR).trim().split('\n').filter(Boolean).length === 1,
        30_000,
        "alpha's staging directory",
      );
      // bravo's receive starts (and makes its staging directory) once alpha's namespace is set up
      bravoRcv = openReceive(connB, `${connB.backupRoot}/laptop`);
      bravoRcv.child.stdin.write(
        new SendStream().subvol('bb', newUuid(), 1).mkfile('f', 258).write('f', 0, secret).toBuffer(),
      );
      const bravoDir = await waitUntil(
        () => rootSh('for d in "$1"/rcv.*; do [ -s "$d/bb/f" ] && basename "$d"; done; true', STAGING_DIR).trim(),
        30_000,
        "bravo's file in its staging directory",
      );
      alpha.child.stdin.end(
        new SendStream()
          .clone('g', 0, 0, aRuuid, 1, `../../../../${path.basename(STAGING_DIR)}/${bravoDir}/bb/f`, 0)
          .end()
          .toBuffer()
          .subarray(HEADER_LEN),
      );
      const status = await alpha.closed;
      expect({ status, landed: backupsOf(`${BACKUP_ROOT}/${A}/laptop`).includes('cd') }).toEqual({
        status: 1,
        landed: false,
      });
      expect(alpha.stderr()).toContain('ERROR: clone: cannot clone from the path the stream names');
      expect(alpha.stderr()).not.toContain(secret.slice(0, 20));
    } finally {
      alpha.child.kill('SIGKILL');
      if (bravoRcv) {
        bravoRcv.child.stdin.end();
        bravoRcv.child.kill('SIGKILL');
        await bravoRcv.closed;
      }
      if (backupsOf(`${BACKUP_ROOT}/${A}/laptop`).includes('cd')) {
        rootSh(
          'btrfs property set -f -ts "$1" ro false; btrfs subvolume delete -c "$1" >/dev/null',
          `${BACKUP_ROOT}/${A}/laptop/cd`,
        );
      }
    }
    await waitUntil(() => leftovers().length === 0, 30_000, 'staging and receive files cleaned up');
  });

  test('both still back up incrementally and restore their own backup through their own key', async () => {
    for (const [name, conn, file, text] of [
      [A, connA, 'data.bin', DATA_A],
      [B, connB, 'secret.bin', SECRET_B],
    ] as const) {
      const l = laptops[name];
      fs.writeFileSync(l.fs.path('home', 'third.txt'), `${name} third\n`);
      await nextSecond();
      const run = btrbkRun(l.client);
      expect({ name, status: run.status, out: run.out + run.err }).toMatchObject({ name, status: 0 });
      expect(l.client.receivedBytes()).toBeLessThan(1 << 20);
      const newest = backupsOf(`${BACKUP_ROOT}/${name}/laptop`).at(-1)!;
      const sent = ssh(conn, `sudo -n btrfs send '${conn.backupRoot}/laptop/${newest}'`);
      expect({ name, status: sent.status }).toEqual({ name, status: 0 });
      const restoreDir = l.fs.path('restored');
      fs.mkdirSync(restoreDir, { recursive: true });
      const rcv = spawnSync('btrfs', ['receive', restoreDir], { input: sent.stdout, encoding: 'utf8' });
      expect({ name, status: rcv.status, err: rcv.stderr }).toMatchObject({ name, status: 0 });
      expect(fs.readFileSync(path.join(restoreDir, newest, file), 'utf8')).toBe(text);
      expect(fs.readFileSync(path.join(restoreDir, newest, 'third.txt'), 'utf8')).toBe(`${name} third\n`);
    }
  });

  test("each completed receive is reported (btrbk-heartbeat) with the device's name through its key, the first directory through the legacy key, never for selftest", async () => {
    const log = '/run/heartbeat-args';
    // a stand-in that records its arguments (the real one's CloudWatch call is tested in heartbeat.local-target)
    rootSh(
      'cp -p "$1" /run/btrbk-heartbeat.real && printf "#!/bin/sh\\necho \\"\\$*\\" >> %s\\n" "$2" > "$1" && rm -f "$2"',
      '/usr/local/sbin/btrbk-heartbeat',
      log,
    );
    try {
      expect(ssh(connA, `mkdir -p '${connA.backupRoot}/selftest/rt'`).status).toBe(0);
      expect(ssh(legacy, `mkdir -p '${BACKUP_ROOT}/legacy-hb'`).status).toBe(0);
      for (const [conn, dir] of [
        [connA, `${connA.backupRoot}/laptop`],
        [connA, `${connA.backupRoot}/selftest/rt`],
        [legacy, `${BACKUP_ROOT}/legacy-hb`],
      ] as const) {
        const r = ssh(conn, `sudo -n btrfs receive '${dir}/'`, simpleSubvolume('hb.20260101T0000', { f: 'x' }).stream);
        expect({ dir, status: r.status, stderr: r.stderr }).toMatchObject({ dir, status: 0 });
      }
      const reported = () => rootSh('cat "$1" 2>/dev/null || true', log).trim().split('\n').filter(Boolean).sort();
      for (let i = 0; i < 50 && reported().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
      await new Promise((r) => setTimeout(r, 500));
      expect(reported()).toEqual([A, 'legacy-hb']);
    } finally {
      rootSh('mv -f /run/btrbk-heartbeat.real "$1"', '/usr/local/sbin/btrbk-heartbeat');
      rootSh(
        'for s in "$1"/laptop/hb.* "$1"/selftest/rt/hb.* "$2"/hb.*; do btrfs property set -f -ts "$s" ro false; btrfs subvolume delete -c "$s" >/dev/null; done; rm -rf "$1"/selftest "$2"',
        `${BACKUP_ROOT}/${A}`,
        `${BACKUP_ROOT}/legacy-hb`,
      );
    }
  });

  test("the legacy key still reaches every device's backups and the root, as before devices existed", () => {
    const list = ssh(legacy, `sudo -n btrfs subvolume list -a '${MOUNT_POINT}'`).stdout.toString('utf8');
    for (const p of bravo.paths) expect(list).toContain(`<FS_TREE>${p.slice(MOUNT_POINT.length)}`);
    expect(list).toContain(`<FS_TREE>/backups/${A}/laptop/`);
    const sent = ssh(legacy, `sudo -n btrfs send '${bravo.paths[0]}'`);
    expect(sent.status).toBe(0);
    expect(sent.stdout.includes(Buffer.from(SECRET_B.slice(0, 40)))).toBe(true);
    // it receives into the root's plain directories and through a device's directory (a subvolume the host made)
    for (const dir of [`${BACKUP_ROOT}/legacy-laptop`, `${BACKUP_ROOT}/${B}/legacy-drop`]) {
      expect(ssh(legacy, `mkdir -p '${dir}'`).status).toBe(0);
      const r = ssh(
        legacy,
        `sudo -n btrfs receive '${dir}/'`,
        simpleSubvolume('home.20260101T0000', { f: 'legacy' }).stream,
      );
      expect({ dir, status: r.status, stderr: r.stderr }).toMatchObject({ dir, status: 0 });
    }
    expect(ssh(legacy, 'btrbk-diag version').stdout.toString('utf8')).toMatch(/root=\/backup_volume\/backups mount=/);
    rootSh(
      'for s in "$1"/legacy-laptop/* "$1"/' +
        B +
        '/legacy-drop/*; do btrfs property set -f -ts "$s" ro false; btrfs subvolume delete -c "$s" >/dev/null; done; rmdir "$1"/legacy-laptop "$1"/' +
        B +
        '/legacy-drop',
      BACKUP_ROOT,
    );
  });
});

describe('revoking a device freezes its backups; adding it back unfreezes them', () => {
  const volumeId = () => JSON.parse(fs.readFileSync(paths().stateFile, 'utf8')).volumeId as string;
  async function bootWith(devices: string[]) {
    installBootScript(paths(devices), renderFor(paths(devices), volumeId()));
    const r = await rerunBootScript({ paths: paths(devices) });
    expect({ status: r.status, tail: r.output.split('\n').slice(-4).join('\n') }).toMatchObject({ status: 0 });
    return r.output;
  }
  const prune = (epoch: number) => rootSh('"$1" --now "$2"', PRUNE_PATH, String(epoch));
  const now = Math.floor(Date.now() / 1000);
  /** A garbage "newer backup" in bravo's series (as root, as if the legacy key had sent it): makes the prune due. */
  const arrive = (stamp: string) =>
    root(
      ['/bin/bash', '-c', `base64 -d | btrfs receive "$1/"`, 'bash', `${BACKUP_ROOT}/${B}/laptop`],
      simpleSubvolume(`home.${stamp}`, { f: stamp }).stream.toString('base64'),
    );
  let kept: string[];

  test('bravo removed: its key is refused at once; its backups stay through prunes a year apart, and the report says so', async () => {
    kept = backupsOf(`${BACKUP_ROOT}/${B}`);
    const out = await bootWith([A]);
    expect(out).toMatch(
      new RegExp(`device ${B} is revoked: its key is gone; its backups in ${BACKUP_ROOT}/${B} stay, frozen`),
    );
    expect(root(['cat', '/etc/btrbk-backup-host/devices'])).toMatch(new RegExp(`^revoked ${B}$`, 'm'));
    const r = ssh(connB, `sudo -n btrfs subvolume list -a '${MOUNT_POINT}'`);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/Permission denied \(publickey\)/);
    expect(ssh(connA, 'btrbk-diag version').status).toBe(0);
    prune(now + 3600); // first seen: recorded
    for (const [i, days] of [3, 30, 400].entries()) {
      arrive(`20990101T000${i}`);
      const run = prune(now + days * 86400);
      expect(run).toMatch(new RegExp(`frozen=${B}:\\d+ \\(revoked devices: nothing pruned\\)`));
    }
    expect(backupsOf(`${BACKUP_ROOT}/${B}`)).toEqual(
      [...kept, ...[0, 1, 2].map((i) => `laptop/home.20990101T000${i}`)].sort(),
    );
    expect(rootSh('"$1" report', PRUNE_PATH)).toMatch(new RegExp(`^frozen device ${B}: \\d+ backups kept`, 'm'));
    // the owner sees it with check-volume and the legacy key: every device, the revoked one frozen, each one's newest
    const admin = await checkVolume(legacy);
    expect(admin.filter((r) => !r.ok)).toEqual([]);
    const seen = admin.find((r) => r.name === 'devices and their newest backup');
    expect(seen?.detail).toBe('2 device(s), 1 revoked and frozen');
    expect(seen?.output?.split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(
          `^${A}  device: newest backup \\S+Z \\(.*\\), ${backupsOf(`${BACKUP_ROOT}/${A}`).length} backup\\(s\\)$`,
        ),
      ),
      expect.stringMatching(
        new RegExp(
          `^${B}  device, revoked, frozen \\(nothing of it is pruned\\): newest backup \\S+Z .*, ${kept.length + 3} backup\\(s\\)$`,
        ),
      ),
    ]);
    // alpha's key: its own device only, and it is told what it does not see
    const own = await checkVolume(connA);
    expect(own.filter((r) => !r.ok)).toEqual([]);
    expect(own.find((r) => r.name === 'whose key this is')?.detail).toMatch(
      new RegExp(`^device ${A}'s key: it sees only `),
    );
    expect(own.find((r) => r.name === 'devices and their newest backup')?.output).toMatch(
      new RegExp(
        `^${A}  device: newest backup \\S+Z \\(.*\\), ${backupsOf(`${BACKUP_ROOT}/${A}`).length} backup\\(s\\)$`,
      ),
    );
    expect(JSON.stringify(own)).not.toContain(B);
  });

  test('bravo added back: its key works again, and the next prunes apply the policy to its series', async () => {
    await bootWith([A, B]);
    expect(root(['cat', '/etc/btrbk-backup-host/devices'])).not.toMatch(/^revoked /m);
    const list = ssh(connB, `sudo -n btrfs subvolume list -a '${MOUNT_POINT}'`);
    expect(list.status).toBe(0);
    expect(list.stdout.toString('utf8')).toContain(`backups/${B}/laptop/home.20990101T0002`);
    const before = backupsOf(`${BACKUP_ROOT}/${B}`).length;
    expect(prune(now + 401 * 86400)).not.toMatch(/frozen/); // first seen again: recorded
    arrive('20990101T0003');
    const run = prune(now + 402 * 86400);
    expect(run).toMatch(/done: deleted [1-9]\d*, /);
    expect(backupsOf(`${BACKUP_ROOT}/${B}`).length).toBeLessThan(before + 1);
    expect(backupsOf(`${BACKUP_ROOT}/${B}`)).toContain('laptop/home.20990101T0003');
  });
});
