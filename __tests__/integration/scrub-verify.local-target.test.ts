// The host side of issue 13 on the test run's local target (real boot script, real gate, real sudo and setpriv,
// real btrfs on a loop device):
//   - the monthly scrub (btrbk-scrub.service, what the timer starts) is read-only: no data block is written; what
//     the volume's write counter (/sys/block/LOOP/stat) shows is measured from an idle baseline (no write for
//     15 s) to the point where the scrub's commits and their after-work have landed, and its result shows in
//     check-volume;
//   - a fresh backup (real btrbk 0.32.5 client) has, through the gate's `btrbk-manifest`, the same manifest as the
//     snapshot it was sent from computed locally with the same program, in full and sampled with the same seed;
//     its received UUID is the snapshot's;
//   - a file changed inside the backup by root behind the gate's back is caught and named;
//   - the host's cost of a manifest, in CPU seconds per GiB, printed for docs/PERFORMANCE.md.
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_ENV_FILE, readConnection, REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { writeRandomFile } from '../../scripts/lib/bench/bench.js';
import { createScratchBtrfs, createSubvolume, type ScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';
import { listBackups } from '../../scripts/lib/data/restore.js';
import { checkIdentity, compareManifests, parseManifest } from '../../scripts/lib/data/verify.js';
import { runChecks } from '../../scripts/lib/diagnose/checks.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { GATE_COMMANDS, gateLine } from '../../scripts/lib/remote/gate-commands.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';
import { btrbkClient, removeRemoteDir, runEach } from './btrbk-client-harness.js';
import {
  QUIET_SECONDS,
  SHORT_COMMIT_SECONDS,
  untilQuiet,
  volumeDevice,
  withShortCommit,
  type InTarget,
} from './volume-writes.js';

jest.setTimeout(15 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const REMOTE_DIR = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/verify-${process.pid}`;
const PROGRAM = path.join(REPO_ROOT, 'user-data', 'btrbk-manifest');
const MiB = 1024 * 1024;
const DATA_MIB = 256;

let laptop: ScratchBtrfs;
let work: string;
let snapshot = '';
let backup = '';

function inTarget(argv: string[], timeout = 300_000): string {
  const r = execInTarget(argv, { timeout });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in the target failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

const localManifest = (sample?: [number, number]) => {
  const r = spawnSync(
    'perl',
    [PROGRAM, ...(sample ? ['--sample', String(sample[0]), '--seed', String(sample[1])] : []), snapshot],
    { encoding: 'latin1', maxBuffer: 1 << 28 },
  );
  expect(r.stderr).toBe('');
  return r.stdout;
};
const remoteManifest = async (sample?: [number, number]) => {
  const r = await runRemote(
    conn,
    gateLine(GATE_COMMANDS.manifest(backup, sample ? { percent: sample[0], seed: sample[1] } : null)),
    { timeoutMs: 600_000 },
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
};

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-it-'));
  laptop = await createScratchBtrfs({ sizeMiB: 1024, label: 'laptop-verify' });
  await createSubvolume(laptop.path('home'));
  fs.mkdirSync(laptop.path('snaps'));
  writeRandomFile(laptop.path('home', 'data.bin'), DATA_MIB * MiB);
  fs.mkdirSync(laptop.path('home', 'docs'));
  for (let i = 0; i < 300; i += 1)
    fs.writeFileSync(laptop.path('home', 'docs', `note-${i}.txt`), `note ${i}\n`.repeat(i + 1));
  fs.writeFileSync(laptop.path('home', 'docs', 'private'), 'mine alone');
  fs.chmodSync(laptop.path('home', 'docs', 'private'), 0o600);
  fs.chownSync(laptop.path('home', 'docs', 'private'), 1000, 1000);
  fs.symlinkSync('/etc/shadow', laptop.path('home', 'docs', 'to-shadow'));
  fs.writeFileSync(Buffer.from(laptop.path('home', 'docs', 'odd\nname \xff'), 'latin1'), 'odd');
  const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(REMOTE_DIR)));
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
  fs.mkdirSync(path.join(work, 'a'));
  const a = btrbkClient(conn, path.join(work, 'a'), {
    volume: laptop.mountpoint,
    subvolume: 'home',
    targetDir: REMOTE_DIR,
  });
  const first = a.run('run');
  expect({ status: first.status, output: `${first.out}${first.err}` }).toMatchObject({ status: 0 });
  const snaps = fs.readdirSync(laptop.path('snaps')).filter((n) => n.startsWith('home.'));
  expect(snaps).toHaveLength(1);
  snapshot = laptop.path('snaps', snaps[0]);
  const backups = (await listBackups(conn, REMOTE_DIR)).filter((b) => b.complete);
  expect(backups).toHaveLength(1);
  backup = backups[0].path;
});

afterAll(async () => {
  await runEach([
    () => execInTarget(['systemctl', 'start', 'btrbk-scrub.timer', 'btrbk-prune.timer']),
    ...removeRemoteDir(conn, REMOTE_DIR),
    () => laptop?.destroy(),
    () => fs.rmSync(work, { recursive: true, force: true }),
  ]);
});

test('the scrub reads the whole volume without writing a data block; its result shows in check-volume', async () => {
  const run: InTarget = (argv) => inTarget(argv, 600_000);
  const dev = volumeDevice(run);
  // the target is shared: its own timers (the hourly scrub check finds backups from earlier tests and scrubs, the
  // prune) must not write in the windows measured here; the first scrub is this test's own (run --now)
  inTarget([
    'systemctl',
    'stop',
    'btrbk-scrub.timer',
    'btrbk-prune.timer',
    'btrbk-scrub.service',
    'btrbk-prune.service',
  ]);
  inTarget(['sh', '-c', `btrfs scrub cancel ${MOUNT_POINT} >/dev/null 2>&1; true`]);
  // each reading waits until the counters stood still for QUIET_SECONDS at commit=1 (volume-writes.ts says why that
  // proves what 32 s at the default interval did). The first is the idle baseline: the target is shared, and what
  // earlier tests left to the kernel (a deleted subvolume's cleanup by btrfs-cleaner, an emptied block group that
  // async discard hands back) lands first; untilQuiet fails the test if the volume never goes quiet. The second
  // holds the scrub's commits and their after-work (the block group it replaced, deleted some 10 s later)
  let quietAfter = 0;
  let scrubWrites = 0;
  await withShortCommit(run, async () => {
    const t0 = Date.now();
    const w0 = await untilQuiet(run, dev);
    quietAfter = (Date.now() - t0) / 1000;
    inTarget(['/usr/local/sbin/btrbk-scrub', 'run', '--now'], 600_000);
    scrubWrites = (await untilQuiet(run, dev)).sectors - w0.sectors;
  });
  const report = inTarget(['/usr/local/sbin/btrbk-scrub', 'report']);
  process.stderr.write(
    `[scrub-verify] idle volume: 0 bytes written in the ${QUIET_SECONDS} s before the scrub (quiet after ${quietAfter.toFixed(0)} s, commit=${SHORT_COMMIT_SECONDS}); scrub: ${scrubWrites * 512} bytes written, its after-work included\n`,
  );
  expect(report).toMatch(/^exit=0$/m);
  const read = Number(/data_bytes_scrubbed: (\d+)/.exec(report)?.[1]);
  expect(read).toBeGreaterThanOrEqual(DATA_MIB * MiB); // data.bin (random); the notes are inline in metadata or compressed
  // read-only: the hundreds of MiB it read are not written back; what moves is the kernel's transaction commit
  // (the block groups it marks read-only while it reads them), a few hundred KiB of tree roots and super blocks
  expect(scrubWrites * 512).toBeLessThan(Math.min(4 * MiB, read / 50));
  const results = (await runChecks(conn, ['check-volume'], { lines: 20 })).flatMap((x) => x.results);
  const scrub = results.find((r) => /last scrub/.test(r.name));
  expect(scrub).toMatchObject({ ok: true, detail: expect.stringMatching(/read \d.* in \d+ s, no errors$/) });
  expect(scrub?.warn).toBeFalsy();
  // the timer's next hourly run: the last scrub is not 28 days old, so no second scrub. (Its write counters are not
  // asserted here: host-identity.local-target's idle test covers a quiet host's timers.)
  inTarget(['systemctl', 'start', 'btrbk-scrub.service'], 600_000);
  expect(/^when=.*$/m.exec(inTarget(['/usr/local/sbin/btrbk-scrub', 'report']))?.[0]).toBe(
    /^when=.*$/m.exec(report)?.[0],
  );
});

test('a fresh backup verifies clean: same snapshot (received UUID), same manifest in full and sampled with one seed', async () => {
  const show = await runRemote(conn, gateLine(GATE_COMMANDS.subvolumeShow(backup)));
  const local = spawnSync('btrfs', ['subvolume', 'show', snapshot], { encoding: 'utf8' });
  expect(checkIdentity(local.stdout, show.stdout)).toMatchObject({ same: true });

  const t0 = Date.now();
  const remoteFull = await remoteManifest();
  const full = compareManifests(localManifest(), remoteFull);
  expect(full.problems).toEqual([]);
  expect(full.differences).toEqual([]);
  expect(parseManifest(remoteFull).entries.get('docs/odd%0Aname%20%FF')).toMatchObject({ type: 'f', size: '3' });
  expect(parseManifest(remoteFull).entries.get('docs/private')).toMatchObject({ owner: '1000:1000', mode: '0600' });
  expect(parseManifest(remoteFull).entries.get('docs/to-shadow')).toMatchObject({
    type: 'l',
    target: '/etc/shadow',
    sha256: '-',
  });
  const sampled = compareManifests(localManifest([10, 4242]), await remoteManifest([10, 4242]));
  expect(sampled).toMatchObject({ problems: [], differences: [] });
  expect(sampled.compared).toBeGreaterThan(10);
  expect(sampled.compared).toBeLessThan(80);
  process.stderr.write(
    `[scrub-verify] full manifest through the gate: ${((Date.now() - t0) / 1000).toFixed(1)} s wall\n`,
  );

  // the host's cost: CPU seconds of the program (as the gate runs it) per GiB hashed
  inTarget(['sync']);
  fs.writeFileSync('/proc/sys/vm/drop_caches', '3'); // one kernel: the container's page cache is the host's
  const out = inTarget([
    'bash',
    '-c',
    `sudo -u btrbk sudo -n /usr/local/sbin/btrbk-manifest '${backup}' | tail -n 1; times`,
  ]);
  const bytes = Number(/bytes=(\d+)/.exec(out)?.[1]);
  const times = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const cpu = times[2] + times[3]; // children: user, sys
  expect(bytes).toBeGreaterThan(DATA_MIB * MiB);
  process.stderr.write(
    `[scrub-verify] manifest on the host: ${(bytes / 2 ** 30).toFixed(3)} GiB hashed, ${cpu.toFixed(2)} CPU s: ${(cpu / (bytes / 2 ** 30)).toFixed(1)} CPU s per GiB\n`,
  );
});

test('a file changed inside the backup by root, behind the gate, is caught and named', async () => {
  inTarget(['btrfs', 'property', 'set', '-f', '-t', 'subvol', backup, 'ro', 'false']);
  try {
    inTarget(['sh', '-c', `printf X | dd of='${backup}/docs/note-42.txt' bs=1 seek=3 conv=notrunc status=none`]);
    inTarget(['chmod', '0640', `${backup}/docs/note-7.txt`]);
  } finally {
    inTarget(['btrfs', 'property', 'set', '-t', 'subvol', backup, 'ro', 'true']);
  }
  const r = compareManifests(localManifest(), await remoteManifest());
  expect(r.problems).toEqual([]);
  const by = Object.fromEntries(r.differences.map((d) => [d.path, d.what]));
  expect(by['docs/note-42.txt']).toEqual(expect.arrayContaining(['content']));
  expect(by['docs/note-7.txt']).toEqual(expect.arrayContaining(['mode']));
  expect(Object.keys(by).filter((p) => !['docs/note-42.txt', 'docs/note-7.txt', 'docs'].includes(p))).toEqual([]);
  // flipping it writable forced away its received UUID: it no longer passes as the snapshot's backup
  const show = await runRemote(conn, gateLine(GATE_COMMANDS.subvolumeShow(backup)));
  const local = spawnSync('btrfs', ['subvolume', 'show', snapshot], { encoding: 'utf8' });
  expect(checkIdentity(local.stdout, show.stdout)).toMatchObject({ same: false });
});
