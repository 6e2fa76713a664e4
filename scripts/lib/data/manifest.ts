// The round trip's verification: a manifest of everything a tree holds (content and metadata, per path) and the
// comparison of two manifests into content and metadata differences.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import { runSync } from '../core/process.js';
import { MiB } from '../core/units.js';

/** getfattr writes some bytes of a file name as \NNN octal escapes. */
function unescapeGetfattr(s: string): string {
  const parts = s
    .split(/(\\[0-7]{3})/)
    .map((x) => (/^\\[0-7]{3}$/.test(x) ? Buffer.from([parseInt(x.slice(1), 8)]) : Buffer.from(x, 'utf8')));
  return Buffer.concat(parts).toString('utf8');
}

/** Parses `getfattr -R -P -d -m - -e hex .` output into Map(relPath -> {name: hex}). */
export function parseGetfattr(text: string): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | null = null;
  for (const line of String(text).split('\n')) {
    const m = /^# file: (.*)$/.exec(line);
    if (m) {
      let p = m[1].includes('\\') ? unescapeGetfattr(m[1]) : m[1];
      p = p === '.' ? '.' : p.replace(/^\.\//, '');
      current = {};
      out.set(p, current);
      continue;
    }
    const kv = /^([^=]+)=(.*)$/.exec(line);
    if (kv && current) current[kv[1]] = kv[2];
  }
  return out;
}

const IGNORED_XATTRS = /^security\.selinux$/;

/** What every manifest entry records. */
interface EntryBase {
  /** Permission bits, with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in nanoseconds, as a decimal string. */
  mtimeNs: string;
  /** Extended attributes (name -> hex value as getfattr prints it; security.selinux left out). */
  xattrs: Record<string, string>;
  /** The other paths of the same inode (hard-link identity), sorted; empty when it has one name. */
  links: string[];
}
export interface FileEntry extends EntryBase {
  type: 'file';
  size: number;
  /** 512-byte units allocated (tells a sparse file). */
  blocks: number;
  sha256: string;
}
export interface SymlinkEntry extends EntryBase {
  type: 'symlink';
  target: string;
}
export interface OtherEntry extends EntryBase {
  type: 'dir' | 'other';
}
export type ManifestEntry = FileEntry | SymlinkEntry | OtherEntry;
/** Path relative to the root ('.' is the root itself) -> what the verification compares. */
export type Manifest = Map<string, ManifestEntry>;

/** Everything the verification compares, per path relative to `root`. */
export function manifest(root: string): Manifest {
  const entries: Manifest = new Map();
  const byInode = new Map<string, string[]>();
  const walk = (rel: string) => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    const base: EntryBase = {
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: String(st.mtimeNs),
      xattrs: {},
      links: [],
    };
    let e: ManifestEntry;
    if (type === 'file') {
      e = {
        type,
        ...base,
        size: Number(st.size),
        blocks: Number(st.blocks),
        sha256: createHash('sha256').update(fs.readFileSync(abs)).digest('hex'),
      };
      const key = String(st.ino);
      let group = byInode.get(key);
      if (!group) byInode.set(key, (group = []));
      group.push(rel);
    } else if (type === 'symlink') {
      e = { type, ...base, target: fs.readlinkSync(abs) };
    } else {
      e = { type, ...base };
    }
    entries.set(rel, e);
    if (type === 'dir') for (const name of fs.readdirSync(abs).sort()) walk(rel === '.' ? name : `${rel}/${name}`);
  };
  walk('.');
  for (const group of byInode.values()) {
    if (group.length > 1) {
      for (const p of group) {
        const e = entries.get(p);
        if (e) e.links = group.filter((x) => x !== p).sort();
      }
    }
  }
  const r = runSync('getfattr', ['-R', '-P', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: root });
  if (r.error) throw new OperatorError('getfattr is not installed', { next: 'sudo apt-get install attr' });
  for (const [p, attrs] of parseGetfattr(r.stdout)) {
    const e = entries.get(p);
    if (!e) continue;
    for (const [k, v] of Object.entries(attrs)) if (!IGNORED_XATTRS.test(k)) e.xattrs[k] = v;
  }
  return entries;
}

/** Differences in what a file holds. */
export type ContentDiffKind = 'missing' | 'extra' | 'type' | 'size' | 'sha256';
/** Differences in how it is stored (everything else the manifest records). */
export type MetadataDiffKind = 'mode' | 'owner' | 'mtime' | 'target' | 'xattrs' | 'hardlinks' | 'sparse';
export type DiffKind = ContentDiffKind | MetadataDiffKind;

