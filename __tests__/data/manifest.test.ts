// The round trip's verification (manifest + comparison, data/manifest.ts) on real files. The round trip's remote
// commands are in roundtrip.test.ts; the whole round trip against the local target is in
// __tests__/integration/roundtrip.local-target.test.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  compareManifests,
  describeDiffs,
  manifest,
  manifestSummary,
  parseGetfattr,
  splitDiffs,
} from '../../scripts/lib/data/manifest.js';

const MiB = 1024 * 1024;

function tree(dir: string) {
  fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'a.txt'), 'alpha\n');
  fs.writeFileSync(path.join(dir, 'sub', 'b.bin'), Buffer.alloc(5000, 7));
  fs.linkSync(path.join(dir, 'a.txt'), path.join(dir, 'sub', 'a-link'));
  fs.symlinkSync('sub/b.bin', path.join(dir, 'sym'));
  const fd = fs.openSync(path.join(dir, 'sparse'), 'w');
  fs.writeSync(fd, Buffer.alloc(4096, 1), 0, 4096, 0);
  fs.ftruncateSync(fd, 16 * MiB);
  fs.closeSync(fd);
  spawnSync('setfattr', ['-n', 'user.note', '-v', 'hi', path.join(dir, 'a.txt')]);
  fs.utimesSync(path.join(dir, 'a.txt'), 1e9, 1e9 + 0.25);
  fs.chmodSync(path.join(dir, 'sub', 'b.bin'), 0o640);
}

/** A faithful copy (what a correct receive produces): cp -a keeps modes, mtimes, xattrs, hard links, sparseness. */
const copy = (from: string, to: string) =>
  expect(spawnSync('cp', ['-a', '--sparse=always', `${from}/.`, to]).status).toBe(0);

describe('round trip verification', () => {
  let dir: string;
  let a: string;
  let b: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-verify-'));
    a = path.join(dir, 'a');
    b = path.join(dir, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    tree(a);
    copy(a, b);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a faithful copy has no differences, and the manifest sees every kind of thing', () => {
    const m = manifest(a);
    expect(compareManifests(m, manifest(b))).toEqual([]);
    // a.txt and sub/a-link are one inode: its xattr shows under both names
    expect(manifestSummary(m)).toMatchObject({ files: 4, symlinks: 1, hardlinked: 2, xattrs: 2, sparse: 1 });
    expect(m.get('sym')).toMatchObject({ type: 'symlink', target: 'sub/b.bin' });
    expect(m.get('a.txt')?.links).toEqual(['sub/a-link']);
    expect(m.get('a.txt')?.mtimeNs).toBe('1000000000250000000');
  });

  const cases: [string, (root: string) => void, string, 'content' | 'metadata'][] = [
    ['changed content, same size', (r) => fs.writeFileSync(path.join(r, 'a.txt'), 'alphA\n'), 'sha256', 'content'],
    ['a missing file', (r) => fs.rmSync(path.join(r, 'sub', 'b.bin')), 'missing', 'content'],
    ['an extra file', (r) => fs.writeFileSync(path.join(r, 'new'), ''), 'extra', 'content'],
    ['a mode', (r) => fs.chmodSync(path.join(r, 'sub', 'b.bin'), 0o644), 'mode', 'metadata'],
    ['an mtime (sub-second)', (r) => fs.utimesSync(path.join(r, 'a.txt'), 1e9, 1e9 + 0.5), 'mtime', 'metadata'],
    [
      'a symlink target',
      (r) => (fs.rmSync(path.join(r, 'sym')), fs.symlinkSync('elsewhere', path.join(r, 'sym'))),
      'target',
      'metadata',
    ],
    [
      'an xattr',
      (r) => spawnSync('setfattr', ['-n', 'user.note', '-v', 'ho', path.join(r, 'a.txt')]),
      'xattrs',
      'metadata',
    ],
    [
      'a broken hard link',
      (r) => (
        fs.rmSync(path.join(r, 'sub', 'a-link')),
        fs.copyFileSync(path.join(r, 'a.txt'), path.join(r, 'sub', 'a-link')),
        fs.utimesSync(path.join(r, 'sub', 'a-link'), 1e9, 1e9 + 0.25),
        fs.chmodSync(path.join(r, 'sub', 'a-link'), fs.statSync(path.join(r, 'a.txt')).mode & 0o7777)
      ),
      'hardlinks',
      'metadata',
    ],
    ['an owner', (r) => fs.chownSync(path.join(r, 'a.txt'), 4242, 4242), 'owner', 'metadata'],
    [
      'a sparse file filled in',
      (r) => {
        const p = path.join(r, 'sparse');
        const data = fs.readFileSync(p);
        fs.rmSync(p);
        fs.writeFileSync(p, data);
      },
      'sparse',
      'metadata',
    ],
  ];
  it.each(cases)('finds %s', (_label, mutate, kind, group) => {
    mutate(b);
    const diffs = compareManifests(manifest(a), manifest(b));
    expect(diffs.map((d) => d.kind)).toContain(kind);
    const split = splitDiffs(diffs);
    expect(split[group].map((d) => d.kind)).toContain(kind);
    expect(describeDiffs(diffs)).toMatch(new RegExp(`: ${kind} \\(expected`));
  });

  it('reads getfattr output, including its octal escapes and the root entry', () => {
    const m = parseGetfattr(
      '# file: .\nuser.root=0x01\n\n# file: dir/na\\040me\\303\\274\nuser.a=0x6869\nuser.b=0x\n\n',
    );
    expect([...m.keys()]).toEqual(['.', 'dir/na meü']);
    expect(m.get('dir/na meü')).toEqual({ 'user.a': '0x6869', 'user.b': '0x' });
  });
});
