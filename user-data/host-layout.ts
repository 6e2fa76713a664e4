// The backup host's layout: where the boot script mounts the volume, where backups, staging, markers, logs and the
// host's programs live, and who the backup user is. The stack, the scripts and the tests import these; the host's
// own shell (user-data/) spells them once each, and __tests__/user-data/host-layout.test.ts checks they agree.

/** The data volume's mount point (mounted nosuid,nodev,noexec). */
export const MOUNT_POINT = '/backup_volume';
/** The backup root: every path the gate accepts resolves inside it. A subvolume of its own (user-data/btrbk-layout.sh),
 * the receive's -m: a send stream's snapshot and clone sources, named by UUID, can only be backups in it. */
export const BACKUP_ROOT = `${MOUNT_POINT}/backups`;
/** Where btrbk-receive receives each stream, outside the backup root (root-only). */
export const STAGING_DIR = `${MOUNT_POINT}/.btrbk-staging`;
/** The host's SSH identity (its ed25519 host key), kept on the volume so that a replaced instance answers with the
 * pinned key: root-only (0700, the key 0600), at the volume's top, outside the backup root subvolume (the gate cannot
 * name it, no stream can take it as a source by UUID, and btrbk-receive's mount namespace covers it). Written by
 * user-data/host-identity.sh at boot. */
export const HOST_IDENTITY_DIR = `${MOUNT_POINT}/.host-identity`;
/** The tools' scratch area below the backup root: the round trip and the bench put their test subvolumes there, the
 * one place an append-only host lets the backup key delete. Never point btrbk at it. */
export const SELFTEST_DIR_NAME = 'selftest';
/** The device name the stack's volume attachment asks for (Nitro instances show an NVMe device named by volume id). */
export const DATA_VOLUME_DEVICE_NAME = '/dev/sdf';
/** The filesystem label the boot script gives a volume it formats. */
export const FS_LABEL = 'btrbk-backup';

/** The user whose key reaches only the SSH gate. */
export const BACKUP_USER = 'btrbk';
/** The host's programs. */
export const GATE_PATH = '/usr/local/sbin/btrbk-ssh-gate';
export const RECEIVE_PATH = '/usr/local/sbin/btrbk-receive';
/** What btrbk-receive passes every stream through before btrfs receive reads it (user-data/btrbk-stream-check). */
export const STREAM_CHECK_PATH = '/usr/local/sbin/btrbk-stream-check';
export const PRUNE_PATH = '/usr/local/sbin/btrbk-prune';
export const PRUNE_CONF = '/etc/btrbk-backup-host/prune.conf';
/** The monthly read-only scrub (btrbk-scrub.timer) and the gate's `btrbk-diag scrub` (its report). */
export const SCRUB_PATH = '/usr/local/sbin/btrbk-scrub';
/** The scrub's last result (root-owned, 0644). */
export const SCRUB_STATE = '/var/lib/btrbk-backup-host/scrub/last-run';
/** How often the scrub runs (the timer's OnCalendar); check-volume warns when the last is older than twice this. */
export const SCRUB_SCHEDULE = 'monthly';
export const SCRUB_INTERVAL_DAYS = 31;
/** What a backup holds, for `backup.mjs verify` (the gate's `btrbk-manifest`; the laptop runs user-data/btrbk-manifest). */
export const MANIFEST_PATH = '/usr/local/sbin/btrbk-manifest';
export const SUDOERS_PATH = '/etc/sudoers.d/btrbk';

/** The boot script's state: its markers (ready on success, failed with the step) and its log. */
export const STATE_DIR = '/var/lib/btrbk-backup-host';
export const READY_MARKER = `${STATE_DIR}/ready`;
export const FAILED_MARKER = `${STATE_DIR}/failed`;
export const BOOT_LOG = '/var/log/btrbk-backup-host.log';
export const CLOUD_INIT_LOG = '/var/log/cloud-init-output.log';
/** A receive that reads and writes nothing for this many seconds is ended by btrbk-receive (prune.conf's
 * RECEIVE_STALL_SECONDS), so a stalled stream cannot hold the receive lock, and the host's pruning, for ever. */
export const RECEIVE_STALL_SECONDS = 600;
/** Each completed backup is reported to CloudWatch by this program (user-data/btrbk-heartbeat.sh), set up by its
 * conf (REGION, NAMESPACE, VOLUME_ID; no REGION: off, as on the local target). */
export const HEARTBEAT_PATH = '/usr/local/sbin/btrbk-heartbeat';
export const HEARTBEAT_CONF = '/etc/btrbk-backup-host/heartbeat.conf';
/** The CloudWatch namespace and metric of completed backups (dimensions VolumeId, and VolumeId + Device); the host's
 * role may put metrics in this namespace only, and the missed-backup alarm watches the metric for its VolumeId. */
export const METRIC_NAMESPACE = 'BtrbkBackupHost';
export const COMPLETED_BACKUPS_METRIC = 'CompletedBackups';
/** Receives hold it shared, the host's pruning exclusively. */
export const RECEIVE_LOCK = '/run/btrbk-backup-host/receive.lock';
