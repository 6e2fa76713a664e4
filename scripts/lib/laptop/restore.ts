// `backup.mjs restore`: picks a backup (the newest, or the one --at names), brings it here through the gate
// (unless the same snapshot is already here), and then, as asked: leaves it read-only in the snapshot directory or
// --to DIR; copies one file or directory out (--path); or makes it the live subvolume (--make-live), the old one
// kept renamed, never deleted. The restored snapshot stays where btrbk keeps its snapshots, so the next scheduled
// backup finds it as the common parent and sends only what changed since (docs/RESTORE.md).
// planRestore() decides (pure, unit-tested); restore() carries the plan out.
import fs from 'node:fs';
import path from 'node:path';
import { parseMountinfo } from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, runChecked, type Run } from '../core/process.js';
import { restoreBackup } from '../data/restore.js';
import { humanBytes } from '../core/units.js';
import { progressLine } from '../remote/transfer.js';
import { stampOf } from './exclude.js';
import { defaultSnapshotDir, inspectSource, type Manifest } from './install.js';
import { LOCKFILE, parseSnapshotName, SNAPSHOT_DIR_NAME, targetFor } from './layout.js';
import { listingError } from './device-key.js';
import { requireRoot } from './system.js';
import { datedFor, localSnapshots, targetBackups, type Dated } from './target.js';

/** Picks the backup: the newest, or the one --at names (a full timestamp or its start, or a date/time: the newest at or before it). */
export function chooseBackup(backups: Dated[], at: string | undefined, what: string): Dated {
  if (!backups.length)
    throw new OperatorError(`there is no complete backup of ${what} on the target`, {
      next: 'npx zx scripts/backup.mjs list   (which subvolumes and machines have backups)',
    });
  if (!at) return backups[backups.length - 1];
  const byName = backups.filter((b) => b.timestamp === at || b.name === at || b.timestamp.startsWith(at));
  if (byName.length) return byName[byName.length - 1];
  const t = new Date(at);
  if (!Number.isNaN(t.getTime())) {
    const before = backups.filter((b) => b.time.getTime() <= t.getTime());
    if (before.length) return before[before.length - 1];
  }
  throw new OperatorError(`no backup of ${what} matches --at ${at}`, {
    details: backups
      .slice(-10)
      .map((b) => b.name)
      .join('\n'),
    next: 'use one of the timestamps above (or its start, e.g. 20261130), or a date such as 2026-11-30T12:00',
  });
}

export interface RestoreFacts {
  subvolume: string;
  snapshotDir: string;
  backups: Dated[];
  /** Local snapshots of the subvolume (names as in the snapshot directory). */
  local: Dated[];
  liveExists: boolean;
  /** The live subvolume's path is a mount point (it cannot be renamed while mounted). */
  liveIsMountPoint: boolean;
  now: Date;
}

export interface RestorePlan {
  backup: Dated;
  /** The directory the backup is received into; null when the same snapshot is already here (`present`). */
  receiveInto: string | null;
  /** Where the restored read-only snapshot is (or will be). */
  snapshot: string;
  /** --make-live: the old live subvolume is renamed to keepAs (null: there was none), then a writable snapshot made. */
  makeLive: { live: string; keepAs: string | null } | null;
  /** --path: what is copied where. */
  copy: { from: string; to: string } | null;
  /** The steps, in a person's words, printed before anything is done. */
  steps: string[];
  /** Where the data comes from: the local snapshot of the same name, or the target (the off-site copy). */
  source: 'local' | 'target';
}

