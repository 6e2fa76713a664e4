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
  expect(r.sizes).toEqual({
    measured: 3,
    unmeasured: 1,
    why: `no local snapshot of that name in ${path.join(snaps, 'h')} (local retention keeps fewer than the host)`,
  });
  expect(r.subvolumes[0].backups[0].unmeasured).toBe(r.sizes!.why);
  const text = formatList({ ...listing(), ...r });
  expect(text).toMatch(/^ {4}home\.20261128T0100 {3}\S+ {3}-$/m);
  expect(text).toMatch(/^ {4}home\.20261130T0100 {3}\S+ {3}2\.0 MiB$/m);
  expect(text).toMatch(
    /^sizes: the data each backup holds, measured on the local snapshot it was sent from .*; 1 not measured \(-\): no local snapshot of that name in /m,
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
    why: expect.stringMatching(
      /^2: no local snapshot of that name .*; 1: btrfs filesystem du failed: ERROR: cannot check space.*; 1: srv is not protected/,
    ),
  });
  const other = await sizeBackups(listing(), [], {
    why: "another machine's backups (or nothing installed here): no local snapshots to measure",
  });
  expect(other.sizes).toMatchObject({ measured: 0, why: expect.stringMatching(/another machine/) });
  expect(formatList(listing())).toMatch(/^sizes: --sizes measures them/m);
  expect(formatList({ targetDir: DIR, subvolumes: [], incomplete: [] })).not.toMatch(/sizes/);
});

test("the reason for - is each backup's own: a snapshot that is there is measured even when its subvolume is not protected by this install (a shared snapshot directory); du giving no figure for one is said", async () => {
  // /home was installed, then /srv alone (--replace): home's snapshots are still in the shared directory
  for (const n of ['home.20261130T0100', 'srv.20261130T0100']) fs.mkdirSync(path.join(snaps, n));
  const run: Run = async (_cmd, args) => {
    // du answers for srv's snapshot only
    const rows = args.slice(4).filter((p) => p.includes('srv.'));
    return runResult({ status: 0, stdout: rows.map((p) => `2048  0  -  ${p}`).join('\n') });
  };
  const r = await sizeBackups(listing(), [{ subvolume: '/srv', snapshotDir: snaps }], { run });
  const home = r.subvolumes[0].backups;
  expect(home.map((b) => b.unmeasured)).toEqual([
    `home is not protected by this install and no snapshot of that name is in ${snaps}`,
    `home is not protected by this install and no snapshot of that name is in ${snaps}`,
    'btrfs filesystem du gave no figure for its local snapshot',
  ]);
  expect(r.subvolumes[1].backups[0]).toMatchObject({ bytes: 2048 });
  expect(r.subvolumes[1].backups[0]).not.toHaveProperty('unmeasured');
  expect(r.sizes?.why).toMatch(/^2: home is not protected .*; 1: btrfs filesystem du gave no figure/);
  expect(r.sizes?.why).not.toMatch(/gone/);
});
