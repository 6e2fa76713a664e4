// The round trip's test data: a btrfs subvolume's worth of varied files (large, many small, sparse, awkward names,
// symlinks, hard links, modes, owners, xattrs, past mtimes), and the change made to it before the incremental send.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runChecked } from '../core/process.js';
import { MiB } from '../core/units.js';

function writeRandom(file: string, bytes: number) {
  const fd = fs.openSync(file, 'w');
  try {
    for (let left = bytes; left > 0; left -= MiB) fs.writeSync(fd, randomBytes(Math.min(left, MiB)));
  } finally {
    fs.closeSync(fd);
  }
}

const T = (iso: string) => new Date(iso).getTime() / 1000;

/**
 * Writes the varied test data into `dir` (an empty subvolume). `sizeMb` is roughly the total of real data.
 * Returns the number of files and the bytes of data actually written (for the ETA).
 */
export async function makeDataset(
  dir: string,
  { sizeMb = 64 }: { sizeMb?: number } = {},
): Promise<{ files: number; bytes: number }> {
  const big = Math.max(1, Math.round(sizeMb * 0.75)) * MiB;
  writeRandom(path.join(dir, 'large.bin'), big);
  // many small files, nested, some compressible text
  const small = path.join(dir, 'small');
  const count = Math.max(50, Math.min(2000, sizeMb * 16));
  for (let i = 0; i < count; i += 1) {
    const sub = path.join(small, `d${String(i % 20).padStart(2, '0')}`);
    if (i < 20) fs.mkdirSync(sub, { recursive: true });
    const f = path.join(sub, `f${String(i).padStart(5, '0')}.txt`);
    fs.writeFileSync(f, i % 3 ? randomBytes(200 + (i % 7) * 300) : `line ${i}\n`.repeat(40 + (i % 50)));
  }
  // a sparse file: 8x the data size apparent, 2 MiB real
  const sparse = path.join(dir, 'sparse.img');
  const fd = fs.openSync(sparse, 'w');
  fs.writeSync(fd, randomBytes(MiB), 0, MiB, 0);
  fs.writeSync(fd, randomBytes(MiB), 0, MiB, 4 * big);
  fs.ftruncateSync(fd, 8 * big);
  fs.closeSync(fd);
  // names that need care
  fs.writeFileSync(path.join(dir, 'name with spaces & ünïcödé.txt'), 'spaces and unicode\n');
  fs.writeFileSync(path.join(dir, '-leading-dash'), 'dash\n');
  fs.writeFileSync(path.join(dir, 'empty'), '');
  // symlinks: relative, absolute, dangling, to a directory
  fs.symlinkSync('large.bin', path.join(dir, 'link-relative'));
  fs.symlinkSync('/etc/hostname', path.join(dir, 'link-absolute'));
  fs.symlinkSync('does/not/exist', path.join(dir, 'link-dangling'));
  fs.symlinkSync('small/d01', path.join(dir, 'link-to-dir'));
  // hard links: two names in two directories for one inode
  fs.writeFileSync(path.join(dir, 'hardlinked'), 'one inode, three names\n');
  fs.linkSync(path.join(dir, 'hardlinked'), path.join(dir, 'hardlink-2'));
  fs.linkSync(path.join(dir, 'hardlinked'), path.join(small, 'd02', 'hardlink-3'));
  // modes and owners
  fs.mkdirSync(path.join(dir, 'private'), { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'private', 'secret'), 'secret\n', { mode: 0o600 });
  fs.chmodSync(path.join(dir, 'private'), 0o700);
  fs.chmodSync(path.join(dir, 'private', 'secret'), 0o600);
  fs.writeFileSync(path.join(dir, 'script.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(dir, 'script.sh'), 0o755);
  fs.writeFileSync(path.join(dir, 'readonly'), 'ro\n');
  fs.chmodSync(path.join(dir, 'readonly'), 0o444);
  fs.writeFileSync(path.join(dir, 'setgid-dir-file'), 'x\n');
  fs.chmodSync(path.join(dir, 'setgid-dir-file'), 0o2750);
  fs.chownSync(path.join(dir, 'private', 'secret'), 1234, 5678);
  fs.lchownSync(path.join(dir, 'link-relative'), 4321, 8765);
  // xattrs: text and binary values, on files and a directory
  await runChecked('setfattr', ['-n', 'user.comment', '-v', 'hello from the round trip', path.join(dir, 'large.bin')]);
  await runChecked('setfattr', ['-n', 'user.binary', '-v', '0x00ff7f80', path.join(dir, 'empty')]);
  await runChecked('setfattr', ['-n', 'user.dir', '-v', 'on a directory', path.join(dir, 'small')]);
  await runChecked('setfattr', ['-n', 'user.k1', '-v', 'v1', path.join(dir, 'hardlinked')]);
  // mtimes in the past, with sub-second parts; symlinks too (lutimes)
  fs.utimesSync(path.join(dir, 'large.bin'), T('2020-01-02T03:04:05.678Z'), T('2020-01-02T03:04:05.678Z'));
  fs.utimesSync(path.join(dir, 'readonly'), T('2001-09-09T01:46:40.5Z'), T('2001-09-09T01:46:40.5Z'));
  fs.lutimesSync(path.join(dir, 'link-absolute'), T('2010-10-10T10:10:10.1Z'), T('2010-10-10T10:10:10.1Z'));
  fs.utimesSync(path.join(dir, 'private'), T('2015-05-05T05:05:05Z'), T('2015-05-05T05:05:05Z'));
  return { files: count + 12, bytes: big + 2 * MiB + count * 1200 };
}

/** Changes the dataset for the incremental step: a little of everything. Returns bytes of new data. */
export async function changeDataset(dir: string): Promise<number> {
  const fd = fs.openSync(path.join(dir, 'large.bin'), 'r+');
  fs.writeSync(fd, randomBytes(MiB), 0, MiB, MiB); // 1 MiB rewritten in place
  fs.closeSync(fd);
  writeRandom(path.join(dir, 'new-file.bin'), 2 * MiB);
  const small = path.join(dir, 'small');
  fs.appendFileSync(path.join(small, 'd03', 'f00003.txt'), 'appended\n');
  for (const d of fs.readdirSync(path.join(small, 'd04')).slice(0, 10)) fs.rmSync(path.join(small, 'd04', d));
  fs.renameSync(path.join(small, 'd05'), path.join(small, 'd05-renamed'));
  fs.chmodSync(path.join(dir, 'script.sh'), 0o700);
  fs.rmSync(path.join(dir, 'link-dangling'));
  fs.symlinkSync('now/points/elsewhere', path.join(dir, 'link-dangling'));
  fs.linkSync(path.join(dir, 'hardlinked'), path.join(dir, 'hardlink-4'));
  fs.rmSync(path.join(dir, 'hardlink-2'));
  await runChecked('setfattr', ['-n', 'user.comment', '-v', 'changed', path.join(dir, 'large.bin')]);
  await runChecked('setfattr', ['-x', 'user.k1', path.join(dir, 'hardlinked')]);
  fs.utimesSync(path.join(dir, 'readonly'), T('2022-02-22T22:22:22.22Z'), T('2022-02-22T22:22:22.22Z'));
  return 3 * MiB;
}
