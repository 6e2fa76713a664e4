// The systemd units install writes: a oneshot service that runs the backup (bounded, after the network is really
// online: btrbk's own timer fires too early, its issue #486), the timer that starts it, and a pre-sleep service that
// takes the local snapshots only, so a suspend is never held up by a transfer (the next timer run sends them).
import { CONTROL_DIR, FILES, SSH_ALIAS, UNITS } from './layout.js';

export interface UnitOptions {
  /** The btrbk program (default /usr/bin/btrbk). */
  btrbk?: string;
  /** The timer's OnCalendar (default hourly). */
  interval?: string;
  /** The timer's RandomizedDelaySec in seconds (default: randomDelaySeconds of a named interval, else none). */
  randomDelay?: number;
  /** The longest a run may take before systemd stops it (default 6h: a first full upload is long). */
  timeout?: string;
  /** A desktop notification when a run fails (OnFailure= the notify unit); default off. */
  notify?: boolean;
  /**
   * The gate line that creates this machine's target directory (btrbk does not): run before each backup, so an
   * install made while the target was unreachable still works later. Its connection is reused by btrbk.
   */
  targetMkdir?: string;
}

/** The schedules install accepts by name (the seconds between two runs); anything else must be a systemd calendar
 * expression. */
const NAMED_INTERVALS: Readonly<Record<string, number>> = { hourly: 3600, daily: 86400, weekly: 7 * 86400 };
const RANDOM_DELAY_MAX_S = 3600;

/**
 * The timer's random delay (RandomizedDelaySec, so many machines do not all start on the hour): a sixth of the time
 * between two runs, at most 1 h: hourly 10 min, daily and weekly 1 h, every 15 min 2.5 min. `gapSeconds` for an
 * OnCalendar expression comes from systemd-analyze (calendarGap); null (unknown): no delay.
 */
export function randomDelaySeconds(interval: string, gapSeconds: number | null = null): number {
  const gap = NAMED_INTERVALS[interval] ?? gapSeconds;
  return gap === null || !(gap > 0) ? 0 : Math.min(RANDOM_DELAY_MAX_S, Math.floor(gap / 6));
}

export const isNamedInterval = (interval: string): boolean => interval in NAMED_INTERVALS;

/** Seconds as a systemd time span ("10min", "1h", "150s"). */
export function timeSpan(seconds: number): string {
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}min`;
  return `${seconds}s`;
}

/** The seconds between the first two elapses in `systemd-analyze calendar --iterations=2` output (systemd 252 says
 * "Iter. #2", 257 "Iteration #2"); null if absent. */
export function parseCalendarGap(text: string): number | null {
  const at = [
    ...text.matchAll(/(?:Next elapse|Iter(?:\.|ation) #2): \w+ (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) UTC/g),
  ].map((m) => Date.parse(`${m[1].replace(' ', 'T')}Z`));
  return at.length === 2 && at[1] > at[0] ? (at[1] - at[0]) / 1000 : null;
}

/** Checks a timer interval: a name above or an OnCalendar expression of plain characters. */
export function checkInterval(interval: string): string | null {
  if (NAMED_INTERVALS[interval]) return null;
  if (/^[A-Za-z0-9*:/,. -]{1,60}$/.test(interval)) return null;
  return `--interval ${JSON.stringify(interval)}: use hourly, daily, weekly or a systemd OnCalendar expression (systemd.time(7))`;
}

export function renderServiceUnit({
  btrbk = '/usr/bin/btrbk',
  timeout = '6h',
  notify = false,
  targetMkdir,
}: UnitOptions = {}): string {
  const mkdir = targetMkdir
    ? `# the target directory (mkdir -p through the gate; btrbk does not create it)\nExecStartPre=/usr/bin/ssh -i ${FILES.identity} ${SSH_ALIAS} "${targetMkdir}"\n`
    : '';
  return `# Written by npx zx scripts/backup.mjs install (btrbk-aws-target). Re-run install to change it.
[Unit]
Description=btrbk backup to the off-site target (${FILES.btrbkConf})
Documentation=man:btrbk(1)
Wants=network-online.target
After=network-online.target
ConditionPathExists=${FILES.btrbkConf}
${notify ? `OnFailure=${UNITS.notify}\n` : ''}
[Service]
Type=oneshot
${mkdir}ExecStart=${btrbk} -c ${FILES.btrbkConf} run
# a run that hangs (a dead link ssh has not noticed) is stopped; the next timer run sends what is missing
TimeoutStartSec=${timeout}
# ssh's connection-reuse sockets (ControlPath in ${FILES.sshConfig})
RuntimeDirectory=${CONTROL_DIR.replace('/run/', '')}
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
Nice=10
IOSchedulingClass=idle
PrivateTmp=yes
`;
}