/** One difference between two manifests: what the expected side had at `path` and what the actual one has. */
export interface Diff {
  path: string;
  kind: DiffKind;
  expected: unknown;
  actual: unknown;
}

const CONTENT_KINDS: ReadonlySet<DiffKind> = new Set<ContentDiffKind>(['missing', 'extra', 'type', 'size', 'sha256']);

/** True when a file is sparse: far fewer bytes allocated than its size. */
const isSparse = (e: ManifestEntry) => e.type === 'file' && e.size >= MiB && e.blocks * 512 < e.size / 2;

/** Compares two manifests: every difference, by path (expected ones first, then extra ones). */
export function compareManifests(expected: Manifest, actual: Manifest): Diff[] {
  const diffs: Diff[] = [];
  const d = (p: string, kind: DiffKind, e: unknown, a: unknown) =>
    diffs.push({ path: p, kind, expected: e, actual: a });
  for (const [p, e] of expected) {
    const a = actual.get(p);
    if (!a) {
      d(p, 'missing', e.type, null);
      continue;
    }
    if (a.type !== e.type) {
      d(p, 'type', e.type, a.type);
      continue;
    }
    if (e.type === 'file' && a.type === 'file') {
      if (a.size !== e.size) d(p, 'size', e.size, a.size);
      else if (a.sha256 !== e.sha256) d(p, 'sha256', e.sha256, a.sha256);
      if (isSparse(e) && !(a.blocks * 512 < a.size / 2 && a.blocks <= e.blocks * 1.25 + 64))
        d(p, 'sparse', `${e.blocks * 512} bytes allocated`, `${a.blocks * 512} bytes allocated`);
    }
    if (e.type === 'symlink' && a.type === 'symlink' && a.target !== e.target) d(p, 'target', e.target, a.target);
    if (a.mode !== e.mode) d(p, 'mode', e.mode.toString(8), a.mode.toString(8));
    if (a.uid !== e.uid || a.gid !== e.gid) d(p, 'owner', `${e.uid}:${e.gid}`, `${a.uid}:${a.gid}`);
    if (a.mtimeNs !== e.mtimeNs && p !== '.') d(p, 'mtime', e.mtimeNs, a.mtimeNs);
    if (JSON.stringify(sortKeys(a.xattrs)) !== JSON.stringify(sortKeys(e.xattrs))) d(p, 'xattrs', e.xattrs, a.xattrs);
    if (JSON.stringify(a.links) !== JSON.stringify(e.links)) d(p, 'hardlinks', e.links, a.links);
  }
  for (const [p, a] of actual) if (!expected.has(p)) d(p, 'extra', null, a.type);
  return diffs;
}

function sortKeys(o: Record<string, string>) {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

/** Splits differences into content and metadata ones. */
export function splitDiffs(diffs: Diff[]): { content: Diff[]; metadata: Diff[] } {
  return {
    content: diffs.filter((x) => CONTENT_KINDS.has(x.kind)),
    metadata: diffs.filter((x) => !CONTENT_KINDS.has(x.kind)),
  };
}

/** A short human summary of differences (first few). */
export function describeDiffs(diffs: Diff[], max = 5): string {
  const shown = diffs
    .slice(0, max)
    .map((x) => `${x.path}: ${x.kind} (expected ${JSON.stringify(x.expected)}, got ${JSON.stringify(x.actual)})`);
  if (diffs.length > max) shown.push(`… and ${diffs.length - max} more`);
  return shown.join('; ');
}

/** What a manifest covers, for the pass line. */
export interface ManifestSummary {
  files: number;
  dirs: number;
  symlinks: number;
  /** Files with more than one name. */
  hardlinked: number;
  /** Extended attributes, counted per path. */
  xattrs: number;
  sparse: number;
}

/** What the manifest covers, for the pass line. */
export function manifestSummary(m: Manifest): ManifestSummary {
  const v = [...m.values()];
  return {
    files: v.filter((e) => e.type === 'file').length,
    dirs: v.filter((e) => e.type === 'dir').length,
    symlinks: v.filter((e) => e.type === 'symlink').length,
    hardlinked: v.filter((e) => e.links.length).length,
    xattrs: v.reduce((n, e) => n + Object.keys(e.xattrs).length, 0),
    sparse: v.filter(isSparse).length,
  };
}
