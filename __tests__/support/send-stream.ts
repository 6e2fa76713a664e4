// A small builder of btrfs send streams (format v1, as in btrfs-progs kernel-shared/send.h and
// common/send-stream.c), for tests that play a hostile client.
//
// The threat: `btrfs receive DIR` runs as root on the backup host and replays these commands with plain path
// syscalls. Every path in a stream is appended to "DIR/<subvolume>/" as text: nothing stops `..`, and the
// syscalls follow symlinks the stream itself created. Without a chroot, a stream that a stolen client key
// sends can so create, write, chmod, rename or unlink anything root can on the host. Commands that come before
// any subvol/snapshot command are even resolved against "/" (the subvolume part of the path is still empty).
//
// Layout: header = "btrfs-stream\0" + u32le version. Each command = u32le length of its attribute data,
// u16le command type, u32le crc32c, then TLV attributes (u16le type, u16le length, value). The crc is
// btrfs's raw crc32c (seed 0, no final inversion) over header + data with the crc field zeroed.
import crypto from 'node:crypto';
import { SEND_CMD } from '../../scripts/lib/laptop/browse.js';

export const MAGIC = 'btrfs-stream\0';
export const HEADER_LEN = 17; // magic (13) + version (4)
export const CMD_HEADER_LEN = 10; // len (4) + cmd (2) + crc (4)

/** The command numbers: one table, the one the product's parser reads (laptop/browse.ts for backup.mjs diff). */
export const Cmd = SEND_CMD;

export const Attr = {
  UUID: 1,
  CTRANSID: 2,
  INO: 3,
  SIZE: 4,
  MODE: 5,
  UID: 6,
  GID: 7,
  RDEV: 8,
  CTIME: 9,
  MTIME: 10,
  ATIME: 11,
  OTIME: 12,
  XATTR_NAME: 13,
  XATTR_DATA: 14,
  PATH: 15,
  PATH_TO: 16,
  PATH_LINK: 17,
  FILE_OFFSET: 18,
  DATA: 19,
  CLONE_UUID: 20,
  CLONE_CTRANSID: 21,
  CLONE_PATH: 22,
  CLONE_OFFSET: 23,
  CLONE_LEN: 24,
  // version 2
  FALLOCATE_MODE: 25,
  FILEATTR: 26,
  UNENCODED_FILE_LEN: 27,
  UNENCODED_LEN: 28,
  UNENCODED_OFFSET: 29,
  COMPRESSION: 30,
  ENCRYPTION: 31,
} as const;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});

/** btrfs's crc32c: Castagnoli, reflected, the seed as given and no final inversion (btrfs send uses seed 0). */
export function crc32c(data: Uint8Array, seed = 0): number {
  let c = seed >>> 0;
  for (const b of data) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

type U64 = number | bigint;
export type Value = Buffer | string | { u64: U64 } | { uuid: string } | { time: Timespec };
export interface Timespec {
  sec: U64;
  nsec?: number;
}

const u64 = (v: U64) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};

export function uuidBytes(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error(`not a uuid: ${uuid}`);
  return Buffer.from(hex, 'hex');
}

export const newUuid = (): string => crypto.randomUUID();

function encode(v: Value): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8'); // strings go without a NUL, as the kernel sends them
  if ('u64' in v) return u64(v.u64);
  if ('uuid' in v) return uuidBytes(v.uuid);
  const t = Buffer.alloc(12);
  t.writeBigUInt64LE(BigInt(v.time.sec));
  t.writeUInt32LE(v.time.nsec ?? 0, 8);
  return t;
}

/** One command: header with crc, then the attributes in the order given. */
export function encodeCommand(cmd: number, attrs: Array<[number, Value]>): Buffer {
  const tlvs = attrs.map(([type, value]) => {
    const data = encode(value);
    if (data.length > 0xffff) throw new Error(`attribute ${type} longer than 65535 bytes`);
    const h = Buffer.alloc(4);
    h.writeUInt16LE(type, 0);
    h.writeUInt16LE(data.length, 2);
    return Buffer.concat([h, data]);
  });
  const body = Buffer.concat(tlvs);
  const head = Buffer.alloc(CMD_HEADER_LEN);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt16LE(cmd, 4);
  const whole = Buffer.concat([head, body]);
  whole.writeUInt32LE(crc32c(whole), 6);
  return whole;
}

