// `backup.mjs list --sizes` (scripts/lib/laptop/list.ts): each backup sized on the local snapshot of the same name
// (a fake `btrfs filesystem du` here; the laptop container's test runs the real one), the others marked as such.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import { formatList, groupBackups, sizeBackups, type BackupListing } from '../../scripts/lib/laptop/list.js';

let snaps: string;
beforeEach(() => {
  snaps = fs.mkdtempSync(path.join(os.tmpdir(), 'list-snaps-'));
});
afterEach(() => fs.rmSync(snaps, { recursive: true, force: true }));

const DIR = '/backup_volume/backups/laptop';
const listing = (): BackupListing => ({
  targetDir: DIR,
  subvolumes: groupBackups(
    ['home.20261128T0100', 'home.20261129T0100', 'home.20261130T0100', 'srv.20261130T0100'].map((name) => ({
      name,
      path: `${DIR}/${name}`,
      complete: true,
    })),
  ),
  incomplete: [],
});

test('sized on the local twins in one du call; a backup whose snapshot is gone here is unmeasured, and says why', async () => {
  // local retention kept the two newest home snapshots; srv has a snapshot dir of its own
  for (const n of ['home.20261129T0100', 'home.20261130T0100'])
    fs.mkdirSync(path.join(snaps, 'h', n), { recursive: true });
  fs.mkdirSync(path.join(snaps, 's', 'srv.20261130T0100'), { recursive: true });
  const calls: string[][] = [];
  const run: Run = async (cmd, args) => {
    calls.push([cmd, ...args]);
    const rows = args.slice(4).map((p, i) => `${(i + 1) * 1048576}  4096  ${(i + 1) * 1048576 - 4096}  ${p}`);
    return runResult({ status: 0, stdout: `     Total   Exclusive  Set shared  Filename\n${rows.join('\n')}\n` });
  };
  const sources = [
    { subvolume: '/home', snapshotDir: path.join(snaps, 'h') },
    { subvolume: '/srv', snapshotDir: path.join(snaps, 's') },
  ];
  const r = await sizeBackups(listing(), sources, { run });
  expect(calls).toEqual([
    [
      'btrfs',
      'filesystem',
      'du',
      '-s',
      '--raw',
      path.join(snaps, 'h', 'home.20261129T0100'),
      path.join(snaps, 'h', 'home.20261130T0100'),
      path.join(snaps, 's', 'srv.20261130T0100'),
    ],
  ]);
  expect(r.subvolumes.map((s) => s.backups.map((b) => [b.name, b.bytes]))).toEqual([
    [
      ['home.20261128T0100', null],
      ['home.20261129T0100', 1048576],
      ['home.20261130T0100', 2097152],
    ],
    [['srv.20261130T0100', 3145728]],
  ]);
  expect(r.sizes).toEqual({ measured: 3, unmeasured: 1, why: expect.stringMatching(/local snapshots are gone/) });
  const text = formatList({ ...listing(), ...r });
  expect(text).toMatch(/^ {4}home\.20261128T0100 {3}\S+ {3}-$/m);
  expect(text).toMatch(/^ {4}home\.20261130T0100 {3}\S+ {3}2\.0 MiB$/m);
  expect(text).toMatch(
    /^sizes: the data each backup holds, measured on the local snapshot it was sent from .*; 1 not measured \(-\): their local snapshots are gone/m,
  );
});

test('du failing is said, not hidden; no local snapshots (another machine) is said; without --sizes the list says how to get them', async () => {
  fs.mkdirSync(path.join(snaps, 'home.20261130T0100'));
  const failing: Run = async () =>
    runResult({ status: 1, stderr: "ERROR: cannot check space of '/x': Permission denied\n" });
  const r = await sizeBackups(listing(), [{ subvolume: '/home', snapshotDir: snaps }], { run: failing });
  expect(r.sizes).toMatchObject({
    measured: 0,
    unmeasured: 4,
    why: expect.stringMatching(/^btrfs filesystem du failed: ERROR: cannot check space/),
  });
  const other = await sizeBackups(listing(), [], {
    why: "another machine's backups (or nothing installed here): no local snapshots to measure",
  });
  expect(other.sizes).toMatchObject({ measured: 0, why: expect.stringMatching(/another machine/) });
  expect(formatList(listing())).toMatch(/^sizes: --sizes measures them/m);
  expect(formatList({ targetDir: DIR, subvolumes: [], incomplete: [] })).not.toMatch(/sizes/);
});
