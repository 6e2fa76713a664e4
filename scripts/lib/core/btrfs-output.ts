// The one parser of each text the tools read about btrfs volumes: `btrfs subvolume show`, `btrfs subvolume list`,
// `btrfs filesystem usage`, `btrfs device stats`, the kernel's mount tables (mountinfo, the gate's mount diagnostic),
// and sizes ("1.50GiB" as btrfs prints them, "2G" as a person gives them). Text in, data out; nothing runs here.
import path from 'node:path';
import { MOUNT_POINT } from '../../../user-data/host-layout.js';

// ------------------------------------------------------------------------------------------------------ sizes

const UNIT_BYTES: Readonly<Record<string, number>> = {
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
  P: 1024 ** 5,
};

/**
 * A size with an optional binary unit, in bytes: "2G", "512M", "1GiB", "1.50GiB", "300 MiB", "100B", "1073741824"
 * (K, M, G, T, P are powers of 1024, with or without "iB"/"B", any case). A bare number counts `bareUnit` bytes each
 * (1: bytes). Null when the text is not a size.
 */
export function parseSize(text: string | number, bareUnit = 1): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*(?:([KMGTP])(?:i?B)?|(B))?$/i.exec(String(text).trim());
  if (!m) return null;
  const unit = m[2] ? UNIT_BYTES[m[2].toUpperCase()] : m[3] ? 1 : bareUnit;
  return Number(m[1]) * unit;
}

// ------------------------------------------------------------------------------------------- subvolume show

/** A subvolume as `btrfs subvolume show` describes it; a field it does not print is null. */
export interface SubvolumeInfo {
  uuid: string | null;
  parentUuid: string | null;
  /** '-' when the subvolume was not received. */
  receivedUuid: string | null;
  readonly: boolean;
}

/** Parses `btrfs subvolume show` output. */
export function parseSubvolumeShow(text: string): SubvolumeInfo {
  const field = (label: string) => new RegExp(`^\\s*${label}:\\s*(\\S+)`, 'm').exec(text)?.[1] ?? null;
  return {
    uuid: field('UUID'),
    parentUuid: field('Parent UUID'),
    receivedUuid: field('Received UUID'),
    readonly: /^\s*Flags:\s*.*readonly/m.test(text),
  };
}

// ------------------------------------------------------------------------------------------- subvolume list

/** One line of `btrfs subvolume list`: the fields its options asked for (one it did not print is undefined). */
export interface SubvolumeListEntry {
  id: number;
  /** Relative to the filesystem's top level (without the "<FS_TREE>/" that -a puts in front). */
  path: string;
  gen?: number;
  /** -c */
  cgen?: number;
  topLevel?: number;
  /** -q; '-' when it has none. */
  parentUuid?: string;
  /** -R; '-' when it has none. */
  receivedUuid?: string;
  /** -u */
  uuid?: string;
}

