// check-volume: the backup volume through the gate's read-only diagnostics (mount, usage, backup root,
// half-received backups, device stats, the host's retention), and the reader of the retention report.
import {
  parseDeviceStats,
  parseMountEntry,
  parseScrubKernelErrors,
  parseScrubStatusRaw,
  parseSubvolumeListR,
  parseUsage,
  SCRUB_ERROR_COUNTERS,
  type ScrubKernelError,
  type ScrubStatus,
} from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { MOUNT_POINT, SCRUB_INTERVAL_DAYS, SCRUB_SCHEDULE } from '../../../user-data/host-layout.js';
import type { TestResult } from '../core/report.js';
import { sshParams, type ExecResult } from '../remote/ssh.js';
import { humanBytes } from '../core/units.js';
import { CHECK_COMMANDS, REJECTED, gateRefusalHint } from './check-commands.js';
import type { CheckDeps } from './deps.js';
import { fail, messageOf, pass } from './results.js';
import { sshSession, type Session } from './session.js';

/** The host's pruning policy (prune.conf). */
export interface RetentionPolicy {
  appendOnly: boolean;
  /** btrbk-style retention, e.g. '48h 14d 8w 12m'. */
  retention: string;
  /** Everything younger than this is kept, e.g. '1d'. */
  retentionMin: string;
}

/**
 * The last prune, as btrbk-prune's state file has it: key=value lines (when, result 'ok' or 'failed', and
 * deleted_count, kept_count, groups or error), plus the paths it deleted.
 */
export interface LastPrune {
  [key: string]: string | string[] | undefined;
  when?: string;
  result?: string;
  deleted_count?: string;
  error?: string;
  deleted: string[];
}

/** One backup and what the next prune does with it. */
export interface RetentionEntry {
  created: string;
  action: 'keep' | 'goes';
  path: string;
  /** Why (the retention rule that keeps it, or that none does). */
  reason: string;
}

export interface RetentionReport {
  /** Null when the report has no policy line (not a btrbk-prune report). */
  policy: RetentionPolicy | null;
  /** Null when no prune has run yet. */
  lastRun: LastPrune | null;
  backups: RetentionEntry[];
}

/**
 * Parses `btrbk-diag retention` (btrbk-prune report): the policy, the last prune (key=value lines; deleted=PATH
 * repeated) and, per backed-up subvolume, each backup with what happens to it ('keep' or 'goes' at the next prune).
 */
export function parseRetentionReport(text: string): RetentionReport {
  const lines = String(text).split('\n');
  const policy = /^policy: APPEND_ONLY=(\S+) RETENTION='([^']*)' RETENTION_MIN=(\S+)/.exec(
    lines.find((l) => l.startsWith('policy: ')) ?? '',
  );
  const lastRun: Record<string, string> = {};
  const deleted: string[] = [];
  let section = '';
  const backups: RetentionEntry[] = [];
  for (const line of lines) {
    if (line === 'last run:') section = 'last';
    else if (line.startsWith('group ')) section = 'groups';
    else if (section === 'last') {
      const kv = /^([a-z_]+)=(.*)$/.exec(line);
      if (kv && kv[1] === 'deleted') deleted.push(kv[2]);
      else if (kv) lastRun[kv[1]] = kv[2];
    } else if (section === 'groups') {
      const b = /^(\S+) (keep|goes) (\S+) (.*)$/.exec(line);
      if (b) backups.push({ created: b[1], action: b[2] as RetentionEntry['action'], path: b[3], reason: b[4] });
    }
  }
  return {
    policy: policy ? { appendOnly: policy[1] === 'true', retention: policy[2], retentionMin: policy[3] } : null,
    lastRun: Object.keys(lastRun).length ? { ...lastRun, deleted } : null,
    backups,
  };
}

/** The last scrub, as btrbk-scrub's state file has it. */
export interface LastScrub {
  /** UTC, ISO 8601. */
  when: string;
  seconds: number;
  /** btrfs scrub start's exit status: 0 clean, 3 uncorrectable errors, else it could not run. */
  exit: number;
  status: ScrubStatus;
  /** The damaged blocks the kernel named. */
  kernel: ScrubKernelError[];
  /** `btrfs subvolume list` lines of the subvolumes (backups) the kernel named by id. */
  subvolumes: string[];
  /** `LOGICAL <logical-resolve output line>`: the files (in every backup) that hold a damaged block. */
  resolved: string[];
}

