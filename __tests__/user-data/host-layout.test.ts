// One source for host facts: the layout module the stack and the scripts import agrees with what the host's own
// shell spells (the boot script, the SSH gate, btrbk-receive, btrbk-prune and the sudoers fragment).
import fs from 'node:fs';
import path from 'node:path';
import * as layout from '../../user-data/host-layout.js';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { BACKUP_PATH, SSH_USER } from '../../constructs/backup-target-stack.js';

const read = (file: string) => fs.readFileSync(path.join(REPO_ROOT, 'user-data', file), 'utf8');
/** The value of a plain `NAME=value` / `readonly NAME=value` line of a shell script (its first one). */
function shellValue(file: string, name: string): string {
  const m = new RegExp(`^(?:readonly )?${name}=([^\\s#]+)`, 'm').exec(read(file));
  if (!m) throw new Error(`${file} has no ${name}=`);
  return m[1].replace(/^'(.*)'$/, '$1');
}

test('the boot script spells the layout the same way', () => {
  const boot = (name: string) => shellValue('bootstrap.sh', name);
  expect({
    MOUNT_POINT: boot('MOUNT_POINT'),
    BACKUP_ROOT: boot('BACKUP_ROOT'),
    STAGING_DIR: boot('STAGING_DIR'),
    HOST_IDENTITY_DIR: boot('HOST_KEY_DIR'),
    FS_LABEL: boot('FS_LABEL'),
    BACKUP_USER: boot('BTRBK_USER'),
    GATE_PATH: boot('GATE_PATH'),
    RECEIVE_PATH: boot('RECEIVE_PATH'),
    STREAM_CHECK_PATH: boot('STREAM_CHECK_PATH'),
    PRUNE_PATH: boot('PRUNE_PATH'),
    PRUNE_CONF: boot('PRUNE_CONF'),
    SUDOERS_PATH: boot('SUDOERS_PATH'),
    STATE_DIR: boot('STATE_DIR'),
    BOOT_LOG: boot('LOG_FILE'),
    RECEIVE_STALL_SECONDS: Number(boot('RECEIVE_STALL_SECONDS')),
    HEARTBEAT_PATH: boot('HEARTBEAT_PATH'),
    HEARTBEAT_CONF: boot('HEARTBEAT_CONF'),
    METRIC_NAMESPACE: boot('METRIC_NAMESPACE'),
  }).toEqual({
    MOUNT_POINT: layout.MOUNT_POINT,
    BACKUP_ROOT: layout.BACKUP_ROOT,
    STAGING_DIR: layout.STAGING_DIR,
    HOST_IDENTITY_DIR: layout.HOST_IDENTITY_DIR,
    FS_LABEL: layout.FS_LABEL,
    BACKUP_USER: layout.BACKUP_USER,
    GATE_PATH: layout.GATE_PATH,
    RECEIVE_PATH: layout.RECEIVE_PATH,
    STREAM_CHECK_PATH: layout.STREAM_CHECK_PATH,
    PRUNE_PATH: layout.PRUNE_PATH,
    PRUNE_CONF: layout.PRUNE_CONF,
    SUDOERS_PATH: layout.SUDOERS_PATH,
    STATE_DIR: layout.STATE_DIR,
    BOOT_LOG: layout.BOOT_LOG,
    RECEIVE_STALL_SECONDS: layout.RECEIVE_STALL_SECONDS,
    HEARTBEAT_PATH: layout.HEARTBEAT_PATH,
    HEARTBEAT_CONF: layout.HEARTBEAT_CONF,
    METRIC_NAMESPACE: layout.METRIC_NAMESPACE,
  });
  // the heartbeat's own spelling: its conf, and the metric it puts
  expect(shellValue('btrbk-receive.sh', 'readonly HEARTBEAT')).toBe(layout.HEARTBEAT_PATH);
  expect(shellValue('btrbk-receive.sh', 'readonly STREAM_CHECK')).toBe(layout.STREAM_CHECK_PATH);
  expect(shellValue('btrbk-heartbeat.sh', 'CONF')).toBe(layout.HEARTBEAT_CONF);
  expect(read('btrbk-heartbeat.sh')).toContain(`MetricName=${layout.COMPLETED_BACKUPS_METRIC}&`);
  // btrbk-receive's and btrbk-prune's own default when prune.conf does not say
  expect(read('btrbk-receive.sh')).toContain(`stall=${layout.RECEIVE_STALL_SECONDS}`);
  expect(read('btrbk-prune.sh')).toContain(`RECEIVE_STALL_SECONDS=${layout.RECEIVE_STALL_SECONDS} `);
  // the markers the boot script leaves
  expect(read('bootstrap.sh')).toContain('"$STATE_DIR/ready"');
  expect(read('bootstrap.sh')).toContain('"$STATE_DIR/failed"');
  expect(layout.READY_MARKER).toBe(`${layout.STATE_DIR}/ready`);
  expect(layout.FAILED_MARKER).toBe(`${layout.STATE_DIR}/failed`);
});

