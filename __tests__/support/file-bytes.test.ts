// The integration tests' byte comparisons (__tests__/support/file-bytes.ts): "left byte-for-byte intact" and "the
// restored file is the original" hold only if these tell every difference, in a hole, in data, at the end, in size.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { contentDigest, sameBytes } from './file-bytes.js';

const MiB = 1 << 20;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'file-bytes-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A sparse file of SIZE bytes with `writes` (offset -> bytes) in it. */
function sparse(name: string, size: number, writes: Record<number, string> = {}): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, '');
  fs.truncateSync(file, size);
  const fd = fs.openSync(file, 'r+');
  for (const [at, text] of Object.entries(writes)) fs.writeSync(fd, Buffer.from(text), 0, undefined, Number(at));
  fs.closeSync(fd);
  return file;
}

test('contentDigest: equal bytes give equal digests, whether the zeros are holes or written', () => {
  const a = sparse('a', 9 * MiB, { 4096: 'precious' });
  const b = sparse('b', 9 * MiB, { 4096: 'precious' });
  expect(contentDigest(a)).toBe(contentDigest(b));
  const zeros = path.join(dir, 'zeros');
  fs.writeFileSync(zeros, Buffer.alloc(5 * MiB));
  expect(contentDigest(zeros)).toBe(contentDigest(sparse('hole', 5 * MiB)));
});

test.each([
  ['a byte written into a hole', { 4096: 'precious', [7 * MiB + 3]: 'x' }, 9 * MiB],
  ['a byte changed in the data', { 4096: 'preciouS' }, 9 * MiB],
  ['the same bytes one chunk later', { [4 * MiB + 4096]: 'precious' }, 9 * MiB],
  ['a byte in the last partial chunk', { 4096: 'precious', [9 * MiB + 10]: 'z' }, 9 * MiB + 11],
  ['one byte longer', { 4096: 'precious' }, 9 * MiB + 1],
])('contentDigest and sameBytes tell %s', (_what, writes, size) => {
  const a = sparse('a', 9 * MiB, { 4096: 'precious' });
  const b = sparse('b', size, writes);
  expect(contentDigest(b)).not.toBe(contentDigest(a));
  expect(sameBytes(a, b).same).toBe(false);
});

test('sameBytes: the same file bytes; else the offset of the first chunk that differs', () => {
  const data = Buffer.alloc(10 * MiB, 7);
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  fs.writeFileSync(a, data);
  fs.writeFileSync(b, data);
  expect(sameBytes(a, b)).toEqual({ same: true });
  data[9 * MiB] = 8;
  fs.writeFileSync(b, data);
  expect(sameBytes(a, b)).toEqual({ same: false, at: 8 * MiB });
});
