// Which protected subvolumes have no backup on the target yet (their next send is a full one, of a size known
// in advance from `btrfs filesystem du`, metadata only) and which send incrementally (size not known until
// btrbk has sent it). install prints the first backup's estimate from it (deploy/first-backup.ts, the standard
// lane); run prints each full send's size and ETA before btrbk starts.
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { DEFAULT_INSTANCE_TYPE, instanceFacts, INSTANCE_TYPES } from '../core/instance-types.js';
import type { Run } from '../core/process.js';
import {
  bytesToSend,
  estimateFirstBackup,
  formatFirstBackup,
  formatHours,
  formatSendSize,
  sourceSizes,
  type FirstBackupEstimate,
} from '../deploy/first-backup.js';
import type { Manifest } from './install.js';
import { datedFor, targetBackups } from './target.js';

export interface FirstSends {
  /** Whether the target answered the listing; when it did not, every subvolume is counted as a full send. */
  targetAnswered: boolean;
  /** Why it did not answer. */
  reason: string | null;
  /** Subvolumes with no backup on the target yet, with the bytes a full send carries (null: not measured). */
  full: { subvolume: string; bytes: number | null }[];
  /** Subvolumes with a backup there: incremental sends, size not known in advance. */
  incremental: string[];
  /** What `btrfs filesystem du` said when it could not size the full sends. */
  sizeProblem: string | null;
}

/**
 * Asks the target (through the gate, with `conn`; `targetAnswered: false` to skip asking when it is known to be
 * down) which subvolumes have a backup in targetDir, and sizes the others.
 */
export async function firstSends({
  conn,
  targetDir,
  subvolumes,
  ask = true,
  reason = null,
  run,
}: {
  conn: Connection;
  targetDir: string;
  subvolumes: string[];
  ask?: boolean;
  reason?: string | null;
  run?: Run;
}): Promise<FirstSends> {
  let answered = false;
  let why = reason;
  let have = new Set<string>();
  if (ask) {
    const l = await targetBackups(conn, targetDir, run ? { run } : {});
    if (l.reachable) {
      answered = true;
      const complete = l.entries.filter((e) => e.complete);
      have = new Set(subvolumes.filter((s) => datedFor(complete, path.posix.basename(s)).length > 0));
    } else {
      why = l.reason;
    }
  }
  const fresh = subvolumes.filter((s) => !have.has(s));
  let sizes: (number | null)[] = fresh.map(() => null);
  let sizeProblem: string | null = null;
  if (fresh.length) {
    try {
      const du = await sourceSizes(fresh, run ? { run } : {});
      sizes = du.map((d) => bytesToSend([d]));
    } catch (err) {
      if (!(err instanceof OperatorError)) throw err;
      sizeProblem = `${err.what}: ${err.details.split('\n')[0]}`;
    }
  }
  return {
    targetAnswered: answered,
    reason: answered ? null : why,
    full: fresh.map((subvolume, i) => ({ subvolume, bytes: sizes[i] })),
    incremental: subvolumes.filter((s) => have.has(s)),
    sizeProblem,
  };
}

/** The first backup's estimate for the full sends (null: none, or their sizes are unknown). */
export function firstSendEstimate(
  f: FirstSends,
  { uploadMbit, instanceType = DEFAULT_INSTANCE_TYPE }: { uploadMbit?: number | null; instanceType?: string },
): FirstBackupEstimate | null {
  if (!f.full.length || f.full.some((x) => x.bytes === null)) return null;
  const bytes = f.full.reduce((a, x) => a + x.bytes!, 0);
  // the laptop does not choose the host's type: no region, no price, the standard lane is the one that counts
  return estimateFirstBackup({ bytes, uploadMbit: uploadMbit ?? null, instanceType, region: '' });
}

/** The --instance-type check (backup.mjs install): the types the estimate knows. */
export function instanceTypeProblem(type: string | undefined): string | null {
  if (type === undefined || instanceFacts(type)) return null;
  return `--instance-type ${type}: not a type this tool knows (${Object.keys(INSTANCE_TYPES).join(', ')}); the default is ${DEFAULT_INSTANCE_TYPE}, the stack's`;
}

/** install's short block: the estimate for the full sends still to come, labelled when the target did not answer. */
export function formatFirstSends(f: FirstSends, e: FirstBackupEstimate | null, instanceType: string): string[] {
  if (!f.full.length) return [];
  const names = f.full.map((x) => x.subvolume).join(', ');
  if (!e) return [`first backup of ${names}: no estimate (${f.sizeProblem ?? 'sizes unknown'})`];
  const [head, ...rest] = formatFirstBackup(e, { fastLane: false, what: `first backup (${names})` });
  return [
    ...(f.targetAnswered ? [] : [`the target did not answer (${f.reason}): this estimate assumes no backup there yet`]),
    head,
    ...rest.map(
      (l, i) =>
        `  ${i === 0 ? `${l} (host type ${instanceType === DEFAULT_INSTANCE_TYPE ? 'assumed, --instance-type if not' : 'from --instance-type'}; setup.mjs --first-backup: a faster lane)` : l}`,
    ),
  ];
}

/** What `run` is about to send, per subvolume: a full send's size and its expected time, or an incremental's. */
export interface RunSendPlan {
  sends: FirstSends;
  /** The expected time of each full send (same order as sends.full; null: its size is unknown). */
  full: { subvolume: string; bytes: number | null; estimate: FirstBackupEstimate | null }[];
  instanceType: string;
}

/** Asks the target (the installed connection) what run will send; the type and upload rate install recorded. */
export async function runSendPlan(m: Manifest, { run }: { run?: Run } = {}): Promise<RunSendPlan> {
  const sends = await firstSends({
    conn: m.connection,
    targetDir: m.targetDir,
    subvolumes: m.sources.map((s) => s.subvolume),
    run,
  });
  const instanceType = m.instanceType ?? DEFAULT_INSTANCE_TYPE;
  const full = sends.full.map((x) => ({
    ...x,
    estimate:
      x.bytes === null
        ? null
        : estimateFirstBackup({ bytes: x.bytes, uploadMbit: m.uploadMbit ?? null, instanceType, region: '' }),
  }));
  return { sends, full, instanceType };
}

/** run's lines before btrbk starts (the live progress of each send follows: send-progress.ts). */
export function formatRunSendPlan(p: RunSendPlan): string[] {
  if (!p.sends.targetAnswered)
    return [`the target did not answer (${p.sends.reason}): btrbk tries anyway and says why it fails`];
  const limit = { upload: 'your upload', network: 'its network baseline', cpu: 'its CPU baseline' } as const;
  return [
    ...p.full.map((x) => {
      const s = x.estimate?.standard;
      if (x.bytes === null) return `${x.subvolume}: first backup, a full send (size unknown: ${p.sends.sizeProblem})`;
      return (
        `${x.subvolume}: first backup, a full send of ${formatSendSize(x.bytes)}` +
        (s?.rateMBps
          ? `: about ${formatHours(s.hours)} at ${s.rateMBps.toFixed(1)} MB/s (${p.instanceType}, limited by ${limit[s.limitedBy!]}; compressible data goes faster)`
          : '')
      );
    }),
    ...p.sends.incremental.map(
      (s) => `${s}: incremental, only the changes since its last backup: their size is not known in advance (no ETA)`,
    ),
  ];
}