export interface ScrubReport {
  /** e.g. 'monthly'; null when the text is not a btrbk-scrub report. */
  schedule: string | null;
  /** The timer's next run as systemd prints it, or null. */
  next: string | null;
  /** Null when no scrub has finished yet. */
  last: LastScrub | null;
}

/** Parses `btrbk-diag scrub` (btrbk-scrub report): the schedule, the next run, and the last run's state file. */
export function parseScrubReport(text: string): ScrubReport {
  const lines = String(text).split('\n');
  const schedule = /^schedule: .*, (\S+) \(btrbk-scrub\.timer\)$/.exec(lines[0] ?? '')?.[1] ?? null;
  const nextLine = /^next: (.*)$/m.exec(text)?.[1]?.trim();
  const start = lines.indexOf('last run:');
  if (start < 0) return { schedule, next: nextLine && nextLine !== 'unknown' ? nextLine : null, last: null };
  const kv: Record<string, string> = {};
  const sections: Record<string, string[]> = {};
  let section = '';
  for (const line of lines.slice(start + 1)) {
    const head = /^--- (.*)$/.exec(line);
    if (head) section = head[1];
    else if (section) (sections[section] ??= []).push(line);
    else {
      const m = /^([a-z_]+)=(.*)$/.exec(line);
      if (m) kv[m[1]] = m[2];
    }
  }
  const body = (name: string) => (sections[name] ?? []).filter((l) => l.trim() !== '');
  return {
    schedule,
    next: nextLine && nextLine !== 'unknown' ? nextLine : null,
    last: {
      when: kv.when ?? '',
      seconds: Number(kv.seconds ?? NaN),
      exit: Number(kv.exit ?? NaN),
      status: parseScrubStatusRaw(body('btrfs scrub status -R').join('\n')),
      kernel: parseScrubKernelErrors(body('kernel').join('\n')),
      subvolumes: body('subvolumes'),
      resolved: body('logical-resolve'),
    },
  };
}

const DAY_MS = 24 * 3600 * 1000;

/** The check of the last scrub: fails on uncorrectable errors (with what is hit and what to do), warns when none ran
 * for twice the schedule's interval, or none ran and the timer is not scheduled, or it found errors it could not
 * classify, or it did not finish. A new host with its timer scheduled passes: its first scrub follows a backup. */
