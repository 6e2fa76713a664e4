// `backup.mjs install` and `uninstall`: the files that make backups happen by themselves, generated here and
// written only where they differ (re-running install changes nothing, or exactly what changed), and a manifest of
// what was made so uninstall removes exactly that (never a snapshot or a backup).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { atimeMode, mountFor, parseMountinfo, type Mount } from '../core/btrfs-output.js';
import { connectionFromEnv, connectionToEnv, formatConnection, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { renderBtrbkConf, sshConfigBlock, type BackupSource } from '../deploy/btrbk-conf.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { CONTROL_PATH, FILES, LOCKFILE, SNAPSHOT_DIR_NAME, SSH_ALIAS, under } from './layout.js';
import {
  renderNotifyScript,
  renderNotifyUnit,
  renderPresleepUnit,
  renderServiceUnit,
  renderTimerUnit,
} from './units.js';

/** btrfs's statfs magic number. */
const BTRFS_MAGIC = 0x9123683e;
/** The inode number of every btrfs subvolume's root directory. */
const SUBVOLUME_ROOT_INODE = 256;

/** What install found out about a path the person asked to protect. */
export interface SourceInfo {
  path: string;
  exists: boolean;
  btrfs: boolean;
  /** The path is the root of a subvolume (not just a directory inside one). */
  subvolume: boolean;
  mount: Mount | null;
}

/** Looks at one path: exists, on btrfs, a subvolume root, its mount (from mountinfo text). */
export function inspectSource(
  p: string,
  mountinfo: string,
  { statfs = fs.statfsSync, stat = fs.statSync }: { statfs?: typeof fs.statfsSync; stat?: typeof fs.statSync } = {},
): SourceInfo {
  const abs = path.resolve(p);
  if (!fs.existsSync(abs)) return { path: abs, exists: false, btrfs: false, subvolume: false, mount: null };
  const btrfs = statfs(abs).type === BTRFS_MAGIC;
  const st = stat(abs);
  return {
    path: abs,
    exists: true,
    btrfs,
    subvolume: btrfs && st.isDirectory() && st.ino === SUBVOLUME_ROOT_INODE,
    mount: mountFor(abs, parseMountinfo(mountinfo)),
  };
}

/** Why a source cannot be backed up, with what to do; null when it can. */
export function sourceProblem(s: SourceInfo): OperatorError | null {
  if (!s.exists)
    return new OperatorError(`${s.path} does not exist`, {
      next: 'name a btrfs subvolume that exists, e.g. --subvolume /home',
    });
  if (!s.btrfs) {
    return new OperatorError(`${s.path} is not on a btrfs filesystem (${s.mount?.fstype ?? 'unknown'})`, {
      cause: 'btrbk backs up btrfs subvolumes: snapshots and btrfs send need btrfs',
      next: 'put the data on a btrfs filesystem (btrfs-convert can convert ext4 in place, after a backup of its own)',
    });
  }
  if (!s.subvolume) {
    const tmp = `${s.path}.new-subvolume`;
    return new OperatorError(`${s.path} is a directory, not a btrfs subvolume`, {
      cause: 'btrbk snapshots whole subvolumes; a plain directory is part of the subvolume around it',
      next: `make it one (with nothing writing to it): btrfs subvolume create ${tmp} && cp -a --reflink=always ${s.path}/. ${tmp}/ && mv ${s.path} ${s.path}.old && mv ${tmp} ${s.path}; check it, then delete ${s.path}.old. Or back up the subvolume that holds it.`,
    });
  }
  return null;
}

/** A warning when the source's filesystem is mounted with atime updates (the bench showed 44x larger incrementals). */
export function atimeWarning(s: SourceInfo): string | null {
  if (!s.mount) return null;
  const mode = atimeMode(s.mount);
  if (mode === 'noatime') return null;
  return `${s.mount.mountPoint} (holding ${s.path}) is mounted ${mode}: every file read changes its atime and the next incremental sends those inode updates (44x larger in the bench). Add noatime to its options in /etc/fstab and run: mount -o remount,noatime ${s.mount.mountPoint}`;
}

/**
 * Where a subvolume's snapshots go when --snapshot-dir is not given: beside it (PARENT/.btrbk-aws-snapshots) when
 * the parent directory is on the same btrfs, else inside it (a nested subvolume is not part of its snapshots).
 */
export function defaultSnapshotDir(source: SourceInfo, parent: SourceInfo): string {
  const same =
    parent.btrfs &&
    parent.mount &&
    source.mount &&
    parent.mount.source === source.mount.source &&
    parent.path !== source.path;
  return path.join(same ? parent.path : source.path, SNAPSHOT_DIR_NAME);
}

/** What install made and with which settings (FILES.manifest). */
export interface Manifest {
  version: 1;
  installedAt: string;
  /** The connection file install read. */
  envFile: string;
  /** The connection with the installed key and known_hosts: what status, list, run and restore use. */
  connection: Connection;
  /** The machine's name on the target: its device (the same value as `device`; kept for earlier readers). */
  machine: string;
  /** The device this machine backs up as (absent in a manifest of an earlier version: then `machine`). */
  device?: string;
  targetDir: string;
  sources: BackupSource[];
  /** Snapshot directories install created (uninstall leaves them: they hold snapshots). */
  createdSnapshotDirs: string[];
  interval: string;
  appendOnly: boolean;
  btrbk: string;
  notify: boolean;
  files: string[];
  /** install's --instance-type and --upload-mbit, when given: run's first-send ETA uses them. */
  instanceType?: string;
  uploadMbit?: number;
}

/**
 * The manifest as its JSON file holds it: the connection as the connection file's KEY -> value pairs (the form
 * every version has written, so a manifest from an earlier install still loads).
 */
type ManifestFile = Omit<Manifest, 'connection'> & { connection: Record<string, string> };

export interface InstallInputs {
  conn: Connection;
  envFile: string;
  machine: string;
  /** The device (install's --device; a connection of a device names it). */
  device?: string;
  targetDir: string;
  sources: BackupSource[];
  interval: string;
  /** The timer's random delay in seconds (units.ts randomDelaySeconds; default that of a named interval). */
  randomDelay?: number;
  appendOnly: boolean;
  /** The pinned known_hosts text and the private key text, copied under /etc/btrbk/btrbk-aws/. */
  knownHosts: string;
  identity: string;
  btrbk?: string;
  /** A desktop notification when a scheduled run fails (default off). */
  notify?: boolean;
  /** For run's first-send ETA (recorded only when given). */
  instanceType?: string;
  uploadMbit?: number;
}

export interface PlannedFile {
  path: string;
  content: string;
  mode: number;
}

/** The gate line that creates a machine's target directory (mkdir -p below the backup root). */
export const targetMkdirLine = (targetDir: string): string => gateLine(GATE_COMMANDS.mkdir(targetDir));

/** The connection as installed: the key and known_hosts copies under FILES.dir. */
export function installedConnection(conn: Connection): Connection {
  return { ...conn, keyFile: FILES.identity, knownHostsFile: FILES.knownHosts };
}

/**
 * The connection-reuse socket for a key: ssh's %C (host, port, user) does not tell keys apart, so a master
 * connection the earlier install's key opened (it persists 60 s) would carry the next install's checks and runs
 * as the earlier device. The socket's name carries a tag of the key (8 hex digits of its sha256): another key,
 * another socket.
 */
export const controlPathFor = (identity: string): string =>
  identity ? `${CONTROL_PATH}-${createHash('sha256').update(identity).digest('hex').slice(0, 8)}` : CONTROL_PATH;

/** The ssh config install writes: the alias, the pinned key, the port, connection reuse (per key), no prompts. */
export function renderSshConfig(conn: Connection, identity = ''): string {
  return `# Written by npx zx scripts/backup.mjs install (btrbk-aws-target): how ssh reaches the backup target when
# btrbk (${FILES.btrbkConf}) names the host "${SSH_ALIAS}". Included from ${FILES.sshInclude}.
${sshConfigBlock(conn, { alias: SSH_ALIAS, identity: FILES.identity, knownHosts: FILES.knownHosts, controlPath: controlPathFor(identity), unattended: true })}
`;
}

/** Every file install writes, with its content and mode; the manifest last. */
export function planInstallFiles(i: InstallInputs): PlannedFile[] {
  const conn = installedConnection(i.conn);
  const btrbk = i.btrbk ?? '/usr/bin/btrbk';
  const files: PlannedFile[] = [
    {
      path: FILES.btrbkConf,
      mode: 0o644,
      content: renderBtrbkConf(conn, {
        sources: i.sources,
        targetDir: i.targetDir,
        sshConfig: { alias: SSH_ALIAS, file: FILES.sshConfig },
        identity: FILES.identity,
        lockfile: LOCKFILE,
        timestampFormat: 'long-iso',
        appendOnly: i.appendOnly,
        writtenBy: 'backup.mjs install',
      }),
    },
    { path: FILES.sshConfig, mode: 0o644, content: renderSshConfig(i.conn, i.identity) },
    { path: FILES.knownHosts, mode: 0o644, content: i.knownHosts.endsWith('\n') ? i.knownHosts : `${i.knownHosts}\n` },
    { path: FILES.identity, mode: 0o600, content: i.identity },
    {
      path: FILES.connection,
      mode: 0o600,
      content: formatConnection(
        conn,
        `Written by backup.mjs install from ${i.envFile}: the installed key and pinned known_hosts.`,
      ),
    },
    {
      path: FILES.sshInclude,
      mode: 0o644,
      content: `# Written by npx zx scripts/backup.mjs install: ssh settings for the host "${SSH_ALIAS}" only.\nInclude ${FILES.sshConfig}\n`,
    },
    {
      path: FILES.service,
      mode: 0o644,
      content: renderServiceUnit({ btrbk, notify: i.notify, targetMkdir: targetMkdirLine(i.targetDir) }),
    },
    { path: FILES.timer, mode: 0o644, content: renderTimerUnit({ interval: i.interval, randomDelay: i.randomDelay }) },
    { path: FILES.presleep, mode: 0o644, content: renderPresleepUnit({ btrbk }) },
  ];
  if (i.notify) {
    files.push(
      { path: FILES.notify, mode: 0o644, content: renderNotifyUnit() },
      { path: FILES.notifyScript, mode: 0o755, content: renderNotifyScript() },
    );
  }
  return files;
}

/** The manifest's content for a plan (its own path included in `files`). */
export function manifestFor(
  i: InstallInputs,
  files: PlannedFile[],
  createdSnapshotDirs: string[],
  installedAt: string,
): Manifest {
  return {
    version: 1,
    installedAt,
    envFile: i.envFile,
    connection: installedConnection(i.conn),
    machine: i.machine,
    ...(i.device ? { device: i.device } : {}),
    targetDir: i.targetDir,
    sources: i.sources,
    createdSnapshotDirs,
    interval: i.interval,
    appendOnly: i.appendOnly,
    btrbk: i.btrbk ?? '/usr/bin/btrbk',
    notify: Boolean(i.notify),
    files: [...files.map((f) => f.path), FILES.manifest],
    ...(i.instanceType ? { instanceType: i.instanceType } : {}),
    ...(i.uploadMbit ? { uploadMbit: i.uploadMbit } : {}),
  };
}

export type FileAction = 'created' | 'updated' | 'unchanged' | 'removed' | 'absent';
export interface FileChange {
  path: string;
  action: FileAction;
}

/** What writing a file would do: create it, update it (content or mode differ), or nothing. */
export function fileAction(root: string, f: PlannedFile): FileAction {
  const p = under(root, f.path);
  if (!fs.existsSync(p)) return 'created';
  const same = fs.readFileSync(p, 'utf8') === f.content && (fs.statSync(p).mode & 0o7777) === f.mode;
  return same ? 'unchanged' : 'updated';
}

/** Writes each file whose content or mode differs (atomically: a temporary file, then rename); reports each. */
export function applyFiles(root: string, files: PlannedFile[]): FileChange[] {
  return files.map((f) => {
    const p = under(root, f.path);
    const action = fileAction(root, f);
    if (action === 'unchanged') return { path: f.path, action };
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    const tmp = `${p}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, f.content, { mode: f.mode });
    fs.chmodSync(tmp, f.mode);
    fs.renameSync(tmp, p);
    return { path: f.path, action };
  });
}

/** Removes files (only those named; a missing one is reported as absent), then FILES.dir when it is empty. */
export function removeFiles(root: string, paths: string[]): FileChange[] {
  const out = paths.map((f): FileChange => {
    const p = under(root, f);
    if (!fs.existsSync(p)) return { path: f, action: 'absent' };
    fs.rmSync(p);
    return { path: f, action: 'removed' };
  });
  const dir = under(root, FILES.dir);
  if (fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
  return out;
}

/** The manifest of an earlier install, or null when there is none. */
export function readManifest(root = '/'): Manifest | null {
  const p = under(root, FILES.manifest);
  if (!fs.existsSync(p)) return null;
  try {
    const m = JSON.parse(fs.readFileSync(p, 'utf8')) as ManifestFile;
    if (m.version !== 1 || !Array.isArray(m.sources) || typeof m.connection !== 'object' || !m.connection)
      throw new Error('unknown format');
    return { ...m, connection: connectionFromEnv(m.connection, `${p}: connection`) };
  } catch (err) {
    throw new OperatorError(`${p} is not a manifest this version can read`, {
      cause: (err as Error).message,
      next: 'run install again (it rewrites the manifest), or uninstall and install',
    });
  }
}

/** The manifest file itself, ready to write with applyFiles. */
export function manifestFile(m: Manifest): PlannedFile {
  const file: ManifestFile = { ...m, connection: connectionToEnv(m.connection) };
  return { path: FILES.manifest, mode: 0o644, content: `${JSON.stringify(file, null, 2)}\n` };
}

/** Checks two sources would not share backup names (btrbk names backups after the subvolume's last component). */
export function checkSourceNames(sources: BackupSource[]): void {
  const seen = new Map<string, string>();
  for (const s of sources) {
    const base = path.posix.basename(s.subvolume);
    const other = seen.get(base);
    if (other) {
      throw new OperatorError(`${other} and ${s.subvolume} would both make backups named ${base}.TIMESTAMP`, {
        cause: 'btrbk names snapshots and backups after the last component of the subvolume path',
        next: 'protect one of them with this target, or rename one subvolume',
      });
    }
    seen.set(base, s.subvolume);
  }
}
