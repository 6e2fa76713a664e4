// The spawn server's wire format, both ends (spawn-server.cjs, spawn-proxy-environment.cjs): frames of a u32 length
// (little endian) and that many bytes, over blocking FIFOs.
const fs = require('node:fs');

/** The next frame's bytes from fd; onEnd() when the other side closed first (it throws or exits). */
function readFrame(fd, onEnd) {
  const exactly = (n) => {
    const b = Buffer.alloc(n);
    for (let o = 0; o < n;) {
      const k = fs.readSync(fd, b, o, n - o);
      if (k === 0) onEnd();
      o += k;
    }
    return b;
  };
  return exactly(exactly(4).readUInt32LE(0));
}

/** Each buffer as a frame, written whole. */
function writeFrames(fd, buffers) {
  const parts = [];
  for (const b of buffers) {
    const length = Buffer.alloc(4);
    length.writeUInt32LE(b.length);
    parts.push(length, b);
  }
  const all = Buffer.concat(parts);
  for (let o = 0; o < all.length;) o += fs.writeSync(fd, all, o, all.length - o);
}

module.exports = { readFrame, writeFrames };
