// The boot script in the local target, as cloud-init runs it on AWS: rendered exactly as the stack renders it,
// kept in the instance with the host payload, run once as root, judged by its ready and failed markers.
import fs from 'node:fs';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import { CLOUD_INIT_LOG, FAILED_MARKER, READY_MARKER } from '../../../user-data/host-layout.js';
import { run } from '../core/process.js';
import { renderBootScript, renderHostPayload, type BootScriptSettings } from '../../../user-data/render.js';
import { containerExec, nsenterArgs, runningLeader } from './container.js';
import { deviceConnection, writeConnection } from '../core/connection.js';
import { localConnection } from './local-connection.js';
import { loadState, pathsOf, type LocalTargetPaths, type TargetOptions, type UpState } from './paths.js';
import { logOf, readText, runOrThrow } from './system.js';

export const BOOT_SCRIPT_IN_CONTAINER = '/var/lib/cloud/instance/scripts/part-001';
/** The host payload, which EC2 reads from its S3 object, as a file in the container (same bytes, same check). */
export const PAYLOAD_IN_CONTAINER = '/var/lib/cloud/instance/btrbk-payload.sh.gz';

/** Parses KEY=value lines of a marker file. */
export function parseMarker(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of String(text).split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** A device's name as the host takes it (user-data/bootstrap.sh checks the same). */
const DEVICE_NAME = /^(?!.*\.\.)(?!selftest$)[a-z0-9][a-z0-9._-]{0,62}$/;

/** The devices of this target (none: the one legacy key), each name checked. */
export function devicesOf(paths: LocalTargetPaths): string[] {
  const devices = paths.devices ?? [];
  for (const d of devices)
    if (!DEVICE_NAME.test(d))
      throw new OperatorError(`device name '${d}' is not allowed`, {
        cause: "names are 1-63 of a-z 0-9 . _ - starting with a letter or digit, without '..', not 'selftest'",
        next: 'fix BTRBK_LOCAL_TARGET_DEVICES or the devices option',
      });
  if (new Set(devices).size !== devices.length)
    throw new OperatorError(`a device is listed twice: ${devices.join(' ')}`);
  return devices;
}

/** Device NAME's key (the .pub next to it goes into the boot script): id_ed25519-NAME beside the target's key. */
export function deviceKey(paths: LocalTargetPaths, name: string): string {
  return path.join(path.dirname(paths.sshKey), `id_ed25519-${name}`);
}

/** Device NAME's connection file: connection-NAME.env beside the target's. */
export function deviceEnvFile(paths: LocalTargetPaths, name: string): string {
  return path.join(path.dirname(paths.envFile), `connection-${name}.env`);
}

/** An ed25519 key pair without a passphrase at `file` (and file.pub). */
export function makeKey(file: string, comment: string): void {
  runOrThrow('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file]);
}

/** Makes the key of every device that has none yet. */
export function ensureDeviceKeys(paths: LocalTargetPaths): void {
  for (const d of devicesOf(paths)) {
    if (fs.existsSync(deviceKey(paths, d))) continue;
    makeKey(deviceKey(paths, d), `btrbk-local-target device ${d}`);
  }
}

/** Writes connection-NAME.env for every device: the target's connection with the device's key, URL and root. */
export function writeDeviceEnvFiles(paths: LocalTargetPaths, state: UpState): void {
  for (const d of devicesOf(paths)) {
    const base = localConnection({
      port: state.port,
      sshKey: deviceKey(paths, d),
      knownHosts: paths.knownHosts,
      volumeId: state.volumeId,
    });
    writeConnection(
      deviceEnvFile(paths, d),
      deviceConnection(base, d),
      `Written by scripts/local-target.mjs up: device ${d} of the local target (its own key: it reaches only ${base.backupRoot}/${d}).`,
    );
  }
}

/** The boot script this target's instance gets: the renderer's output for its volume id, backup key and devices
 * (and, for a test of another deployment's settings, `overrides` such as appendOnly). */
export function renderFor(
  paths: LocalTargetPaths,
  volumeId: string,
  overrides: Partial<Omit<BootScriptSettings, 'volumeId'>> = {},
): string {
  const backupSshPublicKey = fs.readFileSync(`${paths.sshKey}.pub`, 'utf8').trim();
  const devices = devicesOf(paths)
    .map((d) => `${d} ${fs.readFileSync(`${deviceKey(paths, d)}.pub`, 'utf8').trim()}`)
    .join('\n');
  return renderBootScript(
    { volumeId, backupSshPublicKey, ...(devices ? { devices } : {}), ...overrides },
    { payload: 'file', payloadFile: PAYLOAD_IN_CONTAINER },
  );
}

/** True when the running instance was booted with another boot script than the one rendered now. */
export function bootScriptOutdated(paths: LocalTargetPaths): boolean {
  const state = loadState(paths);
  if (!state.volumeId || !fs.existsSync(`${paths.sshKey}.pub`)) return true;
  if (devicesOf(paths).some((d) => !fs.existsSync(`${deviceKey(paths, d)}.pub`))) return true;
  return readText(path.join(paths.root, BOOT_SCRIPT_IN_CONTAINER.slice(1))) !== renderFor(paths, state.volumeId);
}

/** What cloud-init does on AWS: keep the user-data script (and here the host payload) in the instance. */
export function installBootScript(paths: LocalTargetPaths, scriptText: string): void {
  const r = (p: string) => path.join(paths.root, p);
  fs.mkdirSync(path.dirname(r(BOOT_SCRIPT_IN_CONTAINER)), { recursive: true, mode: 0o700 });
  fs.writeFileSync(r(BOOT_SCRIPT_IN_CONTAINER), scriptText, { mode: 0o700 });
  fs.writeFileSync(r(PAYLOAD_IN_CONTAINER), renderHostPayload().gzip, { mode: 0o600 });
}

/** Runs the installed boot script once as root inside the booted container (its log in paths.bootLog and the
 * container's cloud-init log); an OperatorError, with the log's end, when it fails. */
export async function runBootScript(
  paths: LocalTargetPaths,
  leader: number,
  onProgress: (line: string) => void,
): Promise<void> {
  const result = await run(
    'nsenter',
    nsenterArgs(leader, [
      '/bin/bash',
      '-o',
      'pipefail',
      '-c',
      `/bin/bash ${BOOT_SCRIPT_IN_CONTAINER} 2>&1 | tee -a ${CLOUD_INIT_LOG}`,
    ]),
    {
      onLine: (line) => {
        if (/btrbk-backup-host\[[a-z]+\]: (==|changed:|ERROR|WARNING|btrbk-backup-host:)/.test(line))
          onProgress(`  ${line.replace(/^\S+ /, '')}`);
      },
    },
  );
  const bootOutput = logOf(result);
  fs.writeFileSync(paths.bootLog, bootOutput, { mode: 0o600 });
  const ready = readText(path.join(paths.root, READY_MARKER.slice(1)));
  if (result.status !== 0 || !ready) {
    const failed = parseMarker(readText(path.join(paths.root, FAILED_MARKER.slice(1))) ?? '');
    throw new OperatorError(
      `the boot script failed in the local target${failed.step ? ` at step '${failed.step}'` : ''}`,
      {
        details: bootOutput.trimEnd().split('\n').slice(-25).join('\n'),
        cause: 'see the log above (whole log: ' + paths.bootLog + ')',
        next: 'fix the cause, then run up again; the volume image is kept',
      },
    );
  }
}

/** Runs the (already rendered) boot script inside the running container again. */
export async function rerunBootScript(opts: TargetOptions = {}): Promise<{ status: number | null; output: string }> {
  const r = containerExec(runningLeader(pathsOf(opts)), ['/bin/bash', BOOT_SCRIPT_IN_CONTAINER], { timeout: 600000 });
  return { status: r.status, output: r.output };
}