export function renderTimerUnit({
  interval = 'hourly',
  randomDelay = randomDelaySeconds(interval),
}: UnitOptions = {}): string {
  return `# Written by npx zx scripts/backup.mjs install (btrbk-aws-target). Re-run install to change it.
[Unit]
Description=${interval} btrbk backup to the off-site target

[Timer]
OnCalendar=${interval}
# a run missed while the machine was off or asleep starts soon after it wakes
Persistent=true
# each run starts after a random delay of up to a sixth of the interval (at most 1 h), so machines spread out
RandomizedDelaySec=${timeSpan(randomDelay)}

[Install]
WantedBy=timers.target
`;
}

export function renderPresleepUnit({ btrbk = '/usr/bin/btrbk' }: UnitOptions = {}): string {
  return `# Written by npx zx scripts/backup.mjs install (btrbk-aws-target). Re-run install to change it.
[Unit]
Description=btrbk snapshots before sleep (local only, no network; ${UNITS.timer} sends them later)
Before=sleep.target
ConditionPathExists=${FILES.btrbkConf}

[Service]
Type=oneshot
# snapshot only, deleting nothing (--preserve): no connection to the target. btrbk's lockfile makes it fail at
# once instead of waiting when a backup is running; a suspend is never held up
ExecStart=${btrbk} -c ${FILES.btrbkConf} --preserve snapshot
TimeoutStartSec=60

[Install]
WantedBy=sleep.target
`;
}

/** install --notify: the unit a failed run starts. */
export function renderNotifyUnit(): string {
  return `# Written by npx zx scripts/backup.mjs install --notify (btrbk-aws-target). Re-run install to change it.
[Unit]
Description=tell the desktop users that the scheduled btrbk backup failed

[Service]
Type=oneshot
ExecStart=${FILES.notifyScript}
TimeoutStartSec=30
`;
}

/**
 * The notify unit's script: a critical notify-send in each graphical session (X11 or Wayland), as its user, on
 * its session bus. Does nothing where notify-send is not installed or nobody is logged in.
 */
export function renderNotifyScript(): string {
  return `#!/bin/sh
# Written by npx zx scripts/backup.mjs install --notify (btrbk-aws-target): a desktop notification per
# graphical session when ${UNITS.service} fails. Never fails itself.
set -u
command -v notify-send >/dev/null 2>&1 || exit 0
loginctl list-sessions --no-legend 2>/dev/null | while read -r id uid user _rest; do
  type=$(loginctl show-session "$id" --property=Type --value 2>/dev/null) || continue
  case $type in x11 | wayland) ;; *) continue ;; esac
  bus=/run/user/$uid/bus
  [ -S "$bus" ] || continue
  runuser -u "$user" -- env DBUS_SESSION_BUS_ADDRESS="unix:path=$bus" notify-send --urgency=critical \\
    --app-name=btrbk-aws "Off-site backup failed" \\
    "The scheduled backup failed. See: sudo npx zx scripts/backup.mjs status" >/dev/null 2>&1 || true
done
exit 0
`;
}
