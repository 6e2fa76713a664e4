// The btrbk.conf snippet setup prints for a target: the laptop side of a backup to this host.
// btrbk (0.32) has no option for ssh's known_hosts file, so the pinned host key reaches ssh through an ssh_config
// block for the target address, which the snippet prints alongside.
import path from 'node:path';
import { isLocalTarget, type Connection } from '../core/connection.js';

/**
 * Retention defaults: daily snapshots kept two weeks locally. On the target: with an append-only host (the
 * default) the client never deletes there (`target_preserve_min all`; the host prunes by its own policy, the
 * stack's `retention`); with append_only = false the client prunes 20 days, 10 weeks, 6 months itself.
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
  targetPreserveMin: 'no',
  targetPreserve: '20d 10w 6m',
});

/**
 * The btrbk target URL for a connection: ssh://HOST[:PORT]/PATH. btrbk's URL grammar has no user part (the
 * user is the ssh_user option); IPv6 addresses go in brackets.
 */
export function btrbkTargetUrl(conn: Connection): string {
  const host = String(conn.BTRBK_AWS_HOST);
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = String(conn.BTRBK_AWS_SSH_PORT ?? '22');
  const p = String(conn.BTRBK_AWS_PATH).replace(/\/+$/, '');
  return `ssh://${h}${port === '22' ? '' : `:${port}`}${p}`;
}

/** The ssh_config block that makes ssh (as run by btrbk) check the pinned host key strictly. */
export function sshConfigBlock(conn: Connection): string {
  const lines = [`Host ${conn.BTRBK_AWS_HOST}`];
  if (conn.BTRBK_AWS_KNOWN_HOSTS) {
    lines.push(`    UserKnownHostsFile ${conn.BTRBK_AWS_KNOWN_HOSTS}`);
    lines.push('    StrictHostKeyChecking yes');
  }
  lines.push(`    IdentityFile ${conn.BTRBK_AWS_SSH_KEY}`, '    IdentitiesOnly yes');
  return lines.join('\n');
}

export interface BtrbkConfOptions {
  /** The mounted btrfs top level holding the subvolume (default /mnt/btr_pool). */
  volume?: string;
  /** Default home. */
  subvolume?: string;
  /** Default btrbk_snapshots. */
  snapshotDir?: string;
  retention?: Partial<Retention>;
  /** e.g. '256m'; needs mbuffer. */
  streamBuffer?: string;
  /** The date named in the header comment. */
  generatedAt?: string;
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
  const identity = path.resolve(conn.BTRBK_AWS_SSH_KEY);
  const where = isLocalTarget(conn) ? 'the local target (a container on this machine)' : `the backup target ${conn.BTRBK_AWS_INSTANCE_ID} in ${conn.BTRBK_AWS_REGION}`;
  const comment = (text: string): string => text.split('\n').map((l) => (l ? `#   ${l}` : '#')).join('\n');
  const lines = [
    `# btrbk.conf for ${where}${opts.generatedAt ? `, written by setup on ${opts.generatedAt}` : ''}.`,
    '# Check it with: btrbk -c THIS_FILE dryrun   then run: btrbk -c THIS_FILE run',
    '#',
    '# The host key is pinned; make ssh (run by btrbk, usually as root) use it strictly, in ~/.ssh/config:',
    comment(sshConfigBlock({ ...conn, BTRBK_AWS_SSH_KEY: identity })),
    '#',
    '# Mount the source btrfs with noatime: with relatime, every file read since the last snapshot changes its',
    '# atime, and the next incremental send ships all those inode updates.',
    '',
    'timestamp_format        long',
    `snapshot_preserve_min   ${r.snapshotPreserveMin}`,
    `snapshot_preserve       ${r.snapshotPreserve}`,
    ...(appendOnly
      ? [
          '# The host is append-only: this key cannot delete backups there, the host prunes them by its own policy',
          "# (troubleshoot.mjs check-volume shows it). So btrbk never tries to delete on the target:",
          'target_preserve_min     all',
        ]
      : [`target_preserve_min     ${r.targetPreserveMin}`, `target_preserve         ${r.targetPreserve}`]),
    '',
    `ssh_identity            ${identity}`,
    `ssh_user                ${conn.BTRBK_AWS_USER}`,
    'backend_remote          btrfs-progs-sudo',
    '# zstd sent a quarter of the bytes of compressible data and cost nothing on random data; stream_buffer (mbuffer)',
    '# made transfers slower, so it is off (figures: docs/PERFORMANCE.md of btrbk-aws-target, `npm run bench`)',
    'stream_compress         zstd',
    '# level 1 and aes128-gcm: the least CPU on a t3a.nano host (and on this machine) per byte received',
    'stream_compress_level   1',
    'ssh_cipher_spec         aes128-gcm@openssh.com,chacha20-poly1305@openssh.com',
  ];
  if (opts.streamBuffer) lines.push(`stream_buffer           ${opts.streamBuffer}`);
  lines.push(
    '',
    `# ${volume}: the btrfs filesystem's top level (mount -o subvolid=5,noatime), holding the subvolume "${subvolume}"`,
    `volume ${volume}`,
    `  snapshot_dir ${snapshotDir}`,
    `  subvolume ${subvolume}`,
    `    target send-receive ${btrbkTargetUrl(conn)}`,
    '',
  );
  return lines.join('\n');
}
