// Which protected subvolumes have no backup on the target yet (their next send is a full one, of a size known
// in advance from `btrfs filesystem du`, metadata only) and which send incrementally (size not known until
// btrbk has sent it). install prints the first backup's estimate from it (deploy/first-backup.ts, the standard
// lane); run prints each full send's size and ETA before btrbk starts.
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { DEFAULT_INSTANCE_TYPE, instanceFacts, INSTANCE_TYPES } from '../core/instance-types.js';
import type { Run } from '../core/process.js';
import { bytesToSend, estimateFirstBackup, formatFirstBackup, sourceSizes, type FirstBackupEstimate } from '../deploy/first-backup.js';
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
export async function firstSends({ conn, targetDir, subvolumes, ask = true, reason = null, run }: { conn: Connection; targetDir: string; subvolumes: string[]; ask?: boolean; reason?: string | null; run?: Run }): Promise<FirstSends> {
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
export function firstSendEstimate(f: FirstSends, { uploadMbit, instanceType = DEFAULT_INSTANCE_TYPE }: { uploadMbit?: number | null; instanceType?: string }): FirstBackupEstimate | null {
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
    ...rest.map((l, i) => `  ${i === 0 ? `${l} (host type ${instanceType === DEFAULT_INSTANCE_TYPE ? 'assumed, --instance-type if not' : 'from --instance-type'}; setup.mjs --first-backup: a faster lane)` : l}`),
  ];
}
