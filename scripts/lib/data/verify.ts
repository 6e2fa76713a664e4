// `backup.mjs verify`, the parts that need no laptop: reading the output of user-data/btrbk-manifest (the host's,
// through the gate, and the laptop's, of the local snapshot the backup was sent from), comparing two of them into
// differences by path, and the identity check (the backup must be a receive of that very snapshot).
import { parseSubvolumeShow } from '../core/btrfs-output.js';

/** One entry of a manifest (format version 1; see the head of user-data/btrbk-manifest). */
export interface ManifestLine {
  /** Relative to the manifested directory, escaped as the program writes it ('.' is the directory itself). */
  path: string;
  /** f d l b c p s */
  type: string;
  /** '-' when not a file or symlink. */
  size: string;
  /** Permission bits, 4 octal digits. */
  mode: string;
  /** uid:gid */
  owner: string;
  /** seconds.nanoseconds */
  mtime: string;
  /** Symlink target (escaped), '-' otherwise. */
  target: string;
  /** Content sha256, '-' when not a file, 'error' when it could not be read. */
  sha256: string;
}

export interface ParsedManifest {
  sample: number;
  seed: string;
  entries: Map<string, ManifestLine>;
  /** The end line was there and its counts match: the output was not cut short. */
  complete: boolean;
  /** Lines that are not in the format (should be none). */
  bad: string[];
}

const FIELDS = ['path', 'type', 'size', 'mode', 'owner', 'mtime', 'target', 'sha256'] as const;