/**
 * Builds a stream command by command. What each command does in `btrfs receive` (P = DIR/<subvolume>/path,
 * a plain string concatenation) is said on each method.
 */
export class SendStream {
  private readonly parts: Buffer[];

  constructor(version = 1) {
    const h = Buffer.alloc(HEADER_LEN);
    h.write(MAGIC, 0, 'latin1');
    h.writeUInt32LE(version, 13);
    this.parts = [h];
  }

  /** Any command, attributes as given (for malformed commands). */
  command(cmd: number, attrs: Array<[number, Value]> = []): this {
    this.parts.push(encodeCommand(cmd, attrs));
    return this;
  }

  /** Raw bytes (a second header, garbage). */
  raw(bytes: Buffer): this {
    this.parts.push(bytes);
    return this;
  }

  /** Ends the previous subvolume (read-only + received UUID) and creates subvolume DIR/path (kernel: one name). */
  subvol(path: string, uuid: string, ctransid: U64): this {
    return this.command(Cmd.SUBVOL, [
      [Attr.PATH, path],
      [Attr.UUID, { uuid }],
      [Attr.CTRANSID, { u64: ctransid }],
    ]);
  }

  /** Snapshots the subvolume found by (received) UUID `cloneUuid` anywhere on the filesystem as DIR/path. */
  snapshot(path: string, uuid: string, ctransid: U64, cloneUuid: string, cloneCtransid: U64): this {
    return this.command(Cmd.SNAPSHOT, [
      [Attr.PATH, path],
      [Attr.UUID, { uuid }],
      [Attr.CTRANSID, { u64: ctransid }],
      [Attr.CLONE_UUID, { uuid: cloneUuid }],
      [Attr.CLONE_CTRANSID, { u64: cloneCtransid }],
    ]);
  }

  /** creat(P, 0600) */
  mkfile(path: string, ino: U64 = 257): this {
    return this.command(Cmd.MKFILE, [
      [Attr.PATH, path],
      [Attr.INO, { u64: ino }],
    ]);
  }

  /** mkdir(P, 0700) */
  mkdir(path: string, ino: U64 = 257): this {
    return this.command(Cmd.MKDIR, [
      [Attr.PATH, path],
      [Attr.INO, { u64: ino }],
    ]);
  }

  /** mknod(P, mode & S_IFMT, rdev): device nodes too */
  mknod(path: string, mode: number, rdev: U64, ino: U64 = 257): this {
    return this.command(Cmd.MKNOD, [
      [Attr.PATH, path],
      [Attr.INO, { u64: ino }],
      [Attr.MODE, { u64: mode }],
      [Attr.RDEV, { u64: rdev }],
    ]);
  }

  /** mkfifo(P, 0600) */
  mkfifo(path: string, ino: U64 = 257): this {
    return this.command(Cmd.MKFIFO, [
      [Attr.PATH, path],
      [Attr.INO, { u64: ino }],
    ]);
  }

  /** symlink(target, P): any target text, absolute or with `..` */
  symlink(path: string, ino: U64, target: string): this {
    return this.command(Cmd.SYMLINK, [
      [Attr.PATH, path],
      [Attr.INO, { u64: ino }],
      [Attr.PATH_LINK, target],
    ]);
  }

  /** rename(P(from), P(to)) */
  rename(from: string, to: string): this {
    return this.command(Cmd.RENAME, [
      [Attr.PATH, from],
      [Attr.PATH_TO, to],
    ]);
  }

  /** link(P(target), P(path)): a new hard link `path` to the existing `target` */
  link(path: string, target: string): this {
    return this.command(Cmd.LINK, [
      [Attr.PATH, path],
      [Attr.PATH_LINK, target],
    ]);
  }

  /** unlink(P) */
  unlink(path: string): this {
    return this.command(Cmd.UNLINK, [[Attr.PATH, path]]);
  }

  /** rmdir(P) */
  rmdir(path: string): this {
    return this.command(Cmd.RMDIR, [[Attr.PATH, path]]);
  }

