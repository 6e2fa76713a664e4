// Comparing files' bytes in the tests without hashing what need not be: a sparse image's holes are checked with a
// memcmp, and two files are compared chunk by chunk. Both read through one reused buffer (no file-sized allocation).
import crypto from 'node:crypto';
import fs from 'node:fs';

const CHUNK = 4 << 20;

/** Calls `each(chunk, offset)` for every CHUNK of a file, read into one reused buffer (no file-sized allocation). */
function eachChunk(file: string, each: (chunk: Buffer, offset: number) => void): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(CHUNK);
  let offset = 0;
  try {
    for (let n; (n = fs.readSync(fd, buf, 0, CHUNK, offset)) > 0; offset += n) each(buf.subarray(0, n), offset);
  } finally {
    fs.closeSync(fd);
  }
  return offset;
}

const ZEROS = Buffer.alloc(CHUNK);

/**
 * A digest of a file's bytes: its size and the SHA-256 of each chunk that is not all zeros, with its offset. Equal
 * digests, equal bytes; a sparse image's holes cost a memcmp instead of a hash (a 300 MiB image: a tenth of the CPU
 * of hashing it whole, as the tests did, which made it the lanes' largest cost in JS).
 */
export function contentDigest(file: string): string {
  const hash = crypto.createHash('sha256');
  const size = eachChunk(file, (chunk, offset) => {
    if (chunk.equals(ZEROS.subarray(0, chunk.length))) return;
    hash.update(`${offset}:${chunk.length}:`).update(chunk);
  });
  return `${size}:${hash.digest('hex')}`;
}

/** Whether two files hold the same bytes: compared chunk by chunk (a memcmp, no hashing); the first difference, if any. */
export function sameBytes(a: string, b: string): { same: boolean; at?: number } {
  const sizeA = fs.statSync(a).size;
  const sizeB = fs.statSync(b).size;
  if (sizeA !== sizeB) return { same: false, at: Math.min(sizeA, sizeB) };
  const fd = fs.openSync(b, 'r');
  const other = Buffer.allocUnsafe(CHUNK);
  let at: number | undefined;
  try {
    eachChunk(a, (chunk, offset) => {
      if (at !== undefined) return;
      const n = fs.readSync(fd, other, 0, chunk.length, offset);
      if (n !== chunk.length || !chunk.equals(other.subarray(0, n))) at = offset;
    });
  } finally {
    fs.closeSync(fd);
  }
  return at === undefined ? { same: true } : { same: false, at };
}
