// `backup.mjs status`: per subvolume, the newest local snapshot and the newest backup on the target (asked through
// the gate), their ages, and a verdict a monitor can use: fresh, stale, never backed up, or target unreachable.
// judge() is the rule (pure, unit-tested); backupStatus() gathers the facts.
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { Palette } from '../core/report.js';
import type { Run } from '../core/process.js';
import type { Manifest } from './install.js';
import { keyProblem } from './device-key.js';
import { targetFor } from './layout.js';
import { backupCommand, lastRun, timerNextRun, type LastRun } from './system.js';
import { datedFor, localSnapshots, targetBackups, type Dated } from './target.js';
import { readLastVerify, type LastVerify } from './verify.js';

export type Freshness = 'fresh' | 'stale' | 'never' | 'unreachable';

export interface Verdict {
  state: Freshness;
  reason: string;
}

/** The verdict for one subvolume. */
export function judge({
  newestBackup,
  reachable,
  unreachableReason = '',
  now,
  maxAgeHours,
  subvolume,
}: {
  newestBackup: Date | null;
  reachable: boolean;
  unreachableReason?: string;
  now: Date;
  maxAgeHours: number;
  subvolume: string;
}): Verdict {
  if (!reachable)
    return { state: 'unreachable', reason: `cannot ask the target about ${subvolume}: ${unreachableReason}` };
  if (!newestBackup)
    return {
      state: 'never',
      reason: `${subvolume} has never been backed up to the target (run: ${backupCommand('run')})`,
    };
  const ageH = (now.getTime() - newestBackup.getTime()) / 3600e3;
  if (ageH > maxAgeHours)
    return {
      state: 'stale',
      reason: `the newest backup of ${subvolume} is ${ageText(ageH * 3600)} old, more than ${maxAgeHours} h`,
    };
  return { state: 'fresh', reason: `the newest backup of ${subvolume} is ${ageText(ageH * 3600)} old` };
}

export interface SubvolumeStatus extends Verdict {
  subvolume: string;
  snapshotDir: string;
  newestSnapshot: Dated | null;
  newestBackup: Dated | null;
  backups: number;
}

export interface BackupStatus {
  ok: boolean;
  checkedAt: Date;
  maxAgeHours: number;
  targetDir: string;
  subvolumes: SubvolumeStatus[];
  nextRun: Date | null;
  lastRun: LastRun | null;
  /** The last `backup.mjs verify` (FILES.lastVerify), null when none ran. */
  lastVerify: LastVerify | null;
}

export interface StatusRequest {
  /** The connection, or how to read it (read only when something is installed: after uninstall there is no file). */
  conn: Connection | (() => Connection);
  manifest: Manifest | null;
  maxAgeHours: number;
  /** Only these (default: every installed subvolume). */
  subvolumes?: string[];
  now?: Date;
  run?: Run;
  /** Where FILES.lastVerify is read (tests: a temporary directory). */
  root?: string;
}

/** An error as one line: what, the cause in brackets, then what to do. */
const oneLine = (e: OperatorError | null): string =>
  e ? `${e.what}${e.likelyCause ? ` (${e.likelyCause})` : ''}${e.next ? `; next: ${e.next}` : ''}` : '';

/** Nothing installed here (never, or uninstalled): no backups are scheduled; what to run instead. */
export function nothingInstalled(verb: string): OperatorError {
  return new OperatorError(`nothing is installed on this machine: no backups are scheduled here`, {
    cause: `${verb} reports on what backup.mjs install protects; install has not run here, or uninstall removed it (it keeps every snapshot and backup)`,
    next: `${backupCommand('install --subvolume /home')} to protect a subvolume; ${backupCommand('list --env FILE')} shows the backups on the target`,
  });
}

/** Gathers the status of each installed subvolume (one listing through the gate for all). */
export async function backupStatus(req: StatusRequest): Promise<BackupStatus> {
  const m = req.manifest;
  if (!m) throw nothingInstalled('status');
  const conn = typeof req.conn === 'function' ? req.conn() : req.conn;
  const now = req.now ?? new Date();
  const sources = req.subvolumes?.length ? m.sources.filter((s) => req.subvolumes?.includes(s.subvolume)) : m.sources;
  if (!sources.length)
    throw new OperatorError(`${req.subvolumes?.join(', ')} is not protected here`, {
      next: `installed: ${m.sources.map((s) => s.subvolume).join(', ')}`,
    });
  const { device, targetDir } = targetFor(conn, undefined, m);
  const listing = await targetBackups(conn, targetDir, { run: req.run });
  // a refused listing: say whose key it is (refused, or another device's), as list and restore do
  const unreachableReason = listing.reachable
    ? ''
    : listing.refused
      ? oneLine(await keyProblem(conn, device, { run: req.run, verb: 'status' })) || listing.reason
      : listing.reason;
  const subvolumes = sources.map((s): SubvolumeStatus => {
    const base = path.posix.basename(s.subvolume);
    const snaps = localSnapshots(s.snapshotDir, base);
    const backups = listing.reachable
      ? datedFor(
          listing.entries.filter((e) => e.complete),
          base,
        )
      : [];
    const newestBackup = backups.at(-1) ?? null;
    const v = judge({
      newestBackup: newestBackup?.time ?? null,
      reachable: listing.reachable,
      unreachableReason,
      now,
      maxAgeHours: req.maxAgeHours,
      subvolume: s.subvolume,
    });
    return {
      subvolume: s.subvolume,
      snapshotDir: s.snapshotDir,
      newestSnapshot: snaps.at(-1) ?? null,
      newestBackup,
      backups: backups.length,
      ...v,
    };
  });
  const [nextRun, last] = await Promise.all([timerNextRun({ run: req.run }), lastRun({ run: req.run })]);
  return {
    ok: subvolumes.every((s) => s.state === 'fresh'),
    checkedAt: now,
    maxAgeHours: req.maxAgeHours,
    targetDir,
    subvolumes,
    nextRun,
    lastRun: last,
    lastVerify: readLastVerify(req.root ?? '/'),
  };
}