/** Parses `btrfs subvolume list [-a] [-c] [-u] [-q] [-R] ...` output (not -t's table), one entry per line. */
export function parseSubvolumeList(text: string): SubvolumeListEntry[] {
  const out: SubvolumeListEntry[] = [];
  for (const line of String(text).split('\n')) {
    const m = /^(.*?)\bpath\s+(.+)$/.exec(line.trim());
    if (!m) continue;
    const f = m[1].trim().split(/\s+/);
    const fields: Record<string, string> = {};
    for (let i = 0; i < f.length;) {
      if (f[i] === 'top' && f[i + 1] === 'level') {
        fields.top_level = f[i + 2];
        i += 3;
      } else {
        fields[f[i]] = f[i + 1];
        i += 2;
      }
    }
    if (fields.ID === undefined) continue;
    const num = (k: string) => (fields[k] === undefined ? undefined : Number(fields[k]));
    out.push({
      id: Number(fields.ID),
      path: m[2].replace(/^<FS_TREE>\//, ''),
      gen: num('gen'),
      cgen: num('cgen'),
      topLevel: num('top_level'),
      parentUuid: fields.parent_uuid,
      receivedUuid: fields.received_uuid,
      uuid: fields.uuid,
    });
  }
  return out;
}

/** A subvolume on the target, as `btrfs subvolume list -R` shows it. */
export interface BackupEntry {
  /** Absolute path on the host. */
  path: string;
  /** '-' when it has none. */
  receivedUuid: string;
  /** A received UUID is set: the receive finished. */
  complete: boolean;
}

/**
 * The subvolumes of a `btrfs subvolume list -R` (e.g. `-a -R -o DIR`) with their received UUIDs; paths are made
 * absolute below `mount` (the list prints them relative to the filesystem's top level).
 */
export function parseSubvolumeListR(text: string, mount: string = MOUNT_POINT): BackupEntry[] {
  return parseSubvolumeList(text)
    .filter((s): s is SubvolumeListEntry & { receivedUuid: string } => s.receivedUuid !== undefined)
    .map((s) => ({
      path: path.posix.join(mount, s.path),
      receivedUuid: s.receivedUuid,
      complete: s.receivedUuid !== '-',
    }));
}

// ------------------------------------------------------------------------------------- usage, device stats

/** A volume's usage in bytes; `percent` is used of used + free (what can still be used). */
export interface Usage {
  size: number;
  used: number;
  free: number;
  percent: number;
}

/**
 * Parses usage from `btrfs filesystem usage [-b]` ("Device size:", "Used:", "Free (estimated):") or from
 * `df -B1`-style output (Size Used Avail Use% Mounted on). Null when neither is there.
 */
export function parseUsage(text: string): Usage | null {
  const t = String(text);
  const get = (label: string) => {
    const m = new RegExp(`^\\s*${label}:\\s+([\\d.]+\\s*[KMGTP]?i?B?)`, 'm').exec(t);
    return (m && parseSize(m[1])) ?? NaN;
  };
  const size = get('Device size');
  const used = get('Used');
  const free = get('Free \\(estimated\\)');
  if (Number.isFinite(size) && size > 0 && Number.isFinite(used)) {
    // full = used of what can still be used: metadata copies (DUP) and reserves make "Device size" unreachable,
    // so the share of used + "Free (estimated)" is what tells how close the next backup is to ENOSPC
    const f = Number.isFinite(free) ? free : size - used;
    return { size, used, free: f, percent: used + f > 0 ? (100 * used) / (used + f) : 100 };
  }
  for (const line of t.split('\n')) {
    const f = line.trim().split(/\s+/);
    const i = f.findIndex((x) => /^\d+%$/.test(x));
    if (i >= 3 && /^\d+$/.test(f[i - 3]) && /^\d+$/.test(f[i - 2])) {
      const sz = Number(f[i - 3]);
      const us = Number(f[i - 2]);
      const av = Number(f[i - 1]);
      return { size: sz, used: us, free: av, percent: us + av > 0 ? (100 * us) / (us + av) : 100 };
    }
  }
  return null;
}

/** One error counter of `btrfs device stats`. */
export interface DeviceStat {
  device: string;
  /** e.g. write_io_errs, corruption_errs. */
  counter: string;
  value: number;
}

/** Parses `btrfs device stats` output. */
export function parseDeviceStats(text: string): DeviceStat[] {
  const out: DeviceStat[] = [];
  for (const line of String(text).split('\n')) {
    const m = /^\s*\[?([^\]\s]+)\]?\.(\w+)\s+(-?\d+)\s*$/.exec(line);
    if (m) out.push({ device: m[1], counter: m[2], value: Number(m[3]) });
  }
  return out;
}

// ------------------------------------------------------------------------------------------- mount tables

/** A line of /proc/PID/mountinfo. */
export interface Mount {
  /** The path within the filesystem that is mounted (a btrfs subvolume: /@home). */
  root: string;
  mountPoint: string;
  options: string[];
  fstype: string;
  source: string;
  superOptions: string[];
}

