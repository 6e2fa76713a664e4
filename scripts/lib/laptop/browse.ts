// `backup.mjs ls`, `find` and `diff`: what a backup holds, where a name appears across the backups, and what changed
// between two backups, read on the host through the SSH gate with the backup key (a device's key reaches only its
// own backups: the gate's root for it is backups/DEVICE).
//  - ls: `btrbk-manifest --list [--under REL] [--depth N] BACKUP` (user-data/btrbk-manifest: names and metadata,
//    no file opened), streamed line by line to the caller.
//  - diff: `btrfs send --no-data -p A B`, the changes between the two trees without file data (the kernel compares
//    the trees and skips what the two backups share, so its cost follows the change, not the backup's size), parsed
//    here (parseSendStream) into added, removed, renamed and modified paths (DiffModel).
//  - find: one listing of the oldest backup of a series, then the diffs from each backup to the next: a name's
//    presence is carried through the chain (so N backups cost one walk and N-1 diffs, not N walks).
// Paths are kept in the manifest's escaped form (every byte outside 0x21-0x7E, and %, as %XX) so that names that
// are not UTF-8 stay exact; showPath() turns one into text for a person.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { Run } from '../core/process.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { sshArgs } from '../remote/ssh.js';
import { listingError } from './device-key.js';
import type { Manifest } from './install.js';
import { targetFor } from './layout.js';
import { chooseBackup } from './restore.js';
import { datedFor, sshFailureReason, targetBackups, type Dated } from './target.js';

// ---------------------------------------------------------------------------------------------------------------
// Escaping (the manifest's one rule) and display

/** Raw bytes in the manifest's escaped form: every byte outside 0x21-0x7E, and %, as %XX; "-" alone as %2D. */
export function escapeBytes(b: Buffer): string {
  let out = '';
  for (const c of b) out += c > 0x20 && c < 0x7f && c !== 0x25 ? String.fromCharCode(c) : `%${hex(c)}`;
  return out === '-' ? '%2D' : out;
}
const hex = (c: number) => c.toString(16).toUpperCase().padStart(2, '0');

