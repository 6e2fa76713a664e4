// backup.mjs's changes to a person's filesystem, on a real btrfs (a loop device; root; not the local target):
// install --exclude DIR --make-subvolume (a plain directory becomes a nested subvolume with the same files, the
// original kept; undone with nothing lost when the tree changes meanwhile), and restore --make-live's swap (the
// old subvolume kept renamed, done under btrbk's lock, undone when the snapshot fails).
import { jest } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import {
  createScratchBtrfs,
  createSubvolume,
  destroyScratchBtrfs,
  snapshotReadOnly,
  type ScratchBtrfs,
} from '../../scripts/lib/data/btrfs-scratch.js';
import { run, runSync, type Run } from '../../scripts/lib/core/process.js';
import { convertToSubvolume, planExclusion } from '../../scripts/lib/laptop/exclude.js';
import { inspectSource } from '../../scripts/lib/laptop/install.js';
import { LOCKFILE } from '../../scripts/lib/laptop/layout.js';
import { swapLive } from '../../scripts/lib/laptop/restore.js';
import { spawn } from 'node:child_process';

jest.setTimeout(5 * 60_000);

let fsA: ScratchBtrfs;
let home: string;
const mountinfo = (): string => fs.readFileSync('/proc/self/mountinfo', 'utf8');
/** Every path below dir with its type, mode, owner, size, link target and content hash. */
const tree = (dir: string): string =>
  runSync('bash', [
    '-c',
    'cd "$1" && find . -printf "%p %y %m %U:%G %s %l\\n" | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum',
    '_',
    dir,
  ]).stdout;

beforeAll(async () => {
  fsA = await createScratchBtrfs({ sizeMiB: 512, label: 'exclude' });
  home = path.join(fsA.mountpoint, 'home');
  await createSubvolume(home);
  const cache = path.join(home, 'me', '.cache');
  fs.mkdirSync(path.join(cache, 'sub', 'deeper'), { recursive: true });
  fs.writeFileSync(path.join(cache, 'big'), Buffer.alloc(3 * 1024 * 1024, 7));
  fs.writeFileSync(path.join(cache, 'sub', 'deeper', 'small'), 'small\n');
  fs.writeFileSync(path.join(cache, 'sub', 'secret'), 'x', { mode: 0o600 });
  fs.symlinkSync('big', path.join(cache, 'link'));
  fs.linkSync(path.join(cache, 'big'), path.join(cache, 'hardlink'));
  fs.chownSync(path.join(cache, 'sub'), 1000, 1000);
  fs.chmodSync(cache, 0o700);
});
afterAll(async () => {
  if (fsA) await destroyScratchBtrfs(fsA);
});

test('a plain directory is refused without --make-subvolume, the steps named', () => {
  const cache = path.join(home, 'me', '.cache');
  expect(() => planExclusion(inspectSource(cache, mountinfo()), [home], { makeSubvolume: false, stamp: 'T1' })).toThrow(
    /plain directory/,
  );
});

test('--make-subvolume: a nested subvolume with the same tree, the original kept, and left out of the next snapshot', async () => {
  const cache = path.join(home, 'me', '.cache');
  const before = tree(cache);
  const plan = planExclusion(inspectSource(cache, mountinfo()), [home], { makeSubvolume: true, stamp: 'T2' });
  expect(plan.action).toBe('convert');
  await convertToSubvolume(plan);
  expect(fs.statSync(cache).ino).toBe(256);
  expect(tree(cache)).toBe(before);
  expect(fs.statSync(cache).mode & 0o777).toBe(0o700);
  expect(plan.keptAs && tree(plan.keptAs)).toBe(before);
  // the kept original is deleted by the person; then a snapshot of home holds an empty .cache
  fs.rmSync(plan.keptAs ?? '', { recursive: true });
  const snap = path.join(fsA.mountpoint, 'snap');
  await snapshotReadOnly(home, snap);
  expect(fs.readdirSync(path.join(snap, 'me', '.cache'))).toEqual([]);
  expect(fs.readFileSync(path.join(cache, 'sub', 'deeper', 'small'), 'utf8')).toBe('small\n');
  // a second install: already a subvolume, nothing to do
  expect(planExclusion(inspectSource(cache, mountinfo()), [home], { makeSubvolume: true, stamp: 'T3' }).action).toBe(
    'none',
  );
});