test("the gate's, btrbk-receive's and btrbk-prune's defaults are the layout", () => {
  const gate = (name: string) => shellValue('btrbk-ssh-gate.sh', name);
  expect([
    gate('ROOT'),
    gate('MOUNT'),
    gate('BOOT_LOG'),
    gate('CLOUD_INIT_LOG'),
    gate('RECEIVER'),
    gate('PRUNER'),
  ]).toEqual([
    layout.BACKUP_ROOT,
    layout.MOUNT_POINT,
    layout.BOOT_LOG,
    layout.CLOUD_INIT_LOG,
    layout.RECEIVE_PATH,
    layout.PRUNE_PATH,
  ]);
  expect(read('btrbk-ssh-gate.sh')).toContain(`"$ROOT/${layout.SELFTEST_DIR_NAME}/"`);
  const receive = (name: string) => shellValue('btrbk-receive.sh', name);
  expect([receive('ROOT'), receive('MOUNT'), `${receive('LOCK_DIR')}/receive.lock`]).toEqual([
    layout.BACKUP_ROOT,
    layout.MOUNT_POINT,
    layout.RECEIVE_LOCK,
  ]);
  expect(read('btrbk-receive.sh')).toContain('STAGING=${STAGING:-$MOUNT/.btrbk-staging}');
  expect(layout.STAGING_DIR).toBe(`${layout.MOUNT_POINT}/.btrbk-staging`);
  // the host identity sits at the volume's top, outside the backup root and the staging area: btrbk-receive's
  // namespace covers every such entry, and the gate accepts only paths inside the backup root
  expect(layout.HOST_IDENTITY_DIR).toMatch(new RegExp(`^${layout.MOUNT_POINT}/[^/]+$`));
  expect(layout.HOST_IDENTITY_DIR.startsWith(`${layout.BACKUP_ROOT}/`)).toBe(false);
  expect(layout.HOST_IDENTITY_DIR).not.toBe(layout.STAGING_DIR);
  const prune = read('btrbk-prune.sh');
  for (const [k, v] of [
    ['BACKUP_ROOT', layout.BACKUP_ROOT],
    ['MOUNT', layout.MOUNT_POINT],
    ['STAGING', layout.STAGING_DIR],
    ['RECEIVE_LOCK', layout.RECEIVE_LOCK],
  ]) {
    expect(prune).toMatch(new RegExp(`(^|\\s)${k}=${v}(\\s|$)`, 'm'));
  }
  expect(prune).toContain('CONF=/etc/btrbk-backup-host/prune.conf');
});

test('the scrub and the manifest: the boot script, the gate, btrbk-scrub and the sudoers fragment name the layout', () => {
  expect([shellValue('bootstrap.sh', 'SCRUB_PATH'), shellValue('bootstrap.sh', 'MANIFEST_PATH')]).toEqual([
    layout.SCRUB_PATH,
    layout.MANIFEST_PATH,
  ]);
  const gate = read('btrbk-ssh-gate.sh');
  expect(gate).toContain(`DIAG=(${layout.SCRUB_PATH} report)`);
  expect(gate).toContain(`OUT=("$SUDO" -n ${layout.MANIFEST_PATH})`);
  expect(read('sudoers-btrbk')).toContain(`Cmnd_Alias BTRBK_MANIFEST = ${layout.MANIFEST_PATH} `);
  const scrub = read('btrbk-scrub.sh');
  expect(scrub).toMatch(new RegExp(`(^|\\s)MOUNT=${layout.MOUNT_POINT}(\\s|$)`, 'm'));
  expect(`${/STATE_DIR=(\S+)/.exec(scrub)?.[1]}/last-run`).toBe(layout.SCRUB_STATE);
  expect(scrub).toMatch(new RegExp(`SCHEDULE=${layout.SCRUB_SCHEDULE}\\b`));
  // the timer checks hourly; the scrub itself runs SCRUB_SCHEDULE (28 days), in the 90 minutes after a backup arrived
  expect(read('bootstrap.sh')).toContain(`host_timer btrbk-scrub "$SCRUB_PATH" scrub_script hourly `);
  expect(scrub).toMatch(/DUE_DAYS=28 FRESH_MINUTES=90\b/);
});

test("the sudoers fragment names the layout's paths, and the stack the same root and user", () => {
  const sudoers = read('sudoers-btrbk');
  expect(sudoers).toContain(`${layout.RECEIVE_PATH} ^`);
  expect(sudoers).toContain(`${layout.PRUNE_PATH} report`);
  expect(sudoers).toContain(`${layout.BACKUP_ROOT}/${layout.SELFTEST_DIR_NAME}(`);
  expect(sudoers).toMatch(new RegExp(`^${layout.BACKUP_USER} ALL=`, 'm'));
  expect(BACKUP_PATH).toBe(layout.BACKUP_ROOT);
  expect(SSH_USER).toBe(layout.BACKUP_USER);
});
