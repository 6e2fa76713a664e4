// btrbk-stream-check (user-data/btrbk-stream-check), run here as btrbk-receive runs it on the host: the stream on
// stdin, what btrfs receive may read on stdout. It passes a stream btrbk sends byte for byte, and stops one before
// btrfs receive could create a subvolume whose name is not plain (a newline in it forged whole lines of every key's
// `btrfs subvolume list`), or a second subvolume, or anything before the first or after the end.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import {
  Attr,
  Cmd,
  crc32c,
  encodeCommand,
  HEADER_LEN,
  newUuid,
  SendStream,
  simpleSubvolume,
} from '../support/send-stream.js';

const CHECK = path.join(REPO_ROOT, 'user-data', 'btrbk-stream-check');

function check(stream: Buffer) {
  const r = spawnSync('perl', [CHECK], { input: stream, maxBuffer: 64 << 20, timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** A stream as btrbk's `btrfs send -p` makes it: a snapshot of the parent, changes, the end. */
function incremental(name = 'home.20260101T0000', version = 1) {
  return new SendStream(version)
    .snapshot(name, newUuid(), 12, newUuid(), 10)
    .mkfile('o258-0-0', 258)
    .rename('o258-0-0', 'new.txt')
    .write('new.txt', 0, 'new\n')
    .chmod('new.txt', 0o644)
    .utimes('', { sec: 1_700_000_000, nsec: 0 })
    .end()
    .toBuffer();
}

describe('btrbk-stream-check: what btrbk sends passes byte for byte', () => {
  test.each([
    ['a full backup (subvol)', simpleSubvolume('home.20260101T0000', { 'a.txt': 'a\n', 'b.txt': 'b\n' }).stream],
    ['an incremental one (snapshot)', incremental()],
    ['a version 2 stream', incremental('home.20260101T0000', 2)],
    ['names of every allowed character', incremental('A-z_0@9+.x')],
  ])('%s', (_, stream) => {
    const r = check(stream);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout.equals(stream)).toBe(true);
  });

  test('a stream of 6 MiB in 40 KiB writes: read and passed on in pieces, unchanged', () => {
    const s = new SendStream().subvol('big', newUuid(), 1).mkfile('f', 258);
    for (let off = 0; off < 6 << 20; off += 40_000) s.write('f', off, Buffer.alloc(40_000, off % 251));
    const stream = s.end().toBuffer();
    const r = check(stream);
    expect(r.status).toBe(0);
    expect(r.stdout.equals(stream)).toBe(true);
  });

  test('a cut stream is passed on as far as it goes (btrfs receive says it is cut), but never a subvol command it could not check', () => {
    const stream = incremental();
    for (const at of [HEADER_LEN + 3, HEADER_LEN + 13, Math.floor(stream.length / 2), stream.length - 4]) {
      const r = check(stream.subarray(0, at));
      if (at === HEADER_LEN + 13) {
        // inside the snapshot command's body: only the stream header went on
        expect({ status: r.status, out: r.stdout.length }).toEqual({ status: 0, out: HEADER_LEN });
      } else {
        expect(r.status).toBe(0);
        expect(r.stdout.equals(stream.subarray(0, at))).toBe(true);
      }
    }
  });
});

describe('btrbk-stream-check: refused before btrfs receive reads the command', () => {
  const refused = (stream: Buffer, why: string | RegExp, passed = HEADER_LEN) => {
    const r = check(stream);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^the stream was refused before btrfs receive read it: .*; nothing was received\n$/);
    expect(r.stderr).toMatch(why);
    // what went on (if anything) is the stream's start, up to the refused command at most: not a byte of it
    expect(r.stdout.length).toBeLessThanOrEqual(passed);
    expect(r.stdout.equals(stream.subarray(0, r.stdout.length))).toBe(true);
  };

  test.each([
    [
      'a newline forging a line of `btrfs subvolume list`',
      'x\nID 256 gen 5 top level 5 path backups',
      'x%0AID%20256%20gen',
    ],
    ['..', '..', "'..'"],
    ['.', '.', "'.'"],
    ['a hidden name', '.x', "'.x'"],
    ['empty', '', "''"],
    ['a slash', 'a/b', "'a/b'"],
    ['a space', 'a b', "'a%20b'"],
    ['a tab', 'a\tb', "'a%09b'"],
    ['a byte above ASCII', 'caf\u00e9', "'caf%C3%A9'"],
    ['a NUL (btrfs receive would read "a")', 'a\0b', "'a%00b'"],
    ['a percent sign', 'a%0A', "'a%250A'"],
  ])('a subvolume named with %s', (_, name, shown) => {
    refused(new SendStream().subvol(name, newUuid(), 1).end().toBuffer(), shown);
    refused(new SendStream().snapshot(name, newUuid(), 2, newUuid(), 1).end().toBuffer(), shown);
  });

  test('a long name is shown cut, escaped', () => {
    const r = check(new SendStream().subvol(`${'\n'.repeat(300)}`, newUuid(), 1).toBuffer());
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`'${'%0A'.repeat(120)}...'`);
  });

  test('several names in one command: btrfs receive takes the last, every one is checked', () => {
    const two = (a: string, b: string) =>
      new SendStream()
        .command(Cmd.SUBVOL, [
          [Attr.PATH, a],
          [Attr.UUID, { uuid: newUuid() }],
          [Attr.CTRANSID, { u64: 1 }],
          [Attr.PATH, b],
        ])
        .end()
        .toBuffer();
    refused(two('good', 'x\nbad'), 'x%0Abad');
    refused(two('x\nbad', 'good'), 'x%0Abad');
    const ok = two('good', 'also-good');
    expect(check(ok).stdout.equals(ok)).toBe(true);
  });

  test("a DATA attribute: in version 2 it runs to the command's end (as btrfs receive reads it), in version 1 it has a length", () => {
    // v2: the name after DATA is data to btrfs receive; the command has no name it would read
    const data = (version: number) =>
      new SendStream(version)
        .command(Cmd.SUBVOL, [
          [Attr.UUID, { uuid: newUuid() }],
          [Attr.DATA, 'xx'],
          [Attr.PATH, 'x\nbad'],
        ])
        .end()
        .toBuffer();
    refused(data(2), 'a subvol command without a name');
    refused(data(1), 'x%0Abad');
  });

  test('malformed subvol commands: no name, an attribute cut by the command end, longer than 64 KiB', () => {
    refused(new SendStream().command(Cmd.SUBVOL, [[Attr.UUID, { uuid: newUuid() }]]).toBuffer(), 'without a name');
    const cut = encodeCommand(Cmd.SUBVOL, [[Attr.PATH, 'good']]);
    cut.writeUInt32LE(cut.readUInt32LE(0) - 1, 0); // the last byte of the name is outside the command
    refused(new SendStream().raw(cut).toBuffer(), 'ends inside an attribute');
    const big = new SendStream()
      .command(Cmd.SUBVOL, [
        [Attr.PATH, 'good'],
        [Attr.XATTR_DATA, Buffer.alloc(65_000)],
        [Attr.XATTR_DATA, Buffer.alloc(600)],
      ])
      .toBuffer();
    refused(big, /a subvol command of 656\d\d bytes/);
  });

  test('a command longer than 16 MiB (btrfs receive would allocate what its header says, up to 4 GiB, as root)', () => {
    const s = new SendStream().subvol('good', newUuid(), 1).mkfile('f', 258);
    const before = s.toBuffer().length;
    const huge = encodeCommand(Cmd.WRITE, [[Attr.PATH, 'f']]);
    huge.writeUInt32LE(0xfffffff0, 0);
    refused(s.raw(huge).toBuffer(), /a command \(type 15\) of 4294967280 bytes/, before);
    // 16 MiB exactly is passed on (btrfs receive says what it thinks of it)
    const big = encodeCommand(Cmd.WRITE, [[Attr.PATH, 'f']]);
    big.writeUInt32LE(16 << 20, 0);
    const head = new SendStream().subvol('good', newUuid(), 1).toBuffer();
    const stream = Buffer.concat([head, big, Buffer.alloc((16 << 20) - (big.length - 10))]);
    const r = check(stream);
    expect(r.status).toBe(0);
    expect(r.stdout.equals(stream)).toBe(true);
  });

  test("an encoded write (v2) outside the kernel's bounds: btrfs receive would decompress it itself, into the length it gives, and write from outside that buffer", () => {
    // the attributes as the kernel writes them, DATA last without a length (version 2)
    const encodedWrite = (ufl: number, ul: bigint, uoff: bigint) => {
      const u64 = (type: number, v: bigint) => {
        const b = Buffer.alloc(12);
        b.writeUInt16LE(type, 0);
        b.writeUInt16LE(8, 2);
        b.writeBigUInt64LE(v, 4);
        return b;
      };
      const path = Buffer.concat([Buffer.from([Attr.PATH, 0, 1, 0]), Buffer.from('t')]);
      const data = Buffer.concat([Buffer.from([Attr.DATA, 0]), Buffer.alloc(64, 7)]);
      const body = Buffer.concat([
        path,
        u64(Attr.FILE_OFFSET, 0n),
        u64(Attr.UNENCODED_FILE_LEN, BigInt(ufl)),
        u64(Attr.UNENCODED_LEN, ul),
        u64(Attr.UNENCODED_OFFSET, uoff),
        Buffer.from([Attr.COMPRESSION, 0, 4, 0, 2, 0, 0, 0]), // zstd
        data,
      ]);
      const head = Buffer.alloc(10);
      head.writeUInt32LE(body.length, 0);
      head.writeUInt16LE(Cmd.ENCODED_WRITE, 4);
      const cmd = Buffer.concat([head, body]);
      cmd.writeUInt32LE(crc32c(cmd), 6);
      return cmd;
    };
    const start = new SendStream(2).subvol('good', newUuid(), 1).mkfile('t', 258).toBuffer();
    const stream = (cmd: Buffer) =>
      Buffer.concat([start, cmd, new SendStream(2).end().toBuffer().subarray(HEADER_LEN)]);
    // what the kernel sends: an extent of 128 KiB, part of it in the file
    const ok = stream(encodedWrite(4096, 131072n, 8192n));
    expect(check(ok).stdout.equals(ok)).toBe(true);
    expect(check(stream(encodedWrite(131072, 131072n, 0n))).status).toBe(0);
    // 1 GiB to decompress into (a review: 33 KB of stream, 1 GiB of root's memory)
    refused(stream(encodedWrite(4096, 1n << 30n, 0n)), 'an encoded write of 1073741824 unencoded bytes', start.length);
    // data past the buffer's end, or before it (an offset that wraps)
    refused(stream(encodedWrite(32768, 4096n, 0n)), 'lies outside its 4096 unencoded bytes', start.length);
    refused(stream(encodedWrite(60000, 65536n, (1n << 64n) - 60000n)), 'lies outside', start.length);
    refused(stream(encodedWrite(4096, 65536n, 65536n - 4095n)), 'lies outside', start.length);
  });

  test('the stream grammar: one header, the subvolume first and once, nothing after the end', () => {
    refused(Buffer.from('not a stream at all, but long enough'), 'no btrfs-stream header', 0);
    refused(Buffer.from('short'), 'shorter than its header', 0);
    refused(
      new SendStream().mkfile('x', 258).subvol('good', newUuid(), 1).end().toBuffer(),
      'a command (type 3) before',
    );
    refused(new SendStream().end().toBuffer(), 'a command (type 21) before');
    const first = new SendStream().subvol('a', newUuid(), 1).mkfile('f', 258);
    const firstLen = first.toBuffer().length;
    refused(first.subvol('b', newUuid(), 1).end().toBuffer(), 'a second subvol', firstLen);
    const one = simpleSubvolume('a', { f: 'x' }).stream;
    // a second stream after the first's end (btrfs receive without -e reads it, with its own subvolume)
    refused(Buffer.concat([one, simpleSubvolume('b', { f: 'y' }).stream]), "data after the stream's end", one.length);
    refused(Buffer.concat([one, Buffer.from([0])]), "data after the stream's end", one.length);
  });
});