/** The escaped form's bytes. */
export function unescapeBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i += 1) {
    if (s[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(out);
}

/** A path relative to a backup as the gate's --under takes it: every byte outside [A-Za-z0-9_@+.-] as %XX. */
export function underArg(rel: string): string {
  return rel
    .split('/')
    .map((c) => {
      let out = '';
      for (const b of Buffer.from(c, 'utf8'))
        out += /[A-Za-z0-9_@+.-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${hex(b)}`;
      return out;
    })
    .join('/');
}

/** An escaped path as text: the name itself when it is valid UTF-8 without control characters, else as escaped. */
export function showPath(escaped: string): string {
  if (!escaped.includes('%')) return escaped;
  const b = unescapeBytes(escaped);
  const text = b.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (Buffer.from(text, 'utf8').equals(b) && !/[\u0000-\u001f\u007f\ufffd]/.test(text)) return text;
  return escaped;
}

// ---------------------------------------------------------------------------------------------------------------
// ls: the manifest's --list lines

export type EntryType = 'file' | 'dir' | 'symlink' | 'block' | 'char' | 'fifo' | 'socket';
const TYPES: Record<string, EntryType> = {
  f: 'file',
  d: 'dir',
  l: 'symlink',
  b: 'block',
  c: 'char',
  p: 'fifo',
  s: 'socket',
};

export interface ListEntry {
  /** Relative to the backup, escaped ("." is the backup itself). */
  path: string;
  type: EntryType;
  /** Bytes (files and symlinks), else null. */
  size: number | null;
  /** Permission bits, octal (4 digits). */
  mode: string;
  uid: number;
  gid: number;
  /** Seconds since the epoch, with nanoseconds ("1764950400.123456789"). */
  mtime: string;
  /** A symlink's target, escaped; else null. */
  target: string | null;
}

/** One line of `btrbk-manifest --list`: an entry, the end line's counts, or null for the header (bad: throws). */
export function parseListLine(line: string): ListEntry | { end: { entries: number; files: number } } | null {
  if (line === '# btrbk-manifest 1 list' || line === '') return null;
  const end = /^# end entries=(\d+) files=(\d+) bytes=\d+$/.exec(line);
  if (end) return { end: { entries: Number(end[1]), files: Number(end[2]) } };
  const f = line.split('\t');
  const [p, t, size, mode, owner, mtime, target] = f;
  const [uid, gid] = (owner ?? '').split(':').map(Number);
  if (f.length !== 8 || !TYPES[t] || !/^[0-7]{4}$/.test(mode) || !(uid >= 0) || !(gid >= 0))
    throw new Error(`not a line of btrbk-manifest --list: ${JSON.stringify(line.slice(0, 200))}`);
  return {
    path: p,
    type: TYPES[t],
    size: size === '-' ? null : Number(size),
    mode,
    uid,
    gid,
    mtime,
    target: target === '-' ? null : target,
  };
}

const MODE_CHAR: Record<EntryType, string> = {
  file: '-',
  dir: 'd',
  symlink: 'l',
  block: 'b',
  char: 'c',
  fifo: 'p',
  socket: 's',
};

/** rwx letters of a mode (with setuid, setgid and sticky as ls shows them). */
export function modeString(type: EntryType, mode: string): string {
  const m = parseInt(mode, 8);
  const tri = (bits: number, special: boolean, s: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (
    MODE_CHAR[type] +
    tri((m >> 6) & 7, Boolean(m & 0o4000), 's') +
    tri((m >> 3) & 7, Boolean(m & 0o2000), 's') +
    tri(m & 7, Boolean(m & 0o1000), 't')
  );
}

/** An mtime ("seconds.nanoseconds") as "2026-12-05 12:00" (UTC). */
export const shortTime = (mtime: string): string =>
  new Date(Number(mtime.split('.')[0]) * 1000).toISOString().slice(0, 16).replace('T', ' ');

/** An entry as `ls -l` would show it (times in UTC), the path shown from the subvolume's mount point. */
export function formatEntry(e: ListEntry, prefix = ''): string {
  const name = e.path === '.' ? prefix || '.' : path.posix.join(prefix, showPath(e.path));
  const size = e.size === null ? '-' : String(e.size);
  return `${modeString(e.type, e.mode)} ${`${e.uid}:${e.gid}`.padEnd(11)} ${size.padStart(12)} ${shortTime(e.mtime)}  ${name}${e.type === 'dir' && e.path !== '.' ? '/' : ''}${e.target !== null ? ` -> ${showPath(e.target)}` : ''}`;
}

/** An entry for --json (one object per line). */
export const entryJson = (e: ListEntry, prefix = '') => ({
  path: e.path === '.' ? prefix || '.' : path.posix.join(prefix, showPath(e.path)),
  escaped: e.path,
  type: e.type,
  size: e.size,
  mode: e.mode,
  uid: e.uid,
  gid: e.gid,
  mtime: new Date(Number(e.mtime.split('.')[0]) * 1000).toISOString(),
  ...(e.target !== null ? { target: showPath(e.target) } : {}),
});

// ---------------------------------------------------------------------------------------------------------------
// diff: btrfs send streams (format v1/v2 commands; --no-data sends no data) and what they change

/** Send stream commands (btrfs-progs common/send-stream.h). */
export const SEND_CMD = {
  SUBVOL: 1,
  SNAPSHOT: 2,
  MKFILE: 3,
  MKDIR: 4,
  MKNOD: 5,
  MKFIFO: 6,
  MKSOCK: 7,
  SYMLINK: 8,
  RENAME: 9,
  LINK: 10,
  UNLINK: 11,
  RMDIR: 12,
  SET_XATTR: 13,
  REMOVE_XATTR: 14,
  WRITE: 15,
  CLONE: 16,
  TRUNCATE: 17,
  CHMOD: 18,
  CHOWN: 19,
  UTIMES: 20,
  END: 21,
  UPDATE_EXTENT: 22,
  FALLOCATE: 23,
  FILEATTR: 24,
  ENCODED_WRITE: 25,
} as const;
const ATTR_PATH = 15;
const ATTR_PATH_TO = 16;
const ATTR_PATH_LINK = 17;
const MAGIC = Buffer.from('btrfs-stream\0', 'latin1');

/** One command of a send stream: its type and its paths (escaped), the rest left out. */
export interface SendCommand {
  cmd: number;
  path: string | null;
  to: string | null;
  link: string | null;
}

/**
 * A send stream's commands as its chunks arrive (push), without holding the stream: the header is checked, each
 * command's attributes read (v1 TLVs; v2's unsized DATA is only in WRITE/ENCODED_WRITE, which --no-data never sends).
 */
export class SendStreamParser {
  private buf: Buffer = Buffer.alloc(0);
  private headerSeen = false;
  ended = false;

  push(chunk: Buffer): SendCommand[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: SendCommand[] = [];
    let off = 0;
    if (!this.headerSeen) {
      if (this.buf.length < 17) return out;
      if (!this.buf.subarray(0, 13).equals(MAGIC)) throw new Error('not a btrfs send stream (no btrfs-stream header)');
      const version = this.buf.readUInt32LE(13);
      if (version < 1 || version > 3) throw new Error(`btrfs send stream version ${version} is not known here`);
      this.headerSeen = true;
      off = 17;
    }
    while (this.buf.length - off >= 10) {
      const len = this.buf.readUInt32LE(off);
      const cmd = this.buf.readUInt16LE(off + 4);
      if (this.buf.length - off - 10 < len) break;
      const c: SendCommand = { cmd, path: null, to: null, link: null };
      if (cmd !== SEND_CMD.WRITE && cmd !== SEND_CMD.ENCODED_WRITE) {
        let a = off + 10;
        const stop = a + len;
        while (a + 4 <= stop) {
          const type = this.buf.readUInt16LE(a);
          const alen = this.buf.readUInt16LE(a + 2);
          const v = this.buf.subarray(a + 4, Math.min(a + 4 + alen, stop));
          if (type === ATTR_PATH) c.path = escapeBytes(v);
          else if (type === ATTR_PATH_TO) c.to = escapeBytes(v);
          else if (type === ATTR_PATH_LINK) c.link = escapeBytes(v);
          a += 4 + alen;
        }
      } else c.path = null; // data commands carry their path too, but --no-data sends none of them
      if (cmd === SEND_CMD.END) this.ended = true;
      out.push(c);
      off += 10 + len;
    }
    this.buf = this.buf.subarray(off);
    return out;
  }
}

/** What changed at one path between two backups. */
export type Change =
  | { kind: 'added'; path: string; type: 'file' | 'dir' | 'symlink' | 'other' | 'link' }
  | { kind: 'removed'; path: string; type: 'dir' | 'entry' }
  | { kind: 'renamed'; from: string; path: string; content: boolean; meta: string[] }
  | { kind: 'modified'; path: string; content: boolean; meta: string[] };

interface DiffNode {
  /** Its path in the older backup, or null for an entry made in the newer one. */
  origin: string | null;
  type: 'file' | 'dir' | 'symlink' | 'other' | 'link' | null;
  content: boolean;
  meta: Set<string>;
  /** A hard link made in the newer backup: the origin of the entry it links to (btrfs sends a file's rename as a
   * link to the new name and an unlink of the old one). */
  linkOf?: string | null;
}

/** The metadata that changed; "times" only when nothing else did (btrfs sends the times with every change: the
 * inode's ctime moves with it, so on their own they say only that a time was set). */
const metaOf = (n: DiffNode): string[] =>
  n.content || n.meta.size > 1 ? [...n.meta].filter((m) => m !== 'times').sort() : [...n.meta];

const parentOf = (p: string): string | null => {
  if (p === '') return null;
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
};

/**
 * Replays a send stream's commands on a model of the older backup's names (only the names the stream touches are
 * held: memory follows the change, not the backup) and says, per path, what changed. A name the stream renames
 * keeps its origin, so a new file (made under a temporary o<ino>-<gen>-<seq> name, then renamed) is an addition and
 * a moved one a rename; a directory renamed carries its children along without a line of their own.
 */
export class DiffModel {
  private cur = new Map<string, DiffNode>();
  private vacated = new Set<string>();
  private removed = new Map<string, 'dir' | 'entry'>();
  subvolume: string | null = null;

  private resolve(p: string): DiffNode {
    const known = this.cur.get(p);
    if (known) return known;
    let origin: string | null = p;
    if (this.vacated.has(p)) origin = null;
    else {
      for (let q = parentOf(p); q !== null; q = parentOf(q)) {
        const anc = this.cur.get(q);
        if (anc) {
          origin =
            anc.origin === null
              ? null
              : `${anc.origin === '' ? '' : `${anc.origin}/`}${p.slice(q === '' ? 0 : q.length + 1)}`;
          break;
        }
        if (this.vacated.has(q)) {
          origin = null;
          break;
        }
      }
    }
    const n: DiffNode = { origin, type: null, content: false, meta: new Set() };
    this.cur.set(p, n);
    return n;
  }

  private moveTree(from: string, to: string): void {
    const pre = `${from}/`;
    const moved: Array<[string, DiffNode]> = [];
    for (const [k, v] of this.cur) if (k === from || k.startsWith(pre)) moved.push([k, v]);
    for (const [k] of moved) this.cur.delete(k);
    for (const [k, v] of moved) this.cur.set(to + k.slice(from.length), v);
  }

  apply(c: SendCommand): void {
    const p = c.path ?? '';
    switch (c.cmd) {
      case SEND_CMD.SUBVOL:
      case SEND_CMD.SNAPSHOT:
        this.subvolume = c.path;
        return;
      case SEND_CMD.MKFILE:
      case SEND_CMD.MKDIR:
      case SEND_CMD.SYMLINK:
      case SEND_CMD.MKNOD:
      case SEND_CMD.MKFIFO:
      case SEND_CMD.MKSOCK:
        this.cur.set(p, {
          origin: null,
          type:
            c.cmd === SEND_CMD.MKFILE
              ? 'file'
              : c.cmd === SEND_CMD.MKDIR
                ? 'dir'
                : c.cmd === SEND_CMD.SYMLINK
                  ? 'symlink'
                  : 'other',
          content: false,
          meta: new Set(),
        });
        return;
      case SEND_CMD.LINK: {
        const linkOf = c.link === null ? null : this.resolve(c.link).origin;
        this.cur.set(p, { origin: null, type: 'link', content: false, meta: new Set(), linkOf });
        return;
      }
      case SEND_CMD.RENAME: {
        if (c.to === null) return;
        this.resolve(p);
        this.moveTree(p, c.to);
        this.vacated.add(p);
        this.vacated.delete(c.to);
        return;
      }
      case SEND_CMD.UNLINK:
      case SEND_CMD.RMDIR: {
        const n = this.resolve(p);
        if (n.origin !== null) this.removed.set(n.origin, c.cmd === SEND_CMD.RMDIR ? 'dir' : 'entry');
        const pre = `${p}/`;
        for (const k of [...this.cur.keys()]) if (k === p || k.startsWith(pre)) this.cur.delete(k);
        this.vacated.add(p);
        return;
      }
      case SEND_CMD.WRITE:
      case SEND_CMD.CLONE:
      case SEND_CMD.TRUNCATE:
      case SEND_CMD.UPDATE_EXTENT:
      case SEND_CMD.FALLOCATE:
      case SEND_CMD.ENCODED_WRITE:
        if (c.path !== null) this.resolve(p).content = true;
        return;
      case SEND_CMD.CHMOD:
        this.resolve(p).meta.add('mode');
        return;
      case SEND_CMD.CHOWN:
        this.resolve(p).meta.add('owner');
        return;
      case SEND_CMD.UTIMES:
        this.resolve(p).meta.add('times');
        return;
      case SEND_CMD.SET_XATTR:
      case SEND_CMD.REMOVE_XATTR:
        this.resolve(p).meta.add('xattrs');
        return;
      case SEND_CMD.FILEATTR:
        this.resolve(p).meta.add('attributes');
        return;
      default:
        return;
    }
  }

  /**
   * The changes, by path. A change of times alone on a directory that holds other changes (btrfs sends the parent's
   * new mtime with every entry made or removed in it), and on the backup's top, is left out: it says nothing more.
   */
  changes(): Change[] {
    const out: Change[] = [];
    const touched = new Set<string>();
    for (const [p, n] of this.cur) if (n.origin === null || n.origin !== p || n.content || n.meta.size) touched.add(p);
    for (const o of this.removed.keys()) touched.add(o);
    const holdsChanges = new Set<string>();
    for (const p of touched) for (let q = parentOf(p); q !== null; q = parentOf(q)) holdsChanges.add(q);
    const removed = new Map(this.removed);
    for (const [p, n] of this.cur) {
      if (n.origin === null && n.linkOf && removed.get(n.linkOf) === 'entry') {
        // a link to an entry whose old name went: the entry was renamed
        removed.delete(n.linkOf);
        out.push({ kind: 'renamed', from: n.linkOf, path: p, content: n.content, meta: metaOf(n) });
      } else if (n.origin === null) out.push({ kind: 'added', path: p, type: n.type ?? 'other' });
      else if (n.origin !== p)
        out.push({ kind: 'renamed', from: n.origin, path: p, content: n.content, meta: metaOf(n) });
      else if (n.content || n.meta.size) {
        const onlyTimes = !n.content && n.meta.size === 1 && n.meta.has('times');
        if (onlyTimes && (p === '' || holdsChanges.has(p))) continue;
        out.push({ kind: 'modified', path: p, content: n.content, meta: metaOf(n) });
      }
    }
    for (const [p, type] of removed) out.push({ kind: 'removed', path: p, type });
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

/** The changes a whole send stream makes (tests; the verbs stream it through a DiffModel). */
export function diffStream(stream: Buffer): Change[] {
  const parser = new SendStreamParser();
  const model = new DiffModel();
  for (const c of parser.push(stream)) model.apply(c);
  return model.changes();
}

/** restic's letters: + added, - removed, M content, U metadata only; a rename as "R from -> to". */
export function formatChange(c: Change, prefix = ''): string {
  const show = (p: string) => path.posix.join(prefix || '.', showPath(p));
  switch (c.kind) {
    case 'added':
      return `+ ${show(c.path)}${c.type === 'dir' ? '/' : ''}`;
    case 'removed':
      return `- ${show(c.path)}${c.type === 'dir' ? '/' : ''}`;
    case 'renamed':
      return `R ${show(c.from)} -> ${show(c.path)}${c.content ? ' (content changed)' : ''}`;
    case 'modified':
      return `${c.content ? 'M' : 'U'} ${show(c.path)}${c.content ? '' : ` (${c.meta.join(', ')})`}`;
  }
}

export const changeJson = (c: Change, prefix = '') => {
  const show = (p: string) => path.posix.join(prefix || '.', showPath(p));
  return c.kind === 'renamed'
    ? { change: c.kind, path: show(c.path), from: show(c.from), content: c.content, meta: c.meta }
    : c.kind === 'modified'
      ? { change: c.kind, path: show(c.path), content: c.content, meta: c.meta }
      : { change: c.kind, path: show(c.path), type: c.type };
};

// ---------------------------------------------------------------------------------------------------------------
// find: a name pattern, and its presence carried through a chain of diffs

/** A shell glob on one name (*, ?, [...]), as `find -name` takes it. */
export function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i += 1) {
    const c = pattern[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = pattern.indexOf(']', i + 2);
      if (close < 0) re += '\\[';
      else {
        let set = pattern.slice(i + 1, close);
        if (set.startsWith('!')) set = `^${set.slice(1)}`;
        re += `[${set.replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

/** Where a matching entry is, from backup to backup. */
export interface FindHit {
  /** Its path in the newest backup it is in (escaped). */
  path: string;
  /** Other paths it had (a rename), escaped. */
  earlierPaths: string[];
  /** Indexes (into the series) of the backups it is in. */
  in: number[];
  /** Indexes of the backups where its content or metadata changed (after its first). */
  changedIn: number[];
}

const basenameOf = (p: string) => p.slice(p.lastIndexOf('/') + 1);

/**
 * Carries the hits of backup `index - 1` into backup `index` through the changes between them (keys: paths in
 * the older backup), adding what now matches. Pure; unit-tested.
 */
export function carryHits(
  hits: Map<string, FindHit>,
  changes: Change[],
  index: number,
  matches: (name: string) => boolean,
): Map<string, FindHit> {
  const removed = new Set<string>();
  const renamed = new Map<string, string>();
  const changedAt = new Set<string>();
  for (const c of changes) {
    if (c.kind === 'removed') removed.add(c.path);
    if (c.kind === 'renamed') renamed.set(c.from, c.path);
    if (
      (c.kind === 'modified' && (c.content || c.meta.some((m) => m !== 'times'))) ||
      (c.kind === 'renamed' && c.content)
    )
      changedAt.add(c.kind === 'renamed' ? c.from : c.path);
  }
  const next = new Map<string, FindHit>();
  for (const [p, hit] of hits) {
    let gone = false;
    let moved: string | null = null;
    for (let q: string | null = p; q !== null && q !== ''; q = parentOf(q)) {
      if (removed.has(q)) {
        gone = true;
        break;
      }
      const to = renamed.get(q);
      if (to !== undefined && moved === null) moved = to + p.slice(q.length);
    }
    if (gone) continue;
    const now = moved ?? p;
    if (moved !== null && renamed.has(p) && !matches(unescapeBytes(basenameOf(now)).toString('utf8'))) continue;
    if (now !== p) hit.earlierPaths.push(p);
    hit.path = now;
    hit.in.push(index);
    if (changedAt.has(p)) hit.changedIn.push(index);
    next.set(now, hit);
  }
  for (const c of changes) {
    if (
      (c.kind === 'added' || c.kind === 'renamed') &&
      !next.has(c.path) &&
      matches(unescapeBytes(basenameOf(c.path)).toString('utf8'))
    )
      next.set(c.path, { path: c.path, earlierPaths: [], in: [index], changedIn: [] });
  }
  return next;
}

// ---------------------------------------------------------------------------------------------------------------
// The host side: one series of backups, streams through the gate

export interface Series {
  conn: Connection;
  device: string;
  targetDir: string;
  /** The protected subvolume (absolute, as installed) or its basename when nothing is installed. */
  subvolume: string;
  backups: Dated[];
}

/** The subvolumes a command can mean: --subvolume, the one PATH is in, or the only one protected. */
export function pickSubvolume(
  manifest: Manifest | null,
  opts: { subvolume?: string; path?: string },
): { subvolume: string; rel: string } {
  const installed = (manifest?.sources ?? []).map((s) => s.subvolume);
  const p = opts.path?.replace(/\/+$/, '') ?? '';
  if (opts.subvolume) {
    const s = opts.subvolume;
    if (p.startsWith('/')) {
      if (p !== s && !p.startsWith(`${s}/`))
        throw new OperatorError(`${opts.path} is not in ${s}`, {
          next: `a path in ${s}, or one relative to it`,
          exitCode: 2,
        });
      return { subvolume: s, rel: p.slice(s.length).replace(/^\/+/, '') };
    }
    return { subvolume: s, rel: p };
  }
  if (p.startsWith('/')) {
    const s = installed
      .filter((x) => p === x || p.startsWith(x === '/' ? '/' : `${x}/`))
      .sort((a, b) => b.length - a.length)[0];
    if (!s)
      throw new OperatorError(`${opts.path} is in no protected subvolume`, {
        cause: installed.length ? `protected here: ${installed.join(', ')}` : 'nothing is installed on this machine',
        next: 'name the subvolume: --subvolume /home (PATH then relative to it, or absolute inside it)',
        exitCode: 2,
      });
    return { subvolume: s, rel: p.slice(s.length).replace(/^\/+/, '') };
  }
  if (installed.length === 1) return { subvolume: installed[0], rel: p };
  throw new OperatorError(installed.length ? 'which subvolume?' : 'nothing is installed on this machine', {
    cause: installed.length ? `protected here: ${installed.join(', ')}` : 'the backups are named after their subvolume',
    next: 'name it: --subvolume /home (or give an absolute PATH inside it)',
    exitCode: 2,
  });
}

/** The complete backups of one subvolume on the target, oldest first (an OperatorError when it cannot be asked). */
export async function seriesFor(req: {
  conn: Connection;
  manifest: Manifest | null;
  subvolume: string;
  device?: string;
  /** The directory of the backups (tests: a scratch directory); default the device's. */
  targetDir?: string;
  run?: Run;
}): Promise<Series> {
  const t = targetFor(req.conn, req.device, req.manifest);
  const device = t.device;
  const targetDir = req.targetDir ?? t.targetDir;
  const l = await targetBackups(req.conn, targetDir, { run: req.run });
  if (!l.reachable) throw await listingError(req.conn, device, l, { run: req.run, verb: 'list' });
  const base = path.posix.basename(req.subvolume) || req.subvolume;
  const backups = datedFor(
    l.entries.filter((e) => e.complete),
    base,
  );
  return { conn: req.conn, device, targetDir, subvolume: req.subvolume, backups };
}

/**
 * Runs one gate command with ssh, handing its stdout to `onData` as it comes (never held whole), and resolves with
 * the exit status and stderr. ssh's stdin is /dev/null.
 */
export function streamRemote(
  conn: Connection,
  command: string,
  onData: (chunk: Buffer) => void,
  {
    timeoutMs = 6 * 3600e3,
    output,
  }: {
    timeoutMs?: number;
    /** Where the caller writes what it makes of the data: while it needs to drain, ssh's output is not read (so a
     * slow reader holds the host back instead of this process buffering the listing). */
    output?: NodeJS.WritableStream & { writableNeedDrain?: boolean };
  } = {},
): Promise<{ status: number | null; stderr: string; error: Error | null }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', [...sshArgs(conn), command], { stdio: ['ignore', 'pipe', 'pipe'] });
    const err: Buffer[] = [];
    let error: Error | null = null;
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    timer.unref();
    child.stdout.on('data', (d: Buffer) => {
      try {
        onData(d);
      } catch (e) {
        error = e as Error;
        child.kill('SIGTERM');
      }
      if (output?.writableNeedDrain) {
        child.stdout.pause();
        output.once('drain', () => child.stdout.resume());
      }
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      error = e;
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr: Buffer.concat(err).toString('utf8'), error });
    });
  });
}

/** What a failed listing or diff says, in one line with the next step. */
function remoteFailure(
  verb: string,
  what: string,
  r: { status: number | null; stderr: string; error: Error | null },
): OperatorError {
  if (r.error && /ENOENT/.test(r.error.message))
    return new OperatorError('cannot run ssh', {
      next: 'install the OpenSSH client: sudo apt-get install openssh-client',
    });
  if (r.error)
    return new OperatorError(`${verb}: ${r.error.message}`, { next: `${verb} again; if it repeats, report it` });
  const text = r.stderr.trim();
  if (r.status === 3)
    return new OperatorError(`${verb}: ${text.replace(/^btrbk-manifest: /, '')} (${what})`, {
      next: "backup.mjs ls --depth 1 with the directory above it shows what is there; backup.mjs find 'NAME' looks in every backup",
    });
  if (/rejected:/.test(text))
    return new OperatorError(`the SSH gate refused ${verb}: ${text.replace(/^rejected: /, '')}`, {
      cause: 'an older host without ls/find/diff (boot script before issue 21), or a path outside your backups',
      next: 'update the host (deploy again, or local-target.mjs up), then try again',
    });
  return new OperatorError(
    `${verb} failed (${what}): ${sshFailureReason({ status: r.status, signal: null, stdout: '', stderr: r.stderr, output: r.stderr, error: null })}`,
    {
      next: 'npx zx scripts/troubleshoot.mjs check-ssh',
    },
  );
}

export interface LsRequest {
  series: Series;
  at?: string;
  /** Relative to the subvolume ('' for all of it). */
  rel: string;
  depth?: number;
  /** Called with the backup chosen, before the first entry. */
  onStart?: (backup: Dated) => void;
  onEntry: (e: ListEntry) => void;
  /** The stream onEntry writes to (backpressure: see streamRemote). */
  output?: NodeJS.WritableStream;
}

export interface LsResult {
  backup: Dated;
  entries: number;
  files: number;
  complete: boolean;
}

/** `ls`: streams the entries of one backup (below `rel`) to onEntry. */
export async function lsBackup(req: LsRequest): Promise<LsResult> {
  const { series } = req;
  const backup = chooseBackup(series.backups, req.at, series.subvolume);
  req.onStart?.(backup);
  let end: { entries: number; files: number } | null = null;
  let count = 0;
  const line = lineReader((l) => {
    const r = parseListLine(l);
    if (r === null) return;
    if ('end' in r) end = r.end;
    else {
      count += 1;
      req.onEntry(r);
    }
  });
  const cmd = gateLine(
    GATE_COMMANDS.list(backup.path, { under: req.rel ? underArg(req.rel) : undefined, depth: req.depth }),
  );
  const r = await streamRemote(series.conn, cmd, line.push, { output: req.output });
  line.end();
  if (r.status !== 0 || r.error) throw remoteFailure('ls', `in ${backup.name}`, r);
  const e = end as { entries: number; files: number } | null;
  return { backup, entries: count, files: e?.files ?? 0, complete: e !== null && e.entries === count };
}

/** Splits a byte stream into lines (a line is handed over whole, whatever the chunks). */
function lineReader(onLine: (line: string) => void): { push: (d: Buffer) => void; end: () => void } {
  let rest = '';
  return {
    push: (d: Buffer) => {
      const text = rest + d.toString('latin1'); // the manifest's lines are ASCII (escaped)
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    },
    end: () => {
      if (rest) onLine(rest);
      rest = '';
    },
  };
}

/** The changes from backup `a` to backup `b` (both of the series), from `btrfs send --no-data -p A B`. */
export async function diffPair(series: Series, a: Dated, b: Dated): Promise<Change[]> {
  const parser = new SendStreamParser();
  const model = new DiffModel();
  const r = await streamRemote(series.conn, gateLine(GATE_COMMANDS.sendNoData(b.path, a.path)), (d) => {
    for (const c of parser.push(d)) model.apply(c);
  });
  if (r.status !== 0 || r.error) throw remoteFailure('diff', `of ${a.name} and ${b.name}`, r);
  if (!parser.ended)
    throw new OperatorError(`diff: the stream from the host ended early (${a.name} -> ${b.name})`, {
      next: 'run it again',
    });
  return model.changes();
}

export interface DiffResult {
  subvolume: string;
  from: Dated;
  to: Dated;
  changes: Change[];
}

/** `diff A [B]`: what changed from backup A to backup B (default: the newest). */
export async function diffBackups(req: { series: Series; a: string; b?: string }): Promise<DiffResult> {
  const { series } = req;
  const from = chooseBackup(series.backups, req.a, series.subvolume);
  const to = chooseBackup(series.backups, req.b, series.subvolume);
  if (from.path === to.path)
    throw new OperatorError(`${req.a}${req.b ? ` and ${req.b}` : ''} name the same backup ${from.name}`, {
      next: 'name two backups (npx zx scripts/backup.mjs list shows them), e.g. diff 20261201 20261205',
      exitCode: 2,
    });
  return { subvolume: series.subvolume, from, to, changes: await diffPair(series, from, to) };
}

export interface FindResult {
  subvolume: string;
  pattern: string;
  backups: Dated[];
  hits: FindHit[];
}

/**
 * `find PATTERN`: the entries whose name matches in any backup of the series, with the backups they are in. One
 * listing of the oldest backup, then a diff per later backup (progress: one call per backup).
 */
export async function findInSeries(req: {
  series: Series;
  pattern: string;
  onProgress?: (done: number, total: number, backup: Dated) => void;
}): Promise<FindResult> {
  const { series } = req;
  const re = globToRegExp(req.pattern);
  const matches = (name: string) => re.test(name);
  const backups = series.backups;
  if (!backups.length) return { subvolume: series.subvolume, pattern: req.pattern, backups, hits: [] };
  let hits = new Map<string, FindHit>();
  await lsBackup({
    series,
    at: backups[0].name,
    rel: '',
    onEntry: (e) => {
      if (e.path !== '.' && matches(unescapeBytes(basenameOf(e.path)).toString('utf8')))
        hits.set(e.path, { path: e.path, earlierPaths: [], in: [0], changedIn: [] });
    },
  });
  req.onProgress?.(1, backups.length, backups[0]);
  // every hit ever seen, also those gone later (carryHits keeps only the present ones)
  const all = new Set<FindHit>(hits.values());
  for (let i = 1; i < backups.length; i += 1) {
    const changes = await diffPair(series, backups[i - 1], backups[i]);
    hits = carryHits(hits, changes, i, matches);
    for (const h of hits.values()) all.add(h);
    req.onProgress?.(i + 1, backups.length, backups[i]);
  }
  return {
    subvolume: series.subvolume,
    pattern: req.pattern,
    backups,
    hits: [...all].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.in[0] - b.in[0])),
  };
}

/** Index runs as "A .. B" spans of backup timestamps. */
export function spans(indexes: number[], backups: Dated[]): string {
  const out: string[] = [];
  for (let i = 0; i < indexes.length; i += 1) {
    let j = i;
    while (j + 1 < indexes.length && indexes[j + 1] === indexes[j] + 1) j += 1;
    out.push(
      i === j ? backups[indexes[i]].timestamp : `${backups[indexes[i]].timestamp} .. ${backups[indexes[j]].timestamp}`,
    );
    i = j;
  }
  return out.join(', ');
}

export function formatFind(r: FindResult, prefix = ''): string {
  const show = (p: string) => path.posix.join(prefix || '.', showPath(p));
  const lines = [
    `${r.subvolume}: ${r.hits.length} ${r.hits.length === 1 ? 'entry matches' : 'entries match'} ${JSON.stringify(r.pattern)} in ${r.backups.length} backup(s)`,
  ];
  for (const h of r.hits) {
    lines.push(`  ${show(h.path)}`);
    lines.push(`    in ${h.in.length} of ${r.backups.length}: ${spans(h.in, r.backups)}`);
    if (h.changedIn.length) lines.push(`    changed in: ${h.changedIn.map((i) => r.backups[i].timestamp).join(', ')}`);
    if (h.earlierPaths.length) lines.push(`    earlier names: ${h.earlierPaths.map(show).join(', ')}`);
  }
  if (r.hits.length)
    lines.push(
      `restore one: npx zx scripts/backup.mjs restore --subvolume ${r.subvolume} --at TIMESTAMP --path REL/PATH`,
    );
  return lines.join('\n');
}

export const findJson = (r: FindResult, prefix = '') => {
  const show = (p: string) => path.posix.join(prefix || '.', showPath(p));
  return {
    subvolume: r.subvolume,
    pattern: r.pattern,
    backups: r.backups.map((b) => ({ name: b.name, time: b.time.toISOString() })),
    hits: r.hits.map((h) => ({
      path: show(h.path),
      earlierPaths: h.earlierPaths.map(show),
      in: h.in.map((i) => r.backups[i].name),
      changedIn: h.changedIn.map((i) => r.backups[i].name),
    })),
  };
};
