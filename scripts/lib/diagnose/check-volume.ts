// check-volume: the backup volume through the gate's read-only diagnostics (mount, usage, backup root,
// half-received backups, device stats, the host's retention), and the reader of the retention report.
import {
  parseDeviceStats,
  parseMountEntry,
  parseScrubKernelErrors,
  parseScrubStatusRaw,
  parseSubvolumeList,
  parseSubvolumeListR,
  parseUsage,
  SCRUB_ERROR_COUNTERS,
  type ScrubKernelError,
  type ScrubStatus,
} from '../core/btrfs-output.js';
import path from 'node:path';
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

/** A device in the host's registry, as the report's last lines name it: current, or revoked and frozen (nothing of it
 * is pruned) or thawed (the admin released its backups to the policy). */
export interface RegistryDevice {
  name: string;
  state: 'current' | 'frozen' | 'thawed';
}

export interface RetentionReport {
  /** Null when the report has no policy line (not a btrbk-prune report). */
  policy: RetentionPolicy | null;
  /** Null when no prune has run yet. */
  lastRun: LastPrune | null;
  backups: RetentionEntry[];
  /** The host's devices (none on a host without devices, or one from before the report named them). */
  devices: RegistryDevice[];
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
  const devices: RegistryDevice[] = [];
  for (const line of lines) {
    const device = /^device (\S+) (current|frozen|thawed)$/.exec(line);
    if (device) devices.push({ name: device[1], state: device[2] as RegistryDevice['state'] });
    else if (line === 'last run:') section = 'last';
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
    devices,
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

// ------------------------------------------------------------------------------------------------------ devices

/** The round trip's and the bench's scratch directory (below the backup root, or a device's root): not backups. */
const SELFTEST = 'selftest';

/** Which key a session is, from the gate's `btrbk-diag version` (` device=NAME` for a device's key); null: the legacy
 * key (or a gate from before devices, which has no other). */
export function gateDevice(versionOut: string): string | null {
  return / device=([a-z0-9][a-z0-9._-]*)/.exec(versionOut)?.[1] ?? null;
}

/** A device, or a directory the legacy key backs up into, with its newest backup. */
export interface DeviceFreshness {
  name: string;
  /** The registry's state; 'legacy': a directory below the backup root that is no device's (a machine of the legacy
   * key's), or '.' for backups directly in the backup root. */
  state: RegistryDevice['state'] | 'legacy';
  /** When its newest complete backup arrived on the host (UTC, ISO 8601); null when it has none. */
  newest: string | null;
  /** Its complete backups. */
  backups: number;
}

/** The retention report's complete backups: not half-received, not a subvolume without a received UUID. */
const isComplete = (b: RetentionEntry) => !/^(half-received|not a received backup)/.test(b.reason);

/**
 * The admin's view of the devices (the legacy key's retention report): every device of the registry, revoked ones
 * included, and every directory of the legacy key's, each with its newest complete backup and how many there are.
 * The tools' scratch directories (selftest) are left out. Devices first (by name), then the legacy key's.
 */
export function devicesFromReport(report: RetentionReport, backupRoot: string): DeviceFreshness[] {
  const root = `${backupRoot.replace(/\/+$/, '')}/`;
  const byName = new Map<string, DeviceFreshness>();
  for (const d of report.devices) byName.set(d.name, { name: d.name, state: d.state, newest: null, backups: 0 });
  for (const b of report.backups) {
    if (!b.path.startsWith(root) || !isComplete(b)) continue;
    const parts = b.path.slice(root.length).split('/');
    const name = parts.length > 1 ? parts[0] : '.';
    const device = byName.get(name);
    if (name === SELFTEST || (device && device.state !== 'legacy' && parts[1] === SELFTEST)) continue;
    const entry = device ?? { name, state: 'legacy' as const, newest: null, backups: 0 };
    byName.set(name, entry);
    entry.backups += 1;
    if (!entry.newest || b.created > entry.newest) entry.newest = b.created;
  }
  const rank = (d: DeviceFreshness) => (d.state === 'legacy' ? 1 : 0);
  return [...byName.values()].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
}

/** "2 h ago", "3 days ago": how long before `now` an ISO time was. */
export function ago(iso: string, now: Date = new Date()): string {
  const h = (now.getTime() - Date.parse(iso)) / 3_600_000;
  if (!Number.isFinite(h)) return 'at an unknown time';
  if (h < 1) return 'less than 1 h ago';
  if (h < 48) return `${Math.floor(h)} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}

const STATE_TEXT: Readonly<Record<DeviceFreshness['state'], string>> = {
  current: 'device',
  frozen: 'device, revoked, frozen (nothing of it is pruned)',
  thawed: 'device, revoked, thawed (pruned by the policy)',
  legacy: "the legacy key's directory",
};

/** One line per device: its name, what it is, its newest backup and the count. */
export function formatFreshness(list: readonly DeviceFreshness[], now: Date = new Date()): string[] {
  const width = Math.max(0, ...list.map((d) => d.name.length));
  return list.map(
    (d) =>
      `${d.name.padEnd(width)}  ${STATE_TEXT[d.state]}: ${d.newest ? `newest backup ${d.newest} (${ago(d.newest, now)}), ${d.backups} backup(s)` : 'no backup yet'}`,
  );
}

/** `btrfs subvolume show`'s "Creation time: 2026-12-05 19:40:12 +0000" as UTC ISO 8601 (null: none). */
export function showCreated(text: string): string | null {
  const m = /^\s*Creation time:\s*(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d) ([+-]\d\d)(\d\d)\s*$/m.exec(text);
  if (!m) return null;
  const t = Date.parse(`${m[1]}T${m[2]}${m[3]}:${m[4]}`);
  return Number.isFinite(t) ? new Date(t).toISOString().replace(/\.\d+Z$/, 'Z') : null;
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

  // which key this is: a device's key sees its own directory only, and none of the whole-volume diagnostics
  const versionOut = await exec(CHECK_COMMANDS.version);
  const device = versionOut.code === 0 ? gateDevice(versionOut.stdout) : null;
  const key = whoseKey(conn, device, p.backupRoot);
  if (versionOut.code === 0) results.push(key.result);
  const backupRoot = key.root;
  // the legacy key's retention report, read once: the retention check, the registry's devices and their backups
  let retentionOut: Promise<ExecResult> | null = null;
  const retention = () => (retentionOut ??= exec(CHECK_COMMANDS.retention));

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

  if (entry && !device) {
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

  const rootOut = await exec(CHECK_COMMANDS.backupRoot(backupRoot));
  results.push(
    rootOut.code === 0 && rootOut.stdout.trim()
      ? pass(`backup root ${backupRoot} present`, rootOut.stdout.trim())
      : fail(
          `backup root ${backupRoot} present`,
          REJECTED.test(rootOut.stderr)
            ? `the gate refused the lookup: ${rootOut.stderr.trim()}`
            : `${backupRoot} does not exist${entry ? '' : ' (the volume is not mounted)'}`,
          entry
            ? 'the boot script creates it; read check-logs, or re-run the boot script by re-provisioning'
            : notMountedNext,
        ),
  );

  let listed: string | null = null;
  if (entry && rootOut.code === 0 && rootOut.stdout.trim()) {
    // a subvolume without a received UUID is not a backup (btrbk-receive never leaves one below the root), except a
    // device's own directory (a subvolume the host made, holding the device's backups)
    const listOut = await exec(CHECK_COMMANDS.subvolumeList(backupRoot));
    const name = 'no half-received backups';
    if (listOut.code !== 0) {
      results.push(fail(name, `cannot list the backups: ${gateRefusalHint(listOut)}`, 'run check-ssh'));
    } else {
      listed = listOut.stdout;
      const below = `${backupRoot.replace(/\/+$/, '')}/`;
      const registry = device ? [] : await registryDevices(retention);
      const all = parseSubvolumeListR(listOut.stdout, MOUNT_POINT).filter((b) => b.path.startsWith(below));
      // a device's directory: in the registry, or (a host whose report does not name its devices) a subvolume
      // holding backups, which a half-received one never does
      const registered = new Set(registry.map((d) => `${below}${d.name}`));
      const isDeviceDir = (b: (typeof all)[number]) =>
        !b.complete && (registered.has(b.path) || all.some((c) => c.path.startsWith(`${b.path}/`)));
      const deviceDirs = all.filter(isDeviceDir).length;
      const backups = all.filter((b) => !isDeviceDir(b));
      const incomplete = backups.filter((b) => !b.complete);
      const detail = `${backups.length} subvolume(s) below ${backupRoot}${deviceDirs ? ` (and ${deviceDirs} device director${deviceDirs === 1 ? 'y' : 'ies'})` : ''}`;
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

  let report: RetentionReport | null = null;
  if (entry && !device) {
    // append-only hosts prune by their own policy and clock: what it is, when it last ran, what goes next
    const retOut = await retention();
    const name = "the host's retention";
    report = retOut.code === 0 ? parseRetentionReport(retOut.stdout) : null;
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

  if (entry && !device) {
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

  // the devices and their newest backup: the admin's view from the retention report, a device's own from its listing
  if (entry && !device && report?.policy) results.push(devicesResult(devicesFromReport(report, backupRoot)));
  if (entry && device && listed !== null) results.push(await ownDeviceResult(device, backupRoot, listed, exec));
  if (entry && device) {
    results.push(
      pass("the volume's usage, retention and scrub", `not shown to device ${device}'s key`, {
        skipped: true,
        output: `the gate shows them only to the legacy key: they tell of the whole volume and every device. See them with check-volume and the legacy key's connection file, or on the host as the admin: sudo btrfs filesystem usage ${MOUNT_POINT}; sudo btrbk-prune report; /usr/local/sbin/btrbk-scrub report`,
      }),
    );
  }
  return results;
}

