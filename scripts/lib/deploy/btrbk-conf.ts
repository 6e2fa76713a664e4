// The laptop side's btrbk.conf and ssh config for a target: the one generator of both what `backup.mjs install`
// writes (scripts/lib/laptop/install.ts) and the snippet setup prints.
// btrbk (0.32) has no option for ssh's known_hosts file and runs plain `ssh`, so the pinned host key, the port and
// connection reuse reach ssh through an ssh_config block: install writes it for a Host alias of its own and
// includes it from /etc/ssh/ssh_config.d/; the printed snippet shows it for root's ~/.ssh/config.
import path from 'node:path';
import { DEFAULT_SSH_PORT, isLocalTarget, type Connection } from '../core/connection.js';

/**
 * Retention defaults: daily snapshots kept two weeks locally. On the target: with an append-only host (the
 * default) the client never deletes there (`target_preserve_min all`; the host prunes by its own policy, the
 * stack's `retention`); with append_only = false the client prunes 20 days, 10 weeks, 6 months itself, and keeps
 * every backup of the last day (`target_preserve_min 1d`: with `no` a second run on one day sends nothing).
 */
export interface Retention {
  snapshotPreserveMin: string;
  snapshotPreserve: string;
  targetPreserveMin: string;
  targetPreserve: string;
}

export const DEFAULT_RETENTION: Readonly<Retention> = Object.freeze({
  snapshotPreserveMin: '2d',
  snapshotPreserve: '14d',
  targetPreserveMin: '1d',
  targetPreserve: '20d 10w 6m',
});

/**
 * The btrbk target URL for a connection: ssh://HOST[:PORT]/PATH. btrbk's URL grammar has no user part (the
 * user is the ssh_user option); IPv6 addresses go in brackets.
 */
export function btrbkTargetUrl(conn: Pick<Connection, 'host' | 'port' | 'backupRoot'>): string {
  const { host, port } = conn;
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const p = conn.backupRoot.replace(/\/+$/, '');
  return `ssh://${h}${port === DEFAULT_SSH_PORT ? '' : `:${port}`}${p}`;
}

/** What an installed ssh config adds to the block: a host alias of its own and connection reuse. */
export interface SshConfigOptions {
  /** A Host name of its own (HostName, Port and User then come from the connection); default: the address. */
  alias?: string;
  /** The private key (default the connection's keyFile). */
  identity?: string;
  /** The pinned known_hosts (default the connection's knownHostsFile). */
  knownHosts?: string;
  /**
   * Connection reuse: ControlMaster auto with this private ControlPath (its directory must exist, mode 0700),
   * ControlPersist 60 s. One incremental btrbk run opens 7 connections through the gate.
   */
  controlPath?: string;
  /** No prompts, bounded connect time, dead links noticed (for unattended runs). */
  unattended?: boolean;
}

/** The ssh_config block that makes ssh (as run by btrbk) check the pinned host key strictly. */
export function sshConfigBlock(conn: Connection, opts: SshConfigOptions = {}): string {
  const knownHosts = opts.knownHosts ?? conn.knownHostsFile;
  const lines = [`Host ${opts.alias ?? conn.host}`];
  if (opts.alias) lines.push(`    HostName ${conn.host}`, `    Port ${conn.port}`, `    User ${conn.user}`);
  if (knownHosts) {
    lines.push(`    UserKnownHostsFile ${knownHosts}`);
    if (opts.alias) lines.push('    GlobalKnownHostsFile /dev/null');
    lines.push('    StrictHostKeyChecking yes');
  }
  lines.push(`    IdentityFile ${opts.identity ?? conn.keyFile}`, '    IdentitiesOnly yes');
  if (opts.controlPath)
    lines.push('    ControlMaster auto', `    ControlPath ${opts.controlPath}`, '    ControlPersist 60');
  if (opts.unattended) {
    lines.push('    BatchMode yes', '    ConnectTimeout 20', '    ServerAliveInterval 15', '    ServerAliveCountMax 4');
    lines.push('    ForwardAgent no', '    ClearAllForwardings yes');
  }
  return lines.join('\n');
}

/** One subvolume to back up, by absolute path, and where its snapshots go (absolute, on the same btrfs). */
export interface BackupSource {
  subvolume: string;
  snapshotDir: string;
}

export interface BtrbkConfOptions {
  /** The mounted btrfs top level holding the subvolume (default /mnt/btr_pool). Not with `sources`. */
  volume?: string;
  /** Default home. Not with `sources`. */
  subvolume?: string;
  /** Default btrbk_snapshots. Not with `sources`. */
  snapshotDir?: string;
  /** Subvolumes by absolute path (no volume section), each with its snapshot directory: what install writes. */
  sources?: readonly BackupSource[];
  /** The directory on the target (default the connection's backupRoot). */
  targetDir?: string;
  /**
   * The ssh settings live in an ssh config that ssh reads for this Host alias (port, user, pinned known_hosts):
   * the target URL then names the alias, and `file` is named in the header.
   */
  sshConfig?: { alias: string; file: string };
  /** The private key (default the connection's keyFile, made absolute). */
  identity?: string;
  /** btrbk's lockfile: a second btrbk with this config (a pre-sleep snapshot, a run by hand) fails at once. */
  lockfile?: string;
  /** Default 'long' (YYYYMMDDTHHMM, local time); install writes 'long-iso' (with the UTC offset). */
  timestampFormat?: 'long' | 'long-iso';
  retention?: Partial<Retention>;
  /** e.g. '256m'; needs mbuffer. */
  streamBuffer?: string;
  /** The date named in the header comment. */
  generatedAt?: string;
  /** Who wrote the file, named in the header (default setup). */
  writtenBy?: string;
  /**
   * Default true: the host was deployed with append_only, the stack's default; the client never deletes on the
   * target.
   */
  appendOnly?: boolean;
}