export function scrubCheck(report: ScrubReport, now: Date = new Date()): TestResult {
  const name = 'last scrub of the volume (read-only, monthly)';
  const last = report.last;
  if (!last) {
    const detail = `no scrub has finished on this host yet; the first runs within 90 minutes after a backup arrives (btrbk-scrub.timer checks hourly${report.next ? `, next at ${report.next}` : ''})`;
    // a new (or replaced) host whose timer is scheduled is as it should be; without a scheduled timer none will run
    if (report.next) return pass(name, detail);
    return pass(name, detail, {
      warn: true,
      cause:
        'no scrub has run and btrbk-scrub.timer has no next run: the volume is never read end to end, so bit rot in old backups would go unseen',
      next: 'wait for btrbk-scrub.timer, or start one now on the host as admin: sudo /usr/local/sbin/btrbk-scrub run --now (read-only, idle I/O priority; the timer scrubs monthly, in the 90 minutes after a backup arrives)',
    });
  }
  const c = last.status.counters;
  const errors = SCRUB_ERROR_COUNTERS.filter((k) => k !== 'corrected_errors' && (c[k] ?? 0) > 0).map(
    (k) => `${k.replace(/_errors$/, '')}=${c[k]}`,
  );
  const ageDays = (now.getTime() - Date.parse(last.when)) / DAY_MS;
  const detail = `${last.when}: read ${humanBytes(last.status.bytesScrubbed)} in ${last.seconds} s, ${errors.length ? errors.join(', ') : 'no errors'}`;
  const uncorrectable = c.uncorrectable_errors ?? 0;
  if (uncorrectable > 0 || last.exit === 3) {
    const backups = last.subvolumes.map((l) => /path (\S+)$/.exec(l)?.[1] ?? l);
    const files = [...new Set(last.kernel.filter((k) => k.path !== null).map((k) => `root ${k.root}: ${k.path}`))];
    const hit =
      backups.length || files.length || last.resolved.length
        ? `damaged blocks are in: ${[...backups.map((b) => `subvolume ${b}`), ...files.slice(0, 5), ...last.resolved.slice(0, 5)].join('; ')}`
        : `the kernel log did not name the files: on the host as admin, for each address in \`journalctl -k | grep 'error at logical'\`, run \`sudo btrfs inspect-internal logical-resolve LOGICAL ${MOUNT_POINT}\``;
    return fail(
      name,
      `the last scrub found ${uncorrectable} uncorrectable error(s) (${errors.join(', ') || `exit ${last.exit}`}): blocks of the volume no longer match their checksums and there is no good copy on it. ${hit}`,
      'the backups holding those blocks cannot be restored whole. (1) Take a new full backup of what they held (the laptop still has it). (2) Restore the volume from an EBS snapshot taken before the damage: docs/RESTORE.md, "Restoring the volume from a snapshot" (restore_snapshot_id in terraform.tfvars). (3) Read `btrbk-diag scrub` for every damaged address and file',
      detail,
    );
  }
  if (last.status.status !== 'finished' || last.exit !== 0) {
    return pass(name, detail, {
      warn: true,
      cause: `the last scrub did not finish (status ${last.status.status ?? 'unknown'}, exit ${last.exit})`,
      next: 'on the host as admin: journalctl -u btrbk-scrub; it runs again after the next backup (or now: sudo /usr/local/sbin/btrbk-scrub run --now)',
    });
  }
  if (errors.length) {
    return pass(name, detail, {
      warn: true,
      cause: `the last scrub counted errors it could repair from a second copy (${errors.join(', ')})`,
      next: 'watch btrfs device stats; on the host as admin: journalctl -k | grep BTRFS',
    });
  }
  if (!(ageDays <= 2 * SCRUB_INTERVAL_DAYS)) {
    return pass(name, detail, {
      warn: true,
      cause: `the last scrub is ${Number.isFinite(ageDays) ? Math.floor(ageDays) : '?'} days old (it runs ${SCRUB_SCHEDULE})`,
      next: 'on the host as admin: systemctl status btrbk-scrub.timer btrbk-scrub.service; journalctl -u btrbk-scrub',
    });
  }
  return pass(name, detail);
}

const pct = (x: number) => `${x.toFixed(1)} %`;

/** Usage above this percentage is a warning; at 100 % backups fail. */
export const USAGE_WARN_PERCENT = 90;

