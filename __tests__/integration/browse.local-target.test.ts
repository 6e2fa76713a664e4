// backup.mjs ls, find and diff (issue 21) on a tree of 20 000 files, over real SSH through the gate of the test
// run's local target. A home subvolume is backed up three times (a full, then two incrementals with known changes),
// sent as btrbk sends them: a read-only snapshot, `btrfs send -p` the previous one, received through the gate. The
// library the verbs run (laptop/browse.ts) then lists a backup (streamed: the count and the time are logged for
// docs/PERFORMANCE.md), a directory of it to a depth, finds a name across the three backups (one listing and two
// --no-data diffs) and says what changed between two backups, path by path; verify --all reads back an older
// backup whose local snapshot is gone and compares the others.
import { jest } from '@jest/globals';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runChecked } from '../../scripts/lib/core/process.js';
import type { Manifest } from '../../scripts/lib/laptop/install.js';
import { verifyBackups } from '../../scripts/lib/laptop/verify.js';
import {
  createScratchBtrfs,
  createSubvolume,
  snapshotReadOnly,
  type ScratchBtrfs,
} from '../../scripts/lib/data/btrfs-scratch.js';
import {
  diffBackups,
  findInSeries,
  formatChange,
  lsBackup,
  seriesFor,
  type Change,
  type ListEntry,
  type Series,
} from '../../scripts/lib/laptop/browse.js';
import { GATE_COMMANDS, gateLine } from '../../scripts/lib/remote/gate-commands.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';
import { BACKUP_ROOT, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { keySshArgs, removeRemoteDir, runEach } from './btrbk-client-harness.js';

jest.setTimeout(5 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const REMOTE_DIR = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/browse-${process.pid}`;
const DIRS = 20;
const PER_DIR = 1000;
const FILES = DIRS * PER_DIR;

let laptop: ScratchBtrfs;
let work: string;
let series: Series;
const home = (...p: string[]) => laptop.path('home', ...p);
const d = (i: number) => `d${String(i).padStart(2, '0')}`;
const f = (j: number) => `f${String(j).padStart(4, '0')}`;

/** A backup as btrbk makes one, without btrbk's own round trips: a read-only snapshot home.TIMESTAMP here, sent
 * (incrementally from the previous one) through the gate into the series' directory. */
let previous: string | null = null;
async function backup(timestamp: string): Promise<void> {
  const snap = laptop.path('snaps', `home.${timestamp}`);
  const s = await snapshotReadOnly(home(), snap);
  if (s.status !== 0) throw new Error(`snapshot failed: ${s.stderr}`);
  const send = spawn('btrfs', ['send', '-q', ...(previous ? ['-p', previous] : []), snap], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ssh = spawn('ssh', [...keySshArgs(conn), '--', gateLine(GATE_COMMANDS.receive(REMOTE_DIR))], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  send.stdout.pipe(ssh.stdin);
  let err = '';
  send.stderr.on('data', (d) => (err += d));
  ssh.stderr.on('data', (d) => (err += d));
  const done = (c: ReturnType<typeof spawn>) => new Promise<number | null>((r) => c.on('close', r));
  const [a, b] = await Promise.all([done(send), done(ssh)]);
  if (a !== 0 || b !== 0) throw new Error(`send ${snap} failed (${a}, ${b}): ${err}`);
  previous = snap;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'browse-'));
  laptop = await createScratchBtrfs({ sizeMiB: 1024, label: 'browse' });
  await createSubvolume(home());
  fs.mkdirSync(laptop.path('snaps'));
  const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(REMOTE_DIR)));
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
  // the tree: me/dNN/fNNNN, small files (the cost of ls/find/diff is in the entries, not their bytes)
  const t0 = Date.now();
  for (let i = 0; i < DIRS; i += 1) {
    fs.mkdirSync(home('me', d(i)), { recursive: true });
    for (let j = 0; j < PER_DIR; j += 1) fs.writeFileSync(home('me', d(i), f(j)), `${i}/${j}\n`);
  }
  fs.writeFileSync(home('me', d(1), 'thesis.tex'), 'draft 1\n');
  fs.writeFileSync(home('me', 'My Documents caf\u00e9.txt'), 'a name with a space and an accent\n');
  console.log(`browse: generated ${FILES} files in ${Date.now() - t0} ms`);
  const t1 = Date.now();
  await backup('20261201T0000'); // 1: full
  console.log(`browse: the first (full) backup in ${Date.now() - t1} ms`);
  // the changes of backup 2
  fs.mkdirSync(home('me', 'new'));
  for (let j = 0; j < 100; j += 1) fs.writeFileSync(home('me', 'new', f(j)), 'new\n');
  fs.rmSync(home('me', d(3)), { recursive: true });
  fs.renameSync(home('me', d(5)), home('me', `${d(5)}-renamed`));
  for (let j = 0; j < 10; j += 1) fs.appendFileSync(home('me', d(2), f(j)), 'more\n');
  for (let j = 10; j < 15; j += 1) fs.chmodSync(home('me', d(2), f(j)), 0o600);
  fs.renameSync(home('me', d(7), f(7)), home('me', d(7), 'thesis.tex'));
  fs.appendFileSync(home('me', d(1), 'thesis.tex'), 'draft 2\n');
  await backup('20261202T0000'); // 2
  fs.rmSync(home('me', d(1), 'thesis.tex'));
  await backup('20261203T0000'); // 3
  series = await seriesFor({ conn, manifest: null, subvolume: '/home', targetDir: REMOTE_DIR });
});

afterAll(async () => {
  await runEach([
    ...removeRemoteDir(conn, REMOTE_DIR),
    () => laptop?.destroy(),
    () => fs.rmSync(work, { recursive: true, force: true }),
  ]);
});

test('three backups of the series, oldest first', () => {
  expect(series.backups.map((b) => b.name)).toEqual(['home.20261201T0000', 'home.20261202T0000', 'home.20261203T0000']);
});

test(`ls streams every entry of a ${FILES}-file backup, as many as the snapshot holds`, async () => {
  const t0 = Date.now();
  let n = 0;
  let first: ListEntry | null = null;
  let maxGapWithoutEntry = 0;
  let last = Date.now();
  const r = await lsBackup({
    series,
    at: series.backups[0].timestamp,
    rel: '',
    onEntry: (e) => {
      n += 1;
      first ??= e;
      const now = Date.now();
      maxGapWithoutEntry = Math.max(maxGapWithoutEntry, now - last);
      last = now;
    },
  });
  console.log(`browse: ls of ${n} entries in ${Date.now() - t0} ms`);
  // . + me + 40 directories + 40 000 files + thesis.tex + the accented name
  expect(n).toBe(1 + 1 + DIRS + FILES + 2);
  expect(r).toMatchObject({ entries: n, files: FILES + 2, complete: true });
  expect(first).toMatchObject({ path: '.', type: 'dir' });
});

test('ls below a directory, to a depth, and of a name with a space and an accent', async () => {
  const got: string[] = [];
  await lsBackup({ series, rel: `me/${d(2)}`, depth: 1, onEntry: (e) => got.push(e.path) });
  expect(got).toHaveLength(1 + PER_DIR);
  expect(got[0]).toBe(`me/${d(2)}`);
  const one: ListEntry[] = [];
  await lsBackup({ series, rel: 'me/My Documents caf\u00e9.txt', onEntry: (e) => one.push(e) });
  expect(one).toMatchObject([{ path: 'me/My%20Documents%20caf%C3%A9.txt', type: 'file', size: 34 }]);
});

test('ls of a path the backup does not hold, or through a file: one line naming it, no listing', async () => {
  const errOf = async (rel: string) =>
    lsBackup({ series, rel, onEntry: () => undefined }).then(
      () => null,
      (e: unknown) => e,
    );
  const missing = await errOf(`me/${d(3)}/nothing`);
  expect(missing).toBeInstanceOf(OperatorError);
  expect((missing as OperatorError).message).toMatch(/^ls: me\/d03: not in this backup \(in home\.20261203T0000\)$/);
  const through = await errOf(`me/${d(2)}/${f(20)}/x`);
  expect((through as OperatorError).message).toMatch(/not a directory of this backup/);
});

test('diff of backups 1 and 2: the additions, the removed directory, the renames and the modifications, by path', async () => {
  const t0 = Date.now();
  const r = await diffBackups({ series, a: series.backups[0].timestamp, b: series.backups[1].timestamp });
  console.log(`browse: diff with ${r.changes.length} changes in ${Date.now() - t0} ms`);
  const by = (k: Change['kind']) => r.changes.filter((c) => c.kind === k);
  expect(by('added').map((c) => c.path)).toEqual([
    'me/new',
    ...Array.from({ length: 100 }, (_, j) => `me/new/${f(j)}`),
  ]);
  expect(by('removed').map((c) => c.path)).toEqual([
    `me/${d(3)}`,
    ...Array.from({ length: PER_DIR }, (_, j) => `me/${d(3)}/${f(j)}`),
  ]);
  expect(by('renamed').map((c) => formatChange(c, '/home'))).toEqual([
    `R /home/me/${d(5)} -> /home/me/${d(5)}-renamed`,
    `R /home/me/${d(7)}/${f(7)} -> /home/me/${d(7)}/thesis.tex`,
  ]);
  expect(by('modified').map((c) => formatChange(c, '/home'))).toEqual([
    `M /home/me/${d(1)}/thesis.tex`,
    ...Array.from({ length: 10 }, (_, j) => `M /home/me/${d(2)}/${f(j)}`),
    ...Array.from({ length: 5 }, (_, j) => `U /home/me/${d(2)}/${f(10 + j)} (mode)`),
  ]);
  // nothing else: 1 + 100 added, 1 + 1000 removed, 2 renamed, 16 modified
  expect(r.changes).toHaveLength(101 + 1 + PER_DIR + 2 + 16);
});

test('find a name across the backups: where it is, from when to when, and where it changed', async () => {
  const t0 = Date.now();
  const r = await findInSeries({ series, pattern: 'thesis.*' });
  console.log(`browse: find over ${r.backups.length} backups in ${Date.now() - t0} ms`);
  const [b1, b2, b3] = series.backups.map((b) => b.name);
  expect(
    r.hits.map((h) => ({
      path: h.path,
      in: h.in.map((i) => series.backups[i].name),
      changedIn: h.changedIn.map((i) => series.backups[i].name),
      earlier: h.earlierPaths,
    })),
  ).toEqual([
    { path: `me/${d(1)}/thesis.tex`, in: [b1, b2], changedIn: [b2], earlier: [] },
    { path: `me/${d(7)}/thesis.tex`, in: [b2, b3], changedIn: [], earlier: [] },
  ]);
});

test('verify --all: an older backup whose snapshot is gone here is read back on the host (readable), the others compared (clean)', async () => {
  // local retention keeps fewer snapshots than the host keeps backups: the oldest one goes here
  const gone = await runChecked('btrfs', ['subvolume', 'delete', laptop.path('snaps', 'home.20261201T0000')]);
  expect(gone.status).toBe(0);
  const manifest = {
    version: 1,
    machine: 'browse',
    targetDir: REMOTE_DIR,
    sources: [{ subvolume: home(), snapshotDir: laptop.path('snaps') }],
  } as unknown as Manifest;
  const said: string[] = [];
  const r = await verifyBackups({ conn, manifest, all: true, sample: 1, root: work, say: (l) => said.push(l) });
  expect(said.join('\n')).toMatch(/verify --all: 3 backup\(s\); each is read on the host .* costs 3 times one verify/);
  expect(r.subvolumes.map((v) => [path.posix.basename(v.backup ?? ''), v.state])).toEqual([
    ['home.20261201T0000', 'readable'],
    ['home.20261202T0000', 'clean'],
    ['home.20261203T0000', 'clean'],
  ]);
  expect(r.ok).toBe(true);
  expect(r.subvolumes[0].compared).toBeGreaterThan(0);
});