/** The registry's devices, from the legacy key's retention report (none when it cannot be read). */
async function registryDevices(retention: () => Promise<ExecResult>): Promise<RegistryDevice[]> {
  const out = await retention();
  return out.code === 0 ? parseRetentionReport(out.stdout).devices : [];
}

/** Which key the session is, and the root it sees: the connection's, or (a device's key in a file of the single
 * key's form) the device's own directory below it. A file naming another device than the key's is a failure. */
export function whoseKey(
  conn: Pick<Connection, 'device' | 'keyFile'>,
  device: string | null,
  backupRoot: string,
): { root: string; result: TestResult } {
  const name = 'whose key this is';
  if (!device) {
    const result = conn.device
      ? pass(name, `the legacy key (${conn.keyFile})`, {
          warn: true,
          cause: `the connection file names device ${conn.device}, and its key is the legacy key, which reaches every device's backups`,
          next: `give device ${conn.device} its own key (README, "A key per device in the stack")`,
        })
      : pass(name, `the legacy (single) key: it sees the whole backup root, every device's backups`);
    return { root: backupRoot, result };
  }
  const root = backupRoot.endsWith(`/${device}`) ? backupRoot : `${backupRoot.replace(/\/+$/, '')}/${device}`;
  const limits = `device ${device}'s key: it sees only ${root} (the volume's usage, retention and scrub, and the other devices, only the legacy key or the admin see)`;
  if (conn.device && conn.device !== device) {
    return {
      root,
      result: fail(
        name,
        `the key ${conn.keyFile} is device ${device}'s key, not device ${conn.device}'s: the target refuses it for ${conn.device}'s backups`,
        `use device ${conn.device}'s own connection file and key (--env connection-${conn.device}.env); what follows is device ${device}'s`,
        limits,
      ),
    };
  }
  return { root, result: pass(name, limits) };
}