export async function checkVolume(
  conn: Connection,
  deps: CheckDeps = {},
  session: Session = sshSession(conn, deps),
): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const p = sshParams(conn);
  const s = await session.open();
  if (!s.ok) {
    results.push(
      fail(
        'reach the volume through the SSH gate',
        `SSH failed: ${s.error.what}${s.error.likelyCause ? ` (${s.error.likelyCause})` : ''}`,
        'run `npx zx scripts/troubleshoot.mjs check-ssh` first',
      ),
    );
    return results;
  }
  const exec = async (command: string): Promise<ExecResult> => {
    try {
      return await session.exec(command);
    } catch (err) {
      return { code: -1, stdout: '', stderr: messageOf(err) };
    }
  };

  const mountOut = await exec(CHECK_COMMANDS.mount);
  const entry = mountOut.code === 0 ? parseMountEntry(mountOut.stdout) : null;
  // the gate's mount diagnostic exits 1 with "nothing is mounted at ..." when findmnt finds nothing
  const saysUnmounted = mountOut.code === 1 && /nothing is mounted/i.test(mountOut.stderr);
  const notMountedNext = `the volume is detached or its mount failed at boot (fstab has nofail, so the host boots without it): run check-aws for the attachment and check-logs for the boot log; on the host as admin: sudo mount ${MOUNT_POINT}`;
  if (mountOut.code !== 0 && !saysUnmounted) {
    results.push(
      fail(
        `mounted at ${MOUNT_POINT}`,
        `the mount diagnostic failed: ${gateRefusalHint(mountOut)}`,
        'run check-ssh; the gate may be older than these tools',
      ),
    );
  } else if (!entry) {
    results.push(
      fail(
        `mounted at ${MOUNT_POINT}`,
        `nothing is mounted at ${MOUNT_POINT}`,
        notMountedNext,
        (mountOut.stdout || mountOut.stderr).trim().split('\n')[0] ?? '',
      ),
    );
  } else {
    results.push(pass(`mounted at ${MOUNT_POINT}`, `${entry.source}`));
    results.push(
      entry.fstype === 'btrfs'
        ? pass(
            'filesystem is btrfs',
            entry.options
              .split(',')
              .filter((o) => /^(ro|rw|compress|subvol)/.test(o))
              .join(','),
          )
        : fail(
            'filesystem is btrfs',
            `${MOUNT_POINT} is ${entry.fstype}, not btrfs`,
            'something else is mounted there: check the fstab entry and the boot log (check-logs); never reformat a volume holding backups',
          ),
    );
    if (/(^|,)ro(,|$)/.test(entry.options)) {
      results.push(
        fail(
          'mounted read-write',
          `${MOUNT_POINT} is mounted read-only: btrfs does this after errors`,
          'look at device stats below and the kernel log on the host; a scrub (btrfs scrub start) shows damage',
        ),
      );
    }
  }

  if (entry) {
    const usageOut = await exec(CHECK_COMMANDS.usage);
    const u = usageOut.code === 0 ? parseUsage(usageOut.stdout) : null;
    const name = `usage below ${USAGE_WARN_PERCENT} %`;
    if (!u) {
      results.push(
        fail(
          name,
          usageOut.code === 0
            ? 'cannot read the usage output'
            : `the usage diagnostic failed: ${gateRefusalHint(usageOut)}`,
          'run check-ssh',
          usageOut.stdout.trim().split('\n')[0] ?? '',
        ),
      );
    } else {
      const detail = `${pct(u.percent)} full: ${humanBytes(u.used)} used, ${humanBytes(u.free)} free (device ${humanBytes(u.size)})`;
      if (u.percent >= 99) {
        results.push(
          fail(
            name,
            `the volume is full (${pct(u.percent)}): the next backup will fail`,
            `free space: a tighter retention in terraform.tfvars (append-only host; it prunes after the next backup) or old backups deleted as admin, or grow the volume: raise ebs_volume_size in terraform.tfvars and apply, then \`sudo btrfs filesystem resize max ${MOUNT_POINT}\` as admin`,
            detail,
          ),
        );
      } else if (u.percent > USAGE_WARN_PERCENT) {
        results.push(
          pass(name, detail, {
            warn: true,
            cause: `the volume is ${pct(u.percent)} full`,
            next: 'keep fewer backups (retention in terraform.tfvars; `btrbk-diag retention` shows what is kept) or grow the volume (ebs_volume_size in terraform.tfvars, apply, then btrfs filesystem resize max)',
          }),
        );
      } else {
        results.push(pass(name, detail));
      }
    }
  }

  const rootOut = await exec(CHECK_COMMANDS.backupRoot(p.backupRoot));
  results.push(
    rootOut.code === 0 && rootOut.stdout.trim()
      ? pass(`backup root ${p.backupRoot} present`, rootOut.stdout.trim())
      : fail(
          `backup root ${p.backupRoot} present`,
          REJECTED.test(rootOut.stderr)
            ? `the gate refused the lookup: ${rootOut.stderr.trim()}`
            : `${p.backupRoot} does not exist${entry ? '' : ' (the volume is not mounted)'}`,
          entry
            ? 'the boot script creates it; read check-logs, or re-run the boot script by re-provisioning'
            : notMountedNext,
        ),
  );

  if (entry && rootOut.code === 0 && rootOut.stdout.trim()) {
    // a subvolume without a received UUID is not a backup (btrbk-receive never leaves one below the root)
    const listOut = await exec(CHECK_COMMANDS.subvolumeList(p.backupRoot));
    const name = 'no half-received backups';
    if (listOut.code !== 0) {
      results.push(fail(name, `cannot list the backups: ${gateRefusalHint(listOut)}`, 'run check-ssh'));
    } else {
      const below = `${p.backupRoot.replace(/\/+$/, '')}/`;
      const backups = parseSubvolumeListR(listOut.stdout, MOUNT_POINT).filter((b) => b.path.startsWith(below));
      const incomplete = backups.filter((b) => !b.complete);
      const detail = `${backups.length} subvolume(s) below ${p.backupRoot}`;
      results.push(
        incomplete.length
          ? pass(name, detail, {
              warn: true,
              cause: `${incomplete.length} without a received UUID (${incomplete
                .slice(0, 3)
                .map((b) => b.path)
                .join(
                  ', ',
                )}${incomplete.length > 3 ? ', ...' : ''}): they are not backups (this host receives in a staging directory and never leaves one here: an older host version or a hand-made subvolume)`,
              next: "the host's hourly prune removes them; or as admin: sudo btrfs subvolume delete PATH. Never restore from them (docs/RESTORE.md)",
            })
          : pass(name, `${detail}, all complete`),
      );
    }
  }

  if (entry) {
    const statsOut = await exec(CHECK_COMMANDS.deviceStats);
    const stats = statsOut.code === 0 || statsOut.code === 64 ? parseDeviceStats(statsOut.stdout) : [];
    const name = 'btrfs device stats all zero';
    if (!stats.length) {
      results.push(fail(name, `cannot read device stats: ${gateRefusalHint(statsOut)}`, 'run check-ssh'));
    } else {
      const bad = stats.filter((x) => x.value !== 0);
      results.push(
        bad.length
          ? fail(
              name,
              `I/O or checksum errors recorded: ${bad.map((x) => `${x.counter}=${x.value}`).join(', ')}`,
              `the volume has had errors: run a scrub on the host (sudo btrfs scrub start -B ${MOUNT_POINT}) as admin, verify your latest backup with a restore, and consider replacing the volume from a snapshot`,
              `${stats.length} counters on ${[...new Set(stats.map((x) => x.device))].join(', ')}`,
            )
          : pass(name, `${stats.length} counters on ${[...new Set(stats.map((x) => x.device))].join(', ')}`),
      );
    }
  }

  if (entry) {
    // append-only hosts prune by their own policy and clock: what it is, when it last ran, what goes next
    const retOut = await exec(CHECK_COMMANDS.retention);
    const name = "the host's retention";
    const report = retOut.code === 0 ? parseRetentionReport(retOut.stdout) : null;
    if (!report?.policy) {
      results.push(
        REJECTED.test(retOut.stderr)
          ? pass(name, 'unknown to this host', {
              warn: true,
              cause: 'the host runs a gate from before append-only backups (no retention diagnostic)',
              next: 're-deploy (setup) to get the append-only host and its pruning',
            })
          : fail(
              name,
              `cannot read the retention report: ${gateRefusalHint(retOut)}`,
              'on the host as admin: sudo btrbk-prune report; journalctl -u btrbk-prune',
            ),
      );
    } else {
      const p = report.policy;
      const goes = report.backups.filter((b) => b.action === 'goes');
      const last = report.lastRun;
      const detail = [
        p.appendOnly
          ? `append-only, keeps ${p.retention} (everything younger than ${p.retentionMin})`
          : 'not append-only: btrbk on the client prunes',
        last ? `last prune ${last.when}: ${last.result}, ${last.deleted_count ?? 0} deleted` : 'no prune yet',
        `${report.backups.length} backup(s), ${goes.length} to go at the next prune`,
      ].join('; ');
      if (last?.result === 'failed') {
        results.push(
          fail(
            name,
            `the last prune failed: ${last.error ?? 'see the journal'}`,
            'on the host as admin: journalctl -u btrbk-prune; nothing is deleted until it runs clean again',
            detail,
          ),
        );
      } else {
        results.push(pass(name, detail));
      }
    }
  }

  if (entry) {
    // the host's monthly read-only scrub: every block of the volume read and checked against its checksum
    const scrubOut = await exec(CHECK_COMMANDS.scrub);
    const report = scrubOut.code === 0 ? parseScrubReport(scrubOut.stdout) : null;
    const name = 'last scrub of the volume (read-only, monthly)';
    if (!report?.schedule) {
      results.push(
        REJECTED.test(scrubOut.stderr)
          ? pass(name, 'unknown to this host', {
              warn: true,
              cause: 'the host runs a gate from before the scheduled scrub (no scrub diagnostic)',
              next: 're-deploy (setup) to get the monthly read-only scrub',
            })
          : fail(
              name,
              `cannot read the scrub report: ${gateRefusalHint(scrubOut)}`,
              'on the host as admin: /usr/local/sbin/btrbk-scrub report; journalctl -u btrbk-scrub',
            ),
      );
    } else {
      results.push(scrubCheck(report));
    }
  }
  return results;
}
