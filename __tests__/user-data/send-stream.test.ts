// The send stream builder the hostile-stream tests use (__tests__/support/send-stream.ts), checked byte by byte
// and against the real parser: `btrfs receive --dump` (btrfs-progs, no root needed) must read back every
// command, path and value the builder wrote, and must refuse a stream whose crc does not match.
import { spawnSync } from 'node:child_process';
import { Cmd, CMD_HEADER_LEN, crc32c, HEADER_LEN, SendStream, simpleSubvolume } from '../support/send-stream.js';

const U1 = '11111111-2222-3333-4444-555555555555';
const U2 = 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee';

/** `btrfs receive --dump` of a stream: exit status, the dump's lines (columns collapsed), stderr. */
function dump(stream: Buffer, extra: string[] = []) {
  const r = spawnSync('btrfs', ['receive', '--dump', ...extra], {
    input: stream,
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC' },
    timeout: 20_000,
  });
  if (r.error) throw new Error(`btrfs receive --dump did not run (is btrfs-progs installed?): ${r.error.message}`);
  return {
    status: r.status,
    lines: r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/).join(' ')),
    stderr: r.stderr,
  };
}

describe('send stream builder', () => {
  test("crc32c is Castagnoli: the standard check value with the usual init/final inversion, and btrfs's raw seed-0 form", () => {
    const check = Buffer.from('123456789');
    expect((crc32c(check, 0xffffffff) ^ 0xffffffff) >>> 0).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    expect(crc32c(check)).not.toBe(crc32c(check, 0xffffffff));
  });

  test('layout: header magic + u32le version, command = u32le length, u16le type, u32le crc over the command with the crc zeroed, TLVs', () => {
    const b = new SendStream().chmod('f', 0o755).end().toBuffer();
    expect(b.subarray(0, 13).toString('latin1')).toBe('btrfs-stream\0');
    expect(b.readUInt32LE(13)).toBe(1);
    const chmod = b.subarray(HEADER_LEN, HEADER_LEN + CMD_HEADER_LEN + 4 + 1 + 4 + 8);
    expect(chmod.readUInt32LE(0)).toBe(4 + 1 + 4 + 8); // path TLV "f" + mode TLV u64
    expect(chmod.readUInt16LE(4)).toBe(Cmd.CHMOD);
    expect([chmod.readUInt16LE(10), chmod.readUInt16LE(12), chmod.toString('latin1', 14, 15)]).toEqual([15, 1, 'f']);
    expect([chmod.readUInt16LE(15), chmod.readUInt16LE(17), Number(chmod.readBigUInt64LE(19))]).toEqual([5, 8, 0o755]);
    const zeroed = Buffer.from(chmod);
    zeroed.writeUInt32LE(0, 6);
    expect(chmod.readUInt32LE(6)).toBe(crc32c(zeroed));
    const end = b.subarray(HEADER_LEN + chmod.length);
    expect(end.length).toBe(CMD_HEADER_LEN);
    expect([end.readUInt32LE(0), end.readUInt16LE(4)]).toEqual([0, Cmd.END]);
  });

  test('btrfs receive --dump reads back every command with its paths and values (needs btrfs-progs)', () => {
    const s = new SendStream()
      .subvol('sv', U1, 7)
      .mkfile('f', 258)
      .mkdir('d', 259)
      .mknod('n', 0o20644, 0x0801, 260)
      .mkfifo('p', 261)
      .symlink('l', 262, '/etc/passwd')
      .rename('f', 'g')
      .link('h', 'g')
      .unlink('h')
      .rmdir('d')
      .write('g', 5, 'abc')
      .clone('g', 4096, 8192, U2, 9, 'src/file', 12288)
      .setXattr('g', 'user.k', 'v')
      .removeXattr('g', 'user.k')
      .truncate('g', 9)
      .chmod('g', 0o4755)
      .chown('g', 1000, 1001)
      .utimes('g', { sec: 1700000000, nsec: 5 }, { sec: 1600000000 }, { sec: 1500000000 })
      .updateExtent('g', 0, 4096)
      .end();
    const d = dump(s.toBuffer());
    expect(d.stderr).toBe('');
    expect(d.status).toBe(0);
    expect(d.lines).toEqual([
      `subvol ./sv uuid=${U1} transid=7`,
      'mkfile ./sv/f',
      'mkdir ./sv/d',
      'mknod ./sv/n mode=20644 dev=0x801',
      'mkfifo ./sv/p',
      'symlink ./sv/l dest=/etc/passwd',
      'rename ./sv/f dest=./sv/g',
      'link ./sv/h dest=g',
      'unlink ./sv/h',
      'rmdir ./sv/d',
      'write ./sv/g offset=5 len=3',
      `clone ./sv/g offset=4096 len=8192 from=./sv/src/file clone_offset=12288`,
      'set_xattr ./sv/g name=user.k data=v len=1',
      'remove_xattr ./sv/g name=user.k',
      'truncate ./sv/g size=9',
      'chmod ./sv/g mode=4755',
      'chown ./sv/g gid=1001 uid=1000',
      'utimes ./sv/g atime=2023-11-14T22:13:20+0000 mtime=2020-09-13T12:26:40+0000 ctime=2017-07-14T02:40:00+0000',
      'update_extent ./sv/g offset=0 len=4096',
    ]);
  });

  test('snapshot, `..` and absolute paths go through as written: the builder does not sanitise (needs btrfs-progs)', () => {
    const s = new SendStream()
      .snapshot('snap', U2, 11, U1, 7)
      .mkfile('../../etc/sudoers.d/x', 258)
      .write('/etc/shadow', 0, 'x')
      .rename('../home.1', '../renamed.1')
      .symlink('d', 259, '/etc')
      .mkfile('d/x', 260)
      .end();
    const d = dump(s.toBuffer());
    expect(d.status).toBe(0);
    expect(d.lines).toEqual([
      `snapshot ./snap uuid=${U2} transid=11 parent_uuid=${U1} parent_transid=7`,
      'mkfile ./snap/../../etc/sudoers.d/x',
      'write ./snap//etc/shadow offset=0 len=1',
      'rename ./snap/../home.1 dest=./snap/../renamed.1',
      'symlink ./snap/d dest=/etc',
      'mkfile ./snap/d/x',
    ]);
  });

  test('simpleSubvolume: a subvolume with its files, the way the kernel sends them (needs btrfs-progs)', () => {
    const { stream, uuid } = simpleSubvolume('home.1', { 'a.txt': 'hello\n', 'b.txt': 'x'.repeat(60_000) });
    const d = dump(stream);
    expect(d.status).toBe(0);
    expect(d.lines).toEqual([
      `subvol ./home.1 uuid=${uuid} transid=10`,
      'mkfile ./home.1/o257-0-0',
      'rename ./home.1/o257-0-0 dest=./home.1/a.txt',
      'write ./home.1/a.txt offset=0 len=6',
      'chmod ./home.1/a.txt mode=644',
      'mkfile ./home.1/o258-0-0',
      'rename ./home.1/o258-0-0 dest=./home.1/b.txt',
      'write ./home.1/b.txt offset=0 len=60000',
      'chmod ./home.1/b.txt mode=644',
      'chmod ./home.1/ mode=755',
    ]);
  });

  test('a corrupted crc is refused by btrfs receive (needs btrfs-progs)', () => {
    const good = new SendStream().subvol('sv', U1, 7).mkfile('f', 258).end().toBuffer();
    expect(dump(good).status).toBe(0);
    const bad = Buffer.from(good);
    bad[HEADER_LEN + 6] ^= 0x01; // first byte of the subvol command's crc
    const d = dump(bad);
    expect(d.status).not.toBe(0);
    expect(d.stderr).toMatch(/crc32 mismatch in command/);
    expect(d.lines).toEqual([]);
    const flipped = Buffer.from(good);
    flipped[flipped.length - CMD_HEADER_LEN - 1] ^= 0x20; // a byte of data (the mkfile's ino): the crc no longer matches
    expect(dump(flipped).stderr).toMatch(/crc32 mismatch in command/);
  });

  test('a truncated stream or a wrong magic is refused (needs btrfs-progs)', () => {
    const good = simpleSubvolume('sv', { 'a.txt': 'hello\n' }).stream;
    const cut = dump(good.subarray(0, good.length - 15));
    expect(cut.status).not.toBe(0);
    expect(cut.stderr).toMatch(/short read from stream|unexpected EOF/);
    const magic = Buffer.from(good);
    magic.write('X', 0, 'latin1');
    const m = dump(magic);
    expect(m.status).not.toBe(0);
    expect(m.stderr).toMatch(/unexpected header/);
  });
});
