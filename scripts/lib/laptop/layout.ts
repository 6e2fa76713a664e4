// Where `backup.mjs install` puts things on the laptop (or server), and the names btrbk gives its snapshots and
// backups there. One table: install writes these paths, uninstall removes them, status/list/restore read them.
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';

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

/** A device name as the stack's `devices` map and the host take it (user-data: no `..`, not `selftest`). */
export const DEVICE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const isDeviceName = (n: string): boolean => DEVICE_NAME_RE.test(n) && !n.includes('..') && n !== 'selftest';

/** Which device this is and where its backups are on the target. */
export interface DeviceTarget {
  device: string;
  targetDir: string;
}

/**
 * The device and its target directory. A device's connection file (it names the device) holds only that device's key,
 * and its backup root is the device's own directory (backups/NAME): the backups go there, not below it, and asking
 * for another device is an error that says which connection file to use. A file without a device (the single,
 * legacy key) keeps today's layout: backups/NAME for the device asked (--device or --machine), else `fallback`
 * (the installed one), else the short host name.
 */
export function deviceTarget(
  conn: { backupRoot: string; device?: string; keyFile: string },
  asked?: string,
  fallback?: string,
  hostname = os.hostname(),
): DeviceTarget {
  if (conn.device) {
    if (asked !== undefined && asked !== conn.device) {
      throw new OperatorError(
        `the connection file is device ${conn.device}'s (its key ${conn.keyFile}), not device ${asked}'s`,
        {
          cause: `a device's key reaches only its own backups (${conn.backupRoot} on the target)`,
          next: `give device ${asked}'s own connection file and key: --env connection-${asked}.env (the local target writes it; on AWS the file made with ${asked}'s key), or leave out --device to use ${conn.device}`,
          exitCode: 2,
        },
      );
    }
    return { device: conn.device, targetDir: conn.backupRoot.replace(/(.)\/+$/, '$1') };
  }
  const device = asked ?? fallback ?? machineName(hostname);
  return { device, targetDir: targetDirFor(conn.backupRoot, device) };
}

/**
 * The device and target directory a verb other than install uses: the connection's device when it names one, or
 * the device asked for, or the installed one (its recorded directory: a manifest of an earlier version names the
 * machine), or the short host name.
 */
export function targetFor(
  conn: { backupRoot: string; device?: string; keyFile: string },
  asked: string | undefined,
  installed: { device?: string; machine: string; targetDir: string } | null,
): DeviceTarget {
  if (conn.device || asked !== undefined || !installed)
    return deviceTarget(conn, asked, installed?.device ?? installed?.machine);
  return { device: installed.device ?? installed.machine, targetDir: installed.targetDir };
}