const unescapeMount = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses one mountinfo line: id parent maj:min root mountpoint options [optional fields...] - fstype source superoptions. */
function parseMountinfoLine(line: string): Mount {
  const [left, right = ''] = line.split(' - ');
  const f = left.split(' ');
  const r = right.split(' ');
  return {
    root: unescapeMount(f[3] ?? ''),
    mountPoint: unescapeMount(f[4] ?? ''),
    options: (f[5] ?? '').split(','),
    fstype: r[0] ?? '',
    source: unescapeMount(r[1] ?? ''),
    superOptions: (r[2] ?? '').split(','),
  };
}

/** Parses mountinfo text (/proc/self/mountinfo), octal escapes (\040 for a space) decoded. */
export function parseMountinfo(text: string): Mount[] {
  return String(text).split('\n').filter(Boolean).map(parseMountinfoLine);
}

/** The mount that holds `p` (longest mount point prefix; the last such mount wins, as it hides earlier ones). */
export function mountFor(p: string, mounts: Mount[]): Mount | null {
  let best: Mount | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    if (p === mp || mp === '/' || p.startsWith(`${mp}/`)) {
      if (!best || mp.length >= best.mountPoint.length) best = m;
    }
  }
  return best;
}

export type AtimeMode = 'noatime' | 'relatime' | 'strictatime' | 'atime';

/** The atime mode of a mount: noatime | relatime | strictatime | nodiratime-only etc. */
export const atimeMode = (m: Mount): AtimeMode =>
  m.options.includes('noatime')
    ? 'noatime'
    : m.options.includes('strictatime')
      ? 'strictatime'
      : m.options.includes('relatime')
        ? 'relatime'
        : 'atime';

/** What is mounted at a mount point. */
export interface MountEntry {
  source: string;
  fstype: string;
  /** Comma-separated mount options (with mountinfo: the per-mount and the superblock ones). */
  options: string;
}

/**
 * What is mounted at `mountPoint` (default the data volume's), from the gate's mount diagnostic: accepts
 * `findmnt` output (TARGET SOURCE FSTYPE OPTIONS), /proc/mounts lines or mountinfo lines. Null when nothing is
 * mounted there.
 */
export function parseMountEntry(text: string, mountPoint: string = MOUNT_POINT): MountEntry | null {
  for (const raw of String(text).split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const f = line.split(/\s+/);
    // mountinfo: id parent maj:min root mountpoint options ... - fstype source superoptions
    const dash = f.indexOf('-');
    if (dash > 5 && /^\d+:\d+$/.test(f[2])) {
      const m = parseMountinfoLine(f.join(' '));
      if (m.mountPoint === mountPoint)
        return { source: m.source, fstype: m.fstype, options: [...m.options, ...m.superOptions].join(',') };
      continue;
    }
    // /proc/mounts: source mountpoint fstype options 0 0
    if (f.length >= 4 && f[1] === mountPoint) return { source: f[0], fstype: f[2], options: f[3] };
    // findmnt: TARGET SOURCE FSTYPE OPTIONS
    if (f.length >= 3 && f[0] === mountPoint) return { source: f[1], fstype: f[2], options: f[3] ?? '' };
  }
  return null;
}

/** One path of `btrfs filesystem du -s --raw`: bytes referenced (Total), exclusive, and shared with other trees. */
export interface DuSummary {
  path: string;
  total: number;
  exclusive: number;
  /** null when btrfs prints '-' (nothing shared). */
  setShared: number | null;
}

/**
 * Parses `btrfs filesystem du -s --raw PATH...` (a header, then "TOTAL EXCLUSIVE SET_SHARED PATH" per line).
 * It walks each file's extent metadata (FIEMAP); no file data is read.
 */
export function parseFilesystemDu(text: string): DuSummary[] {
  const out: DuSummary[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+|-)\s+(.+?)\s*$/.exec(line);
    if (m)
      out.push({
        path: m[4],
        total: Number(m[1]),
        exclusive: Number(m[2]),
        setShared: m[3] === '-' ? null : Number(m[3]),
      });
  }
  return out;
}

// ------------------------------------------------------------------------------------------- scrub