  /** open(P, O_RDWR) (follows symlinks), pwrite(data, offset) */
  write(path: string, offset: U64, data: Buffer | string): this {
    return this.command(Cmd.WRITE, [
      [Attr.PATH, path],
      [Attr.FILE_OFFSET, { u64: offset }],
      [Attr.DATA, data],
    ]);
  }

  /**
   * open(P, O_RDWR); source = openat(volume mount root, <path of subvolume cloneUuid> + "/" + clonePath) (the
   * current subvolume's own path when cloneUuid is its UUID); ioctl CLONE_RANGE source -> P.
   */
  clone(
    path: string,
    offset: U64,
    len: U64,
    cloneUuid: string,
    cloneCtransid: U64,
    clonePath: string,
    cloneOffset: U64,
  ): this {
    return this.command(Cmd.CLONE, [
      [Attr.PATH, path],
      [Attr.FILE_OFFSET, { u64: offset }],
      [Attr.CLONE_LEN, { u64: len }],
      [Attr.CLONE_UUID, { uuid: cloneUuid }],
      [Attr.CLONE_CTRANSID, { u64: cloneCtransid }],
      [Attr.CLONE_PATH, clonePath],
      [Attr.CLONE_OFFSET, { u64: cloneOffset }],
    ]);
  }

  /** lsetxattr(P, name, value) (does not follow a final symlink; earlier components do) */
  setXattr(path: string, name: string, value: Buffer | string): this {
    return this.command(Cmd.SET_XATTR, [
      [Attr.PATH, path],
      [Attr.XATTR_NAME, name],
      [Attr.XATTR_DATA, value],
    ]);
  }

  /** lremovexattr(P, name) */
  removeXattr(path: string, name: string): this {
    return this.command(Cmd.REMOVE_XATTR, [
      [Attr.PATH, path],
      [Attr.XATTR_NAME, name],
    ]);
  }

  /** truncate(P, size) (follows symlinks) */
  truncate(path: string, size: U64): this {
    return this.command(Cmd.TRUNCATE, [
      [Attr.PATH, path],
      [Attr.SIZE, { u64: size }],
    ]);
  }

  /** chmod(P, mode) (follows symlinks): setuid bits too */
  chmod(path: string, mode: number): this {
    return this.command(Cmd.CHMOD, [
      [Attr.PATH, path],
      [Attr.MODE, { u64: mode }],
    ]);
  }

  /** lchown(P, uid, gid) */
  chown(path: string, uid: U64, gid: U64): this {
    return this.command(Cmd.CHOWN, [
      [Attr.PATH, path],
      [Attr.UID, { u64: uid }],
      [Attr.GID, { u64: gid }],
    ]);
  }

  /** utimensat(P, atime, mtime, AT_SYMLINK_NOFOLLOW) (ctime is sent but not settable) */
  utimes(path: string, atime: Timespec, mtime: Timespec = atime, ctime: Timespec = mtime): this {
    return this.command(Cmd.UTIMES, [
      [Attr.PATH, path],
      [Attr.ATIME, { time: atime }],
      [Attr.MTIME, { time: mtime }],
      [Attr.CTIME, { time: ctime }],
    ]);
  }

  /** nothing on receive (only in --dump): marks a range that did not change */
  updateExtent(path: string, offset: U64, size: U64): this {
    return this.command(Cmd.UPDATE_EXTENT, [
      [Attr.PATH, path],
      [Attr.FILE_OFFSET, { u64: offset }],
      [Attr.SIZE, { u64: size }],
    ]);
  }

  /** end of this stream: the subvolume is made read-only with its received UUID */
  end(): this {
    return this.command(Cmd.END);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** A one-subvolume stream: `name` with files name -> content, ended. Returns the stream and its UUID. */
export function simpleSubvolume(
  name: string,
  files: Record<string, string>,
  uuid = newUuid(),
  ctransid: U64 = 10,
): { stream: Buffer; uuid: string } {
  const s = new SendStream().subvol(name, uuid, ctransid);
  let ino = 257;
  for (const [file, content] of Object.entries(files)) {
    s.mkfile(`o${ino}-0-0`, ino).rename(`o${ino}-0-0`, file).write(file, 0, content).chmod(file, 0o644);
    ino++;
  }
  return { stream: s.chmod('', 0o755).end().toBuffer(), uuid };
}