/** Whether something is at a path (a dangling symlink counts: it is in the file's place). */
const occupied = (p: string): boolean => {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/** Decides what a restore does, refusing anything that would replace data. */
export function planRestore(
  f: RestoreFacts,
  opts: {
    at?: string;
    to?: string;
    makeLive?: boolean;
    path?: string;
    copyTo?: string;
    /** Receive from the target even when the same snapshot is here. */
    fromTarget?: boolean;
    exists?: (p: string) => boolean;
  },
): RestorePlan {
  const exists = opts.exists ?? occupied;
  const backup = chooseBackup(f.backups, opts.at, f.subvolume);
  const here = f.local.find((s) => s.name === backup.name);
  // the same snapshot is here and neither --to nor --from-target asks for the target's copy: use it, transfer nothing
  const useLocal = Boolean(here) && !opts.to && !opts.fromTarget;
  // --from-target with the snapshot here: the received copy cannot take its name in the snapshot directory
  const dir =
    opts.to ?? (here && opts.fromTarget ? path.join(f.snapshotDir, `from-target-${stampOf(f.now)}`) : f.snapshotDir);
  const snapshot = useLocal ? here!.path : path.join(dir, backup.name);
  if (!useLocal && exists(snapshot))
    throw new OperatorError(`${snapshot} already exists`, {
      next: opts.to ? 'restore into another --to directory, or use that one' : 'wait a second and try again',
    });
  const steps: string[] = [];
  const receiveInto = useLocal ? null : dir;
  steps.push(
    receiveInto
      ? `receive ${backup.path} from the target (the off-site copy) into ${receiveInto}/ (read-only)`
      : `use the local snapshot ${snapshot}: the same snapshot as the backup ${backup.name} on the target, so nothing is transferred and the off-site copy is not read (--from-target reads it)`,
  );
  let makeLive: RestorePlan['makeLive'] = null;
  if (opts.makeLive) {
    if (f.liveExists && f.liveIsMountPoint) {
      throw new OperatorError(`${f.subvolume} is a mount point: it cannot be renamed while mounted`, {
        cause: 'making a backup live swaps the subvolume at that path',
        next: `restore without --make-live (it lands in ${f.snapshotDir}), then point the mount at it: btrfs subvolume snapshot ${snapshot} NEW_PATH and mount that subvolume (subvol=...) at ${f.subvolume}; or unmount ${f.subvolume} first (from a root login that does not use it)`,
      });
    }
    const keepAs = f.liveExists ? `${f.subvolume}.before-restore-${stampOf(f.now)}` : null;
    if (keepAs && exists(keepAs))
      throw new OperatorError(`${keepAs} already exists`, { next: 'wait a second and try again' });
    if (keepAs)
      steps.push(
        `rename the live ${f.subvolume} to ${keepAs} (kept, never deleted; delete it yourself when you are sure)`,
      );
    steps.push(
      `make ${f.subvolume} a writable snapshot of ${snapshot} (instant, no copy); the next backup sends only what changes from it`,
    );
    makeLive = { live: f.subvolume, keepAs };
  }
  let copy: RestorePlan['copy'] = null;
  if (opts.path) {
    const from = path.join(snapshot, opts.path);
    const own = path.join(f.subvolume, opts.path);
    // a deleted file comes back under its own name; beside it only when something is in its place
    const to = opts.copyTo ?? (exists(own) ? `${own}.restored-${backup.timestamp}` : own);
    if (exists(to))
      throw new OperatorError(`${to} already exists; not overwriting it`, {
        next: 'move it away, or name another destination with --to',
      });
    steps.push(
      `copy ${from} to ${to} (cp -a${to === own ? `; ${opts.path} is not there now, so it gets its own name back, with any missing parent directories as they are in the backup` : `; ${own} is there, so the copy goes beside it`}; nothing else changes)`,
    );
    copy = { from, to };
  }
  return { backup, receiveInto, snapshot, makeLive, copy, steps, source: useLocal ? 'local' : 'target' };
}

export interface RestoreRequest {
  conn: Connection;
  manifest: Manifest | null;
  subvolume: string;
  at?: string;
  to?: string;
  makeLive?: boolean;
  path?: string;
  /** --device: another device's backups (a lost laptop's), with that device's connection file and key. */
  device?: string;
  /** --from-target: receive the backup even when the same snapshot is here. */
  fromTarget?: boolean;
  /** Printed as the plan is decided and each step done. */
  say?: (line: string) => void;
}

export interface RestoreResult {
  plan: RestorePlan;
  /** The stream's bytes, and the bytes over the wire (compressed); null when nothing was transferred. */
  bytes: number | null;
  wireBytes?: number | null;
  durationMs: number | null;
}

const isMountPoint = (p: string, mountinfo: string): boolean =>
  parseMountinfo(mountinfo).some((m) => m.mountPoint === p);

/**
 * The swap of --make-live, holding btrbk's lock (its `lockfile`, flock LOCK_EX|LOCK_NB) so no scheduled run
 * snapshots the path mid-swap: rename the live subvolume to keepAs (when there is one), then a writable snapshot of
 * the restored one at the live path; if that fails, the rename is undone.
 */
const SWAP_SCRIPT = `set -e
if [ -n "$2" ]; then mv -T -- "$1" "$2"; fi
if ! btrfs subvolume snapshot -- "$3" "$1"; then
  if [ -n "$2" ]; then mv -T -- "$2" "$1"; fi
  exit 1
fi`;
const LOCK_BUSY = 75;

export async function swapLive(
  live: string,
  keepAs: string | null,
  snapshot: string,
  { run = runDefault }: { run?: Run } = {},
): Promise<void> {
  const r = await run('flock', [
    '--nonblock',
    '--conflict-exit-code',
    String(LOCK_BUSY),
    LOCKFILE,
    'sh',
    '-c',
    SWAP_SCRIPT,
    'sh',
    live,
    keepAs ?? '',
    snapshot,
  ]);
  if (r.status === LOCK_BUSY)
    throw new OperatorError('a backup is running right now; nothing was changed', {
      cause: `btrbk holds ${LOCKFILE}`,
      next: 'wait for it to finish (backup.mjs status), then run the restore again: the received backup is reused, not transferred again',
    });
  if (r.status !== 0) {
    throw new OperatorError(
      `cannot make ${live} the restored snapshot${keepAs && fs.existsSync(live) ? ` (${live} is as it was)` : ''}`,
      {
        details: (r.error?.message ?? r.stderr).trim(),
        next: `the restored snapshot is ${snapshot}; fix the cause and run the restore again`,
      },
    );
  }
}

/** Carries out a restore. */
export async function restore(req: RestoreRequest, { run = runDefault }: { run?: Run } = {}): Promise<RestoreResult> {
  requireRoot('restore', 'btrfs receive and snapshots need root');
  const say = req.say ?? ((l: string) => console.log(l));
  const src = req.manifest?.sources.find((s) => s.subvolume === req.subvolume);
  // where install would put them (beside the subvolume on the same btrfs, else inside it)
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const snapshotDir =
    src?.snapshotDir ??
    (fs.existsSync(req.subvolume)
      ? defaultSnapshotDir(
          inspectSource(req.subvolume, mountinfo),
          inspectSource(path.dirname(req.subvolume), mountinfo),
        )
      : path.join(path.dirname(req.subvolume), SNAPSHOT_DIR_NAME));
  const { device, targetDir } = targetFor(req.conn, req.device, req.manifest);
  const base = path.posix.basename(req.subvolume);
  const listing = await targetBackups(req.conn, targetDir);
  if (!listing.reachable) throw await listingError(req.conn, device, listing, { verb: 'restore' });
  const backups = datedFor(
    listing.entries.filter((e) => e.complete),
    base,
  );
  const liveExists = fs.existsSync(req.subvolume);
  const plan = planRestore(
    {
      subvolume: req.subvolume,
      snapshotDir,
      backups,
      local: localSnapshots(snapshotDir, base),
      liveExists,
      liveIsMountPoint: liveExists && isMountPoint(req.subvolume, mountinfo),
      now: new Date(),
    },
    {
      at: req.at,
      to: req.path ? undefined : req.to,
      makeLive: req.makeLive,
      path: req.path,
      copyTo: req.path ? req.to : undefined,
      fromTarget: req.fromTarget,
    },
  );
  say(
    `restore of ${req.subvolume} from ${plan.source === 'local' ? `the local snapshot ${plan.snapshot} (the same as ${plan.backup.path} on the target)` : `${plan.backup.path} on the target`}:`,
  );
  plan.steps.forEach((s, i) => say(`  ${i + 1}. ${s}`));
  let bytes: number | null = null;
  let wireBytes: number | null = null;
  let durationMs: number | null = null;
  if (plan.receiveInto) {
    if (!fs.existsSync(plan.receiveInto)) fs.mkdirSync(plan.receiveInto, { recursive: true, mode: 0o700 });
    // in a log: a line every 5 s once it has run 2 s (a short receive gets only its closing line below)
    const line = progressLine({ indent: '  ', everyMs: 5000, afterMs: 2000 });
    const r = await restoreBackup(req.conn, plan.backup.path, plan.receiveInto, {
      onProgress: (p) => line.show('receiving', p),
    });
    line.clear();
    bytes = r.bytes;
    wireBytes = r.wireBytes;
    durationMs = r.durationMs;
    say(
      `  received ${humanBytes(r.bytes)} in ${(r.durationMs / 1000).toFixed(1)} s (${r.compress ? `${humanBytes(r.wireBytes)} over the wire, zstd-compressed on the host` : 'uncompressed: zstd is not installed here'}): ${r.path}`,
    );
  }
  if (plan.makeLive) {
    await swapLive(plan.makeLive.live, plan.makeLive.keepAs, plan.snapshot);
    if (plan.makeLive.keepAs) say(`  renamed ${plan.makeLive.live} -> ${plan.makeLive.keepAs}`);
    say(`  ${plan.makeLive.live} is now the restored ${plan.backup.name} (writable)`);
  }
  if (plan.copy) {
    if (!fs.existsSync(plan.copy.from))
      throw new OperatorError(`${req.path} is not in the backup ${plan.backup.name}`, {
        next: `look inside ${plan.snapshot} (read-only) for the right path`,
      });
    const own = path.join(req.subvolume, req.path!);
    if (plan.copy.to === own && !fs.existsSync(path.dirname(own))) {
      // its directory is gone too: cp --parents makes the missing ones as they are in the backup (mode, owner)
      await run('cp', ['-a', '--reflink=auto', '--parents', '--', req.path!, `${req.subvolume}/`], {
        cwd: plan.snapshot,
      }).then((r) => {
        if (r.status !== 0)
          throw new OperatorError(`cannot copy ${plan.copy!.from} to ${own}`, {
            details: (r.error?.message ?? r.stderr).trim(),
          });
      });
    } else
      await runChecked('cp', ['-a', '--reflink=auto', '--', plan.copy.from, plan.copy.to], {
        what: `cannot copy ${plan.copy.from} to ${plan.copy.to}`,
      });
    say(`  copied to ${plan.copy.to}`);
  }
  return { plan, bytes, wireBytes, durationMs };
}

/** The closing line of a restore, saying where the data came from. */
export function formatRestore(r: RestoreResult): string {
  const from =
    r.plan.source === 'local'
      ? `from the local snapshot ${r.plan.snapshot} (the same as ${r.plan.backup.name} on the target; nothing transferred, the off-site copy not read: --from-target reads it)`
      : `from the target's ${r.plan.backup.path} (${r.bytes === null ? 'received' : `${humanBytes(r.bytes)} received${r.wireBytes ? `, ${humanBytes(r.wireBytes)} over the wire` : ''}`})`;
  if (r.plan.makeLive)
    return `done, ${from}: ${r.plan.makeLive.live} is live again; the next backup (timer, or backup.mjs run) is incremental from ${r.plan.backup.name}`;
  if (r.plan.copy) return `done, ${from}: ${r.plan.copy.to}`;
  return `done, ${from}: the backup is at ${r.plan.snapshot} (read-only). Make it live with --make-live, or copy files out of it.`;
}

export { parseSnapshotName };