/** Decodes a path or target as the program escapes it (%XX per byte outside 0x21-0x7E and %) into its bytes. */
export function unescapeManifestField(field: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < field.length; i++) {
    if (field[i] === '%' && /^[0-9A-F]{2}$/.test(field.slice(i + 1, i + 3))) {
      bytes.push(parseInt(field.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(field.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/** Parses btrbk-manifest's output. */
export function parseManifest(text: string): ParsedManifest {
  const lines = String(text).split('\n');
  const head = /^# btrbk-manifest 1 sample=(\d+) seed=(\d+)$/.exec(lines[0] ?? '');
  const entries = new Map<string, ManifestLine>();
  const bad: string[] = [];
  let end: RegExpExecArray | null = null;
  let files = 0;
  for (const line of lines.slice(head ? 1 : 0)) {
    if (line === '') continue;
    const e = /^# end entries=(\d+) files=(\d+) bytes=(\d+)$/.exec(line);
    if (e) {
      end = e;
      continue;
    }
    const f = line.split('\t');
    if (f.length !== FIELDS.length || end) {
      bad.push(line);
      continue;
    }
    const entry = Object.fromEntries(FIELDS.map((k, i) => [k, f[i]])) as unknown as ManifestLine;
    if (entry.type === 'f') files += 1;
    entries.set(entry.path, entry);
  }
  return {
    sample: head ? Number(head[1]) : NaN,
    seed: head?.[2] ?? '',
    entries,
    complete: Boolean(head && end && Number(end[1]) === entries.size && Number(end[2]) === files && bad.length === 0),
    bad,
  };
}

/** What differs at one path: the fields, or that it is missing on one side. */
export interface Difference {
  /** As the manifest escapes it. */
  path: string;
  /** 'missing in the backup' | 'only in the backup' | the fields that differ (content, size, mode, owner, mtime,
   * type, target), or 'unreadable' when either side could not read the file. */
  what: string[];
  /** For each differing field: [local snapshot, backup]. */
  values: Record<string, [string, string]>;
}

const COMPARED: Array<[keyof ManifestLine, string]> = [
  ['type', 'type'],
  ['sha256', 'content'],
  ['size', 'size'],
  ['mode', 'mode'],
  ['owner', 'owner'],
  ['mtime', 'mtime'],
  ['target', 'target'],
];

export interface Comparison {
  /** Entries compared (present on either side). */
  compared: number;
  differences: Difference[];
  /** Why the comparison cannot be trusted whole (a cut manifest, different samples), empty when it can. */
  problems: string[];
}

/** Compares the manifest of the local snapshot with the backup's, path by path. */
export function compareManifests(localText: string, backupText: string): Comparison {
  const local = parseManifest(localText);
  const backup = parseManifest(backupText);
  const problems: string[] = [];
  if (!local.complete) problems.push('the local manifest is incomplete (cut short, or not btrbk-manifest output)');
  if (!backup.complete)
    problems.push("the backup's manifest is incomplete (cut short: the connection or the host's program stopped)");
  if (local.sample !== backup.sample || local.seed !== backup.seed) {
    problems.push(
      `the two manifests are of different samples (local ${local.sample}% seed ${local.seed}, backup ${backup.sample}% seed ${backup.seed})`,
    );
  }
  const paths = [...new Set([...local.entries.keys(), ...backup.entries.keys()])].sort();
  const differences: Difference[] = [];
  for (const p of paths) {
    const a = local.entries.get(p);
    const b = backup.entries.get(p);
    if (!a || !b) {
      differences.push({ path: p, what: [a ? 'missing in the backup' : 'only in the backup'], values: {} });
      continue;
    }
    const what: string[] = [];
    const values: Record<string, [string, string]> = {};
    if (a.sha256 === 'error' || b.sha256 === 'error') what.push('unreadable');
    for (const [k, label] of COMPARED) {
      // the backup's own top directory: btrfs receive cannot keep its mtime when the sender makes its temporary
      // (orphan) entries there after sending its times (measured: a 50,000-file full send, `btrfs receive --dump`
      // shows the top's utimes before later o<ino>-<gen> entries in it; received here too, the top's mtime is the
      // receive's time). The round trip's comparison leaves it out the same way (data/manifest.ts).
      if (k === 'mtime' && p === '.') continue;
      if (a[k] !== b[k] && !(k === 'sha256' && (a.sha256 === 'error' || b.sha256 === 'error'))) {
        what.push(label);
        values[label] = [a[k], b[k]];
      }
    }
    if (what.length) differences.push({ path: p, what, values });
  }
  return { compared: paths.length, differences, problems };
}

/** One line per difference, for a person: `PATH: content, mtime (local X, backup Y)`. */
export function describeDifference(d: Difference): string {
  const vals = Object.entries(d.values)
    .filter(([k]) => k !== 'content')
    .map(([k, [a, b]]) => `${k} ${a} -> ${b}`);
  return `${d.path}: ${d.what.join(', ')}${vals.length ? ` (local -> backup: ${vals.join('; ')})` : ''}`;
}

/** The identity check: is the backup a receive of this very snapshot? */
export interface IdentityCheck {
  same: boolean;
  /** The local snapshot's UUID and the backup's received UUID. */
  snapshotUuid: string | null;
  receivedUuid: string | null;
  reason: string;
}

/**
 * Compares `btrfs subvolume show` of the local snapshot with that of the backup (through the gate): a backup received
 * from the snapshot carries the snapshot's UUID as its Received UUID.
 */
export function checkIdentity(localShow: string, backupShow: string): IdentityCheck {
  const snap = parseSubvolumeShow(localShow);
  const backup = parseSubvolumeShow(backupShow);
  const snapshotUuid = snap.uuid;
  const receivedUuid = backup.receivedUuid && backup.receivedUuid !== '-' ? backup.receivedUuid : null;
  if (!snapshotUuid)
    return {
      same: false,
      snapshotUuid,
      receivedUuid,
      reason: 'the local snapshot has no UUID in `btrfs subvolume show` (not a subvolume?)',
    };
  if (!receivedUuid)
    return {
      same: false,
      snapshotUuid,
      receivedUuid,
      reason: 'the backup has no received UUID: it is not a complete received backup',
    };
  if (snapshotUuid !== receivedUuid) {
    return {
      same: false,
      snapshotUuid,
      receivedUuid,
      reason: `the backup was received from another snapshot (received UUID ${receivedUuid}, the local snapshot is ${snapshotUuid})`,
    };
  }
  return { same: true, snapshotUuid, receivedUuid, reason: 'the backup is a receive of this snapshot' };
}