function devicesResult(list: DeviceFreshness[]): TestResult {
  const devices = list.filter((d) => d.state !== 'legacy');
  const frozen = devices.filter((d) => d.state === 'frozen').length;
  const legacy = list.length - devices.length;
  const parts = [
    devices.length ? `${devices.length} device(s)${frozen ? `, ${frozen} revoked and frozen` : ''}` : 'no devices',
    legacy ? `${legacy} director${legacy === 1 ? 'y' : 'ies'} of the legacy key's` : '',
  ].filter(Boolean);
  return pass(
    'devices and their newest backup',
    parts.join('; '),
    list.length ? { output: formatFreshness(list).join('\n') } : {},
  );
}

/** A device's own newest backup: the newest complete one its listing shows (by creation generation), and when it
 * arrived (`subvolume show`). */
async function ownDeviceResult(
  device: string,
  root: string,
  listed: string,
  exec: (command: string) => Promise<ExecResult>,
): Promise<TestResult> {
  const below = `${root.replace(/\/+$/, '')}/`;
  const backups = parseSubvolumeList(listed)
    .map((b) => ({ ...b, abs: path.posix.join(MOUNT_POINT, b.path) }))
    .filter(
      (b) =>
        b.abs.startsWith(below) &&
        !b.abs.startsWith(`${below}${SELFTEST}/`) &&
        b.receivedUuid &&
        b.receivedUuid !== '-',
    );
  const newest = backups.reduce<(typeof backups)[number] | null>(
    (a, b) => (!a || (b.cgen ?? b.id) > (a.cgen ?? a.id) ? b : a),
    null,
  );
  let created: string | null = null;
  if (newest) {
    const show = await exec(CHECK_COMMANDS.subvolumeShow(newest.abs));
    created = show.code === 0 ? showCreated(show.stdout) : null;
  }
  const entry: DeviceFreshness = { name: device, state: 'current', newest: created, backups: backups.length };
  const line =
    newest && !created
      ? `${device}  device: newest backup ${newest.abs} (its time unknown), ${backups.length} backup(s)`
      : formatFreshness([entry])[0];
  return pass(
    'devices and their newest backup',
    `device ${device} (this key's own; the legacy key lists every device)`,
    { output: line },
  );
}
