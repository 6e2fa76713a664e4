// backup.mjs install --exclude DIR --make-subvolume on a real btrfs (a loop device; root): a plain directory
// becomes a nested subvolume with the same files, the original is kept, and when something changes the tree
// meanwhile the conversion is undone with nothing lost. (Needs root and btrfs, not the local target.)
import { jest } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';
import { createScratchBtrfs, createSubvolume, destroyScratchBtrfs, snapshotReadOnly, type ScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';
import { run, runSync, type Run } from '../../scripts/lib/core/process.js';
import { convertToSubvolume, planExclusion } from '../../scripts/lib/laptop/exclude.js';
import { inspectSource } from '../../scripts/lib/laptop/install.js';

jest.setTimeout(5 * 60_000);

let fsA: ScratchBtrfs;
let home: string;
const mountinfo = (): string => fs.readFileSync('/proc/self/mountinfo', 'utf8');
/** Every path below dir with its type, mode, owner, size, link target and content hash. */
const tree = (dir: string): string => runSync('bash', ['-c', 'cd "$1" && find . -printf "%p %y %m %U:%G %s %l\\n" | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum', '_', dir]).stdout;

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
afterAll(async () => { if (fsA) await destroyScratchBtrfs(fsA); });

test('a plain directory is refused without --make-subvolume, the steps named', () => {
  const cache = path.join(home, 'me', '.cache');
  expect(() => planExclusion(inspectSource(cache, mountinfo()), [home], { makeSubvolume: false, stamp: 'T1' })).toThrow(/plain directory/);
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
  expect(planExclusion(inspectSource(cache, mountinfo()), [home], { makeSubvolume: true, stamp: 'T3' }).action).toBe('none');
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