test('btrbk-stream-check passes nothing of a subvol command before it has read and checked the whole of it', async () => {
  const stream = new SendStream().subvol('x\nbad', newUuid(), 1).end().toBuffer();
  const child = spawn('perl', [CHECK], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (d: Buffer) => out.push(d));
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  // the header and the command's first bytes (its name not yet complete), then a pause
  child.stdin.write(stream.subarray(0, HEADER_LEN + 16));
  // the stream header goes on as soon as the check has read it (however slowly perl starts), the rest does not
  for (let i = 0; i < 200 && Buffer.concat(out).length < HEADER_LEN; i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  expect(Buffer.concat(out).length).toBe(HEADER_LEN);
  child.stdin.end(stream.subarray(HEADER_LEN + 16));
  expect(await done).toBe(3);
  expect(Buffer.concat(out).equals(stream.subarray(0, HEADER_LEN))).toBe(true);
});

test('btrbk-stream-check takes only the options btrbk-receive gives it', () => {
  for (const args of [
    ['--frobnicate'],
    ['--receiver'],
    ['extra'],
    ['--receiver', '1'],
    ['--dir', '/x', '--view', '/y'],
  ]) {
    const r = spawnSync('perl', [CHECK, ...args], { input: simpleSubvolume('a', {}).stream });
    expect({ args, status: r.status }).toEqual({ args, status: 2 });
    expect(r.stdout.length).toBe(0);
    expect(r.stderr.toString()).toMatch(/^usage: btrbk-stream-check/);
  }
});
