// The first backup's estimate (issue 12): how long the first full send of the chosen subvolumes takes on the
// chosen instance type, and on the fast lane (a larger type for the first backup only, an in-place change of
// instance_type and back), with the cost of the fast lane's hours.
//
// The rate of a lane is the slowest of three:
//   - the person's upload rate (--upload-mbit), when given;
//   - the instance type's network baseline (core/instance-types.ts; t3a.nano: 4 MB/s; bursts last minutes only);
//   - what the type's CPU baseline can receive: baselineCores / RECEIVE_CPU_SECONDS_PER_GIB (measured by
//     `npm run bench -- --items limits`, docs/PERFORMANCE.md).
// The sizes come from `btrfs filesystem du -s --raw` (extent metadata only, no file data read; its cost grows
// with the number of files and extents: seconds for a home directory, minutes for millions of files).
import { parseFilesystemDu, type DuSummary } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { baselineCores, instanceFacts, networkBaselineMBps, INSTANCE_TYPES } from '../core/instance-types.js';
import { run as runDefault, type Run } from '../core/process.js';
import { OFFLINE_TABLE } from './price-table.js';
import { GiB } from '../core/units.js';

/**
 * Receive-side CPU seconds per GiB of wire bytes with the defaults (aes128-gcm, zstd level 1, compress=zstd:1 on
 * the target), incompressible data: sshd, the gate, btrfs receive and kernel threads. From the `limits` bench
 * run in docs/PERFORMANCE.md (the default's random-data row; this machine's Xeon, not a t3a's EPYC).
 */
export const RECEIVE_CPU_SECONDS_PER_GIB = 7.3;
/** The fast lane's type when none is given: the smallest that is not limited by its own network or CPU below
 * the upload rate, else the medium one of the deployed type's architecture. */
export const FAST_LANE_DEFAULT = 't3a.medium';
/** Types the fast lane picks from, smallest first, per architecture: the fast lane changes instance_type in place,
 * and a type of another architecture needs another image (the stack replaces the instance for that). */
const FAST_LANE_CANDIDATES: Record<'x86_64' | 'arm64', string[]> = {
  x86_64: ['t3a.small', 't3a.medium', 't3a.large', 't3a.xlarge'],
  arm64: ['t4g.small', 't4g.medium', 't4g.large', 't4g.xlarge'],
};

export interface LaneEstimate {
  instanceType: string;
  /** MB/s (10^6 bytes) of wire; null when the type is unknown. */
  rateMBps: number | null;
  /** What limits it: 'upload', 'network' or 'cpu'. */
  limitedBy: 'upload' | 'network' | 'cpu' | null;
  hours: number | null;
  /** USD per hour on demand in the region (cost.ts table), null when not in it. */
  pricePerHour: number | null;
  /** The lane's hours at that price. */
  cost: number | null;
}

export interface FirstBackupEstimate {
  bytes: number;
  /** Whether the size was measured (sources given) or is the 100 GB example. */
  measured: boolean;
  uploadMBps: number | null;
  standard: LaneEstimate;
  fast: LaneEstimate;
}

/** The receive rate a type's CPU baseline sustains (MB/s of wire). */
export function cpuRateMBps(type: string, cpuSecondsPerGiB = RECEIVE_CPU_SECONDS_PER_GIB): number | null {
  const f = instanceFacts(type);
  return f ? (baselineCores(f) * GiB) / cpuSecondsPerGiB / 1e6 : null;
}

function lane(type: string, bytes: number, uploadMBps: number | null, region: string): LaneEstimate {
  const f = instanceFacts(type);
  const pricePerHour = OFFLINE_TABLE.regions[region]?.instancePerHour[type] ?? null;
  if (!f) return { instanceType: type, rateMBps: null, limitedBy: null, hours: null, pricePerHour, cost: null };
  const limits: Array<[LaneEstimate['limitedBy'], number]> = [
    ['network', networkBaselineMBps(f)],
    ['cpu', cpuRateMBps(type)!],
  ];
  if (uploadMBps) limits.push(['upload', uploadMBps]);
  const [limitedBy, rateMBps] = limits.reduce((a, b) => (b[1] < a[1] ? b : a));
  const hours = bytes / (rateMBps * 1e6) / 3600;
  return {
    instanceType: type,
    rateMBps,
    limitedBy,
    hours,
    pricePerHour,
    cost: pricePerHour === null ? null : pricePerHour * Math.ceil(hours),
  };
}

/** The fast lane's type, of the deployed architecture: the smallest candidate whose own limits are not below the
 * upload rate. */