/** The error counters of a scrub, as `btrfs scrub status -R` names them (btrfs-progs' struct btrfs_scrub_progress). */
export const SCRUB_ERROR_COUNTERS = [
  'read_errors',
  'csum_errors',
  'verify_errors',
  'super_errors',
  'malloc_errors',
  'uncorrectable_errors',
  'unverified_errors',
  'corrected_errors',
] as const;

/** A scrub as `btrfs scrub status -R` reports it. */
export interface ScrubStatus {
  /** The filesystem's UUID. */
  uuid: string | null;
  /** finished | running | aborted (cancelled) | interrupted; null when btrfs has no stats ("no stats available"). */
  status: 'finished' | 'running' | 'aborted' | 'interrupted' | null;
  /** Seconds (the H:MM:SS Duration line). */
  durationSeconds: number | null;
  /** Every raw counter it printed: data_bytes_scrubbed, tree_bytes_scrubbed, csum_errors, uncorrectable_errors, ... */
  counters: Record<string, number>;
  /** data_bytes_scrubbed + tree_bytes_scrubbed. */
  bytesScrubbed: number;
}

/**
 * Parses `btrfs scrub status -R MOUNT` (raw counters). btrfs-progs 6.2 (Debian 12) and 6.6+ (Ubuntu 24.04) print the
 * same raw block (print_scrub_full: tab-indented `name: value` lines) after "Scrub started:" (or "Scrub resumed:"),
 * "Status:" and "Duration:"; the start time is in the host's locale (%c) and is not parsed: the scrub's own state
 * file records it as UTC.
 */
export function parseScrubStatusRaw(text: string): ScrubStatus {
  const t = String(text);
  const uuid = /^UUID:\s+(\S+)/m.exec(t)?.[1] ?? null;
  const status = /^Status:\s+(finished|running|aborted|interrupted)\s*$/m.exec(t)?.[1] as
    ScrubStatus['status'] | undefined;
  const d = /^Duration:\s+(\d+):(\d{2}):(\d{2})\s*$/m.exec(t);
  const counters: Record<string, number> = {};
  for (const m of t.matchAll(/^\s+([a-z_]+): (\d+)\s*$/gm)) counters[m[1]] = Number(m[2]);
  return {
    uuid,
    status: status ?? null,
    durationSeconds: d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : null,
    counters,
    bytesScrubbed: (counters.data_bytes_scrubbed ?? 0) + (counters.tree_bytes_scrubbed ?? 0),
  };
}

/** A damaged block the kernel named while scrubbing. */
export interface ScrubKernelError {
  /** e.g. 'checksum', 'unable to fixup (regular)', 'header', 'read'. */
  kind: string;
  /** The btrfs logical address (what `btrfs inspect-internal logical-resolve` takes). */
  logical: number;
  /** The subvolume (tree) id and the file, when the kernel could name them (data blocks). */
  root: number | null;
  inode: number | null;
  /** The file's path inside that subvolume, as the kernel printed it. */
  path: string | null;
}

/**
 * The scrub errors of kernel log lines (dmesg, journalctl -k). Kernel 6.4+ prints
 * `scrub: checksum error at logical L on dev D, physical P root R inode I offset O length N links K (path: F)`,
 * older kernels the same with commas between the fields; metadata errors name no file.
 */
export function parseScrubKernelErrors(text: string): ScrubKernelError[] {
  const out: ScrubKernelError[] = [];
  for (const line of String(text).split('\n')) {
    const m = /(?:scrub: )?([a-z][a-z ()]*?) error at logical (\d+) on dev ([^,\s]+)(.*)$/.exec(line);
    if (!m) continue;
    const rest = m[4];
    const file = /root (\d+),? inode (\d+),?.*\(path: (.*)\)\s*$/.exec(rest);
    out.push({
      kind: m[1].replace(/^(?:BTRFS \w+ \(device [^)]*\): )/, ''),
      logical: Number(m[2]),
      root: file ? Number(file[1]) : null,
      inode: file ? Number(file[2]) : null,
      path: file ? file[3] : null,
    });
  }
  return out;
}