test('a file written while converting: the conversion is undone and every file is where it was, the new one too', async () => {
  const dir = path.join(home, 'me', 'busy');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'a'), 'a\n');
  const plan = planExclusion(inspectSource(dir, mountinfo()), [home], { makeSubvolume: true, stamp: 'T4' });
  // a program still writing into the (renamed) directory, between the copy and the comparison
  const racing: Run = async (cmd, args, opts) => {
    if (cmd === 'diff' && plan.keptAs) fs.writeFileSync(path.join(plan.keptAs, 'late'), 'late\n');
    return run(cmd, args, opts);
  };
  await expect(convertToSubvolume(plan, { run: racing })).rejects.toThrow(/differ.*undone/);
  expect(fs.statSync(dir).ino).not.toBe(256);
  expect(fs.readFileSync(path.join(dir, 'a'), 'utf8')).toBe('a\n');
  expect(fs.readFileSync(path.join(dir, 'late'), 'utf8')).toBe('late\n');
  expect(fs.existsSync(plan.keptAs ?? '')).toBe(false);
});

describe('restore --make-live: the swap', () => {
  let live: string;
  let snap: string;
  beforeAll(async () => {
    live = path.join(fsA.mountpoint, 'data');
    await createSubvolume(live);
    fs.writeFileSync(path.join(live, 'old'), 'old\n');
    const src = path.join(fsA.mountpoint, 'src');
    await createSubvolume(src);
    fs.writeFileSync(path.join(src, 'restored'), 'restored\n');
    snap = path.join(fsA.mountpoint, 'data.20261130T0000');
    await snapshotReadOnly(src, snap);
  });

  test('while btrbk holds its lock: refused, nothing changed', async () => {
    fs.mkdirSync(path.dirname(LOCKFILE), { recursive: true });
    const holder = spawn('flock', ['--no-fork', LOCKFILE, 'sleep', '30'], { stdio: 'ignore' }); // --no-fork: killing it frees the lock
    await new Promise((r) => setTimeout(r, 300));
    try {
      await expect(swapLive(live, `${live}.before-restore-T1`, snap)).rejects.toThrow(
        /a backup is running right now; nothing was changed/,
      );
    } finally {
      holder.kill();
    }
    expect(fs.readFileSync(path.join(live, 'old'), 'utf8')).toBe('old\n');
    expect(fs.existsSync(`${live}.before-restore-T1`)).toBe(false);
  });

  test('the snapshot fails: the rename is undone', async () => {
    await expect(
      swapLive(live, `${live}.before-restore-T2`, path.join(fsA.mountpoint, 'no-such-snapshot')),
    ).rejects.toThrow(/is as it was/);
    expect(fs.readFileSync(path.join(live, 'old'), 'utf8')).toBe('old\n');
    expect(fs.existsSync(`${live}.before-restore-T2`)).toBe(false);
  });

  test('the old subvolume is kept renamed; the live path is a writable snapshot of the restored one', async () => {
    await swapLive(live, `${live}.before-restore-T3`, snap);
    expect(fs.readFileSync(path.join(`${live}.before-restore-T3`, 'old'), 'utf8')).toBe('old\n');
    expect(fs.readFileSync(path.join(live, 'restored'), 'utf8')).toBe('restored\n');
    fs.writeFileSync(path.join(live, 'new'), 'writable\n');
    expect(fs.statSync(live).ino).toBe(256);
    expect(fs.readdirSync(snap)).toEqual(['restored']);
  });
});