export function pickFastLane(uploadMBps: number | null, arch: 'x86_64' | 'arm64' = 'x86_64'): string {
  const candidates = FAST_LANE_CANDIDATES[arch];
  if (!uploadMBps) return candidates[1];
  return (
    candidates.find((t) => Math.min(networkBaselineMBps(INSTANCE_TYPES[t]), cpuRateMBps(t)!) >= uploadMBps) ??
    candidates[candidates.length - 1]
  );
}

/** Both lanes for `bytes` (null: the 100 GB example). */
export function estimateFirstBackup({
  bytes,
  uploadMbit,
  instanceType,
  fastType,
  region,
}: {
  bytes: number | null;
  uploadMbit?: number | null;
  instanceType: string;
  fastType?: string | null;
  region: string;
}): FirstBackupEstimate {
  const uploadMBps = uploadMbit ? uploadMbit / 8 : null;
  const b = bytes ?? 100e9;
  return {
    bytes: b,
    measured: bytes !== null,
    uploadMBps,
    standard: lane(instanceType, b, uploadMBps, region),
    fast: lane(fastType ?? pickFastLane(uploadMBps, instanceFacts(instanceType)?.arch), b, uploadMBps, region),
  };
}

/** "7.0 h" / "45 min". */
export function formatHours(h: number | null): string {
  if (h === null) return 'unknown';
  return h < 1 ? `${Math.max(1, Math.round(h * 60))} min` : `${h.toFixed(1)} h`;
}

/** The --upload-mbit check setup and backup.mjs install share: an OperatorError, or null when it is fine. */
export function uploadMbitProblem(n: number | undefined): OperatorError | null {
  if (n === undefined || (Number.isFinite(n) && n > 0)) return null;
  return new OperatorError('--upload-mbit must be your upload rate in Mbit/s (more than 0)', {
    next: 'e.g. --upload-mbit 40 (a speed test shows it)',
  });
}

/**
 * The estimate as lines: setup's (both lanes), or with `fastLane: false` the standard lane only (backup.mjs
 * install: the laptop does not choose the host's type); `what` replaces "first backup" in the heading.
 */
/** A send's size in the decimal units the rates use: "12.3 GB", or "300.0 MB" below 1 GB. */
export const formatSendSize = (bytes: number): string =>
  bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;

export function formatFirstBackup(
  e: FirstBackupEstimate,
  { fastLane = true, what = 'first backup' }: { fastLane?: boolean; what?: string } = {},
): string[] {
  const gb = formatSendSize(e.bytes);
  const l = (name: string, x: LaneEstimate) =>
    `${name.padEnd(9)} ${x.instanceType.padEnd(10)} ${x.rateMBps === null ? 'unknown type' : `${x.rateMBps.toFixed(1)} MB/s (limited by ${x.limitedBy === 'cpu' ? 'its CPU baseline' : x.limitedBy === 'network' ? 'its network baseline' : 'your upload'})`}: ${formatHours(x.hours)}` +
    (x.pricePerHour !== null && x.hours !== null
      ? `, ${Math.ceil(x.hours)} h × $${x.pricePerHour}/h = $${x.cost!.toFixed(2)}`
      : '');
  return [
    `${what} of ${gb}${e.measured ? '' : ' (an example size: give --source PATH for yours)'}${e.uploadMBps ? `, your upload ${(e.uploadMBps * 8).toFixed(0)} Mbit/s` : ' (give --upload-mbit N for your uplink)'}:`,
    l('standard', e.standard),
    ...(fastLane ? [l('fast lane', e.fast)] : []),
    'compressible data (text, logs) goes faster by its zstd ratio; later backups send only the changes',
  ];
}

/** Sizes of the sources (bytes of distinct data each references: exclusive + shared), by `btrfs filesystem du -s`. */
export async function sourceSizes(paths: string[], { run = runDefault }: { run?: Run } = {}): Promise<DuSummary[]> {
  if (!paths.length) return [];
  // data written moments ago has no extents until it is flushed, and du counts extents: flush the filesystems
  // first (a failure only leaves the estimate low)
  await run('sync', ['-f', ...paths]);
  const r = await run('btrfs', ['filesystem', 'du', '-s', '--raw', ...paths]);
  const parsed = r.status === 0 ? parseFilesystemDu(r.stdout) : [];
  if (parsed.length !== paths.length) {
    throw new OperatorError('cannot measure the sources for the first-backup estimate', {
      details: (r.stderr || r.stdout).trim(),
      cause:
        "a --source is not on btrfs, or its files are not readable by this user (btrfs filesystem du reads each file's extent map)",
      next: 'run it as a user who can read the sources (sudo); setup: or leave out --source (the estimate then uses 100 GB)',
    });
  }
  return parsed;
}

/** Total bytes to send for a set of du summaries. */
export const bytesToSend = (du: DuSummary[]): number => du.reduce((a, d) => a + d.exclusive + (d.setShared ?? 0), 0);