/** Seconds -> "45 s", "12 min", "5.2 h", "3.0 days". */
export function ageText(seconds: number): string {
  const s = Math.max(0, seconds);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

const age = (d: Date | null | undefined, now: Date): string =>
  d ? `${ageText((now.getTime() - d.getTime()) / 1000)} ago` : 'none';

/** The status as text. */
export function formatStatus(s: BackupStatus, c: Palette): string {
  const mark: Record<Freshness, string> = {
    fresh: c.green('✓ fresh'),
    stale: c.red('✗ stale'),
    never: c.red('✗ never backed up'),
    unreachable: c.red('✗ target unreachable'),
  };
  const lines: string[] = [];
  for (const v of s.subvolumes) {
    lines.push(`${mark[v.state]}  ${c.bold(v.subvolume)}`);
    lines.push(
      `    newest snapshot  ${v.newestSnapshot ? `${v.newestSnapshot.name} (${age(v.newestSnapshot.time, s.checkedAt)})` : 'none'}  in ${v.snapshotDir}`,
    );
    lines.push(
      `    newest backup    ${v.newestBackup ? `${v.newestBackup.name} (${age(v.newestBackup.time, s.checkedAt)}), ${v.backups} on the target` : v.state === 'unreachable' ? 'unknown' : 'none'}  in ${s.targetDir}`,
    );
    if (v.state !== 'fresh') lines.push(`    ${v.reason}`);
  }
  lines.push(
    `next scheduled run: ${s.nextRun ? s.nextRun.toISOString() : 'none (timer not active, or no systemd here)'}`,
  );
  if (s.lastRun) {
    const res =
      s.lastRun.result === 'success'
        ? c.green('success')
        : s.lastRun.result === 'running'
          ? c.yellow('running now')
          : c.red(`failed: ${s.lastRun.result}${s.lastRun.exitStatus ? ` (exit ${s.lastRun.exitStatus})` : ''}`);
    lines.push(`last scheduled run: ${res}, ended ${age(s.lastRun.endedAt, s.checkedAt)}`);
    if (s.lastRun.result !== 'success') lines.push(...s.lastRun.journal.slice(-6).map((l) => `    ${l}`));
  } else lines.push('last scheduled run: none yet');
  const v = s.lastVerify;
  if (v) {
    const sample = v.seed === null ? 'every file' : `${v.sample} % sample, seed ${v.seed}`;
    lines.push(
      `last verify: ${v.ok ? c.green('clean') : c.red('not clean')}, ${age(new Date(v.at), s.checkedAt)} (${sample})`,
    );
    for (const x of v.subvolumes) if (x.state !== 'clean') lines.push(`    ${x.subvolume}: ${x.state}: ${x.reason}`);
  } else lines.push(`last verify: never (${backupCommand('verify')})`);
  return lines.join('\n');
}

/** The status for --json (dates as ISO strings, ages in seconds). */
export function statusJson(s: BackupStatus): Record<string, unknown> {
  const sec = (d: Date | null | undefined) => (d ? Math.round((s.checkedAt.getTime() - d.getTime()) / 1000) : null);
  return {
    ok: s.ok,
    checkedAt: s.checkedAt.toISOString(),
    maxAgeHours: s.maxAgeHours,
    targetDir: s.targetDir,
    nextRun: s.nextRun?.toISOString() ?? null,
    lastRun: s.lastRun
      ? {
          result: s.lastRun.result,
          exitStatus: s.lastRun.exitStatus,
          endedAt: s.lastRun.endedAt?.toISOString() ?? null,
        }
      : null,
    lastVerify: s.lastVerify ? { ...s.lastVerify, ageSeconds: sec(new Date(s.lastVerify.at)) } : null,
    subvolumes: s.subvolumes.map((v) => ({
      subvolume: v.subvolume,
      state: v.state,
      reason: v.reason,
      newestSnapshot: v.newestSnapshot?.name ?? null,
      newestSnapshotAgeSeconds: sec(v.newestSnapshot?.time),
      newestBackup: v.newestBackup?.name ?? null,
      newestBackupAgeSeconds: sec(v.newestBackup?.time),
      backups: v.backups,
    })),
  };
}