/** Renders a ready-to-use btrbk.conf for `conn` (a validated connection object). */
export function renderBtrbkConf(conn: Connection, opts: BtrbkConfOptions = {}): string {
  const r = { ...DEFAULT_RETENTION, ...opts.retention };
  const appendOnly = opts.appendOnly ?? true;
  const volume = opts.volume ?? '/mnt/btr_pool';
  const subvolume = opts.subvolume ?? 'home';
  const snapshotDir = opts.snapshotDir ?? 'btrbk_snapshots';
  const identity = path.resolve(opts.identity ?? conn.keyFile);
  const targetDir = (opts.targetDir ?? conn.backupRoot).replace(/\/+$/, '');
  const url = opts.sshConfig
    ? `ssh://${opts.sshConfig.alias}${targetDir}`
    : btrbkTargetUrl({ ...conn, backupRoot: targetDir });
  const where = isLocalTarget(conn)
    ? 'the local target (a container on this machine)'
    : `the backup target ${conn.instanceId} in ${conn.region}`;
  const comment = (text: string): string =>
    text
      .split('\n')
      .map((l) => (l ? `#   ${l}` : '#'))
      .join('\n');
  const by = opts.writtenBy ?? 'setup';
  const lines = [
    `# btrbk.conf for ${where}${opts.generatedAt ? `, written by ${by} on ${opts.generatedAt}` : `, written by ${by}`}.`,
  ];
  if (opts.sshConfig) {
    lines.push(
      `# The ssh settings (address, port, user, the pinned host key, connection reuse) are in ${opts.sshConfig.file},`,
      `# which ssh reads for the host "${opts.sshConfig.alias}" (included from /etc/ssh/ssh_config.d/).`,
      '# Installed and kept up to date by: npx zx scripts/backup.mjs install (do not edit by hand; re-run install).',
    );
  } else {
    lines.push(
      '# The simplest way to use it: npx zx scripts/backup.mjs install --subvolume /home  (installs a config like this,',
      '# the ssh settings below, the snapshot directory and an hourly timer; README "Backups").',
      '# By hand: create the snapshot directory (see the volume section), put the ssh block below in',
      "# root's ~/.ssh/config (btrbk has no option for a known_hosts file), then: btrbk -c THIS_FILE dryrun; btrbk -c THIS_FILE run",
      '#',
      comment(sshConfigBlock({ ...conn, keyFile: identity })),
    );
  }
  lines.push(
    '#',
    '# Mount the source btrfs with noatime: with relatime, every file read since the last snapshot changes its',
    '# atime, and the next incremental send ships all those inode updates.',
    '',
    `timestamp_format        ${opts.timestampFormat ?? 'long'}`,
    `snapshot_preserve_min   ${r.snapshotPreserveMin}`,
    `snapshot_preserve       ${r.snapshotPreserve}`,
    ...(appendOnly
      ? [
          '# The host is append-only: this key cannot delete backups there, the host prunes them by its own policy',
          '# (troubleshoot.mjs check-volume shows it). So btrbk never tries to delete on the target:',
          'target_preserve_min     all',
        ]
      : [
          '# target_preserve_min keeps every backup of the last day: with "no", btrbk creates only the backups the',
          '# schedule keeps (one a day), so a second run on the same day (after a restore, say) would send nothing.',
          `target_preserve_min     ${r.targetPreserveMin}`,
          `target_preserve         ${r.targetPreserve}`,
        ]),
    '',
    `ssh_identity            ${identity}`,
    `ssh_user                ${conn.user}`,
    'backend_remote          btrfs-progs-sudo',
    '# zstd sent a quarter of the bytes of compressible data and cost nothing on random data; stream_buffer (mbuffer)',
    '# made transfers slower, so it is off (figures: docs/PERFORMANCE.md of btrbk-aws-target, `npm run bench`)',
    'stream_compress         zstd',
    '# level 1 and aes128-gcm: the least CPU on a t3a.nano host (and on this machine) per byte received',
    'stream_compress_level   1',
    'ssh_cipher_spec         aes128-gcm@openssh.com,chacha20-poly1305@openssh.com',
  );
  if (opts.streamBuffer) lines.push(`stream_buffer           ${opts.streamBuffer}`);
  if (opts.lockfile) lines.push(`lockfile                ${opts.lockfile}`);
  lines.push('');
  if (opts.sources) {
    for (const s of opts.sources) {
      lines.push(
        `# ${s.subvolume}: its snapshots in ${s.snapshotDir}, its backups named ${path.posix.basename(s.subvolume)}.TIMESTAMP on the target`,
        `subvolume ${s.subvolume}`,
        `  snapshot_dir ${s.snapshotDir}`,
        `  target send-receive ${url}`,
        '',
      );
    }
  } else {
    lines.push(
      `# ${volume}: the btrfs filesystem's top level (mount -o subvolid=5,noatime), holding the subvolume "${subvolume}".`,
      `# btrbk does not create the snapshot directory: mkdir ${path.posix.join(volume, snapshotDir)}`,
      `volume ${volume}`,
      `  snapshot_dir ${snapshotDir}`,
      `  subvolume ${subvolume}`,
      `    target send-receive ${url}`,
      '',
    );
  }
  return lines.join('\n');
}
