// Where `backup.mjs install` puts things on the laptop (or server), and the names btrbk gives its snapshots and
// backups there. One table: install writes these paths, uninstall removes them, status/list/restore read them.
import path from 'node:path';

/** The ssh Host alias the installed btrbk config names; its settings are in FILES.sshConfig. */
export const SSH_ALIAS = 'btrbk-aws-target';

/** The systemd units install writes. */
export const UNITS = Object.freeze({
  service: 'btrbk-aws.service',
  timer: 'btrbk-aws.timer',
  presleep: 'btrbk-aws-presleep.service',
  /** install --notify: started by the service's OnFailure=. */
  notify: 'btrbk-aws-notify.service',
});

/** The files install writes (absolute paths on the machine). Never /etc/btrbk/btrbk.conf: that one is the person's. */
export const FILES = Object.freeze({
  btrbkConf: '/etc/btrbk/btrbk-aws.conf',
  dir: '/etc/btrbk/btrbk-aws',
  sshConfig: '/etc/btrbk/btrbk-aws/ssh_config',
  knownHosts: '/etc/btrbk/btrbk-aws/known_hosts',
  identity: '/etc/btrbk/btrbk-aws/id_backup',
  /** The connection file with the installed key and known_hosts: `troubleshoot.mjs check-ssh --env` this file. */
  connection: '/etc/btrbk/btrbk-aws/connection.env',
  /** What install made and with which settings: uninstall, status, list and restore read it. */
  manifest: '/etc/btrbk/btrbk-aws/install.json',
  /** When `backup.mjs verify` last ran and how it ended (status shows it); written by verify, removed by uninstall. */
  lastVerify: '/etc/btrbk/btrbk-aws/last-verify.json',
  /** The one line that makes every ssh on the machine read FILES.sshConfig (for the alias only). */
  sshInclude: '/etc/ssh/ssh_config.d/btrbk-aws.conf',
  service: `/etc/systemd/system/${UNITS.service}`,
  timer: `/etc/systemd/system/${UNITS.timer}`,
  presleep: `/etc/systemd/system/${UNITS.presleep}`,
  notify: `/etc/systemd/system/${UNITS.notify}`,
  notifyScript: '/etc/btrbk/btrbk-aws/notify-failure',
});

/** ssh's connection-reuse sockets (mode 0700, root): the service's RuntimeDirectory, made by `run` too. */
export const CONTROL_DIR = '/run/btrbk-aws';
export const CONTROL_PATH = `${CONTROL_DIR}/ssh-%C`;
/** btrbk's lockfile: the pre-sleep snapshot, the timer's run and a run by hand never overlap. */
export const LOCKFILE = '/run/lock/btrbk-aws.lock';
/** The name of the snapshot directory install creates when --snapshot-dir is not given. */
export const SNAPSHOT_DIR_NAME = '.btrbk-aws-snapshots';

/** `p` (absolute) below `root` (tests install into a temporary directory; on a machine root is /). */
export const under = (root: string, p: string): string => (root === '/' ? p : path.join(root, p));

/**
 * A snapshot's or backup's name: BASENAME.TIMESTAMP[_N], TIMESTAMP as btrbk writes it (long: 20261130T0418,
 * long-iso: 20261130T041800+0000). Returns the time it names (long: read as local time), or null.
 */
export function parseSnapshotName(name: string, basename: string): { time: Date; timestamp: string } | null {
  if (!name.startsWith(`${basename}.`)) return null;
  const ts = name.slice(basename.length + 1);
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?([+-]\d{4})?(?:_\d+)?$/.exec(ts);
  if (!m) return null;
  const [, y, mo, d, h, mi, s = '00', off] = m;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}${off ? `${off.slice(0, 3)}:${off.slice(3)}` : ''}`;
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? null : { time, timestamp: ts };
}

/** The target directory of one machine's backups: the backup root/MACHINE (several machines share a target). */
export function targetDirFor(backupRoot: string, machine: string): string {
  return path.posix.join(backupRoot.replace(/\/+$/, ''), machine);
}

/** A machine name usable as a path component on the target (the gate's characters). */
export function machineName(hostname: string): string {
  const n = hostname
    .split('.')[0]
    .replace(/[^A-Za-z0-9_@+-]/g, '-')
    .replace(/^[-.]+/, '');
  return n || 'laptop';
}
