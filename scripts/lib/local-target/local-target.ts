// The local target: the real boot script, run in a Debian 12 (or 13) container on this machine, on a loop-device "EBS
// volume", serving sshd on a loopback port. It stands in for the AWS instance in the demo and the tests.
//
// How `up` works (see docs/LOCAL-TARGET.md):
//   1. a Debian 12 (or 13) rootfs is built once with debootstrap and cached outside the repo (rootfs-bookworm-*);
//   2. each `up` is a fresh instance: an overlay mount (cached rootfs read-only below, an empty upper dir) that
//      gets new host keys and a local-target-only sshd drop-in (port, 127.0.0.1);
//   3. the volume is a sparse image attached with losetup, bound into the container at the by-id name an EBS
//      volume has on a Nitro instance (and at its /dev/loopN name);
//   4. systemd-nspawn boots the container (systemd inside, like on a host; --register=no --keep-unit because
//      this machine runs no systemd/machined);
//   5. the boot script, rendered exactly as the stack renders it, runs as root inside (nsenter into the
//      container's namespaces), like cloud-init would run it;
//   6. the host key is pinned into known_hosts and local_connection.env is written.
// This file holds up, down and status and re-exports the API; the steps live next to it, one job each: paths.ts,
// lock.ts, prerequisites.ts, rootfs.ts, volume.ts, container.ts, boot-script.ts, local-connection.ts, system.ts.
import fs from 'node:fs';
import path from 'node:path';
import { parseMountinfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { FAILED_MARKER, MOUNT_POINT, READY_MARKER } from '../../../user-data/host-layout.js';
import {
  bootScriptOutdated,
  ensureDeviceKeys,
  installBootScript,
  makeKey,
  parseMarker,
  renderFor,
  runBootScript,
  writeDeviceEnvFiles,
} from './boot-script.js';
import {
  keepDownloadedDebs,
  leaderPid,
  nspawnPid,
  prepareInstance,
  startContainer,
  stopAndClean,
  targetNspawnArgs,
} from './container.js';
import { DEFAULT_PORT, portFree, sshBanner, writeEnvFile } from './local-connection.js';
import { withLock } from './lock.js';
import {
  isUpState,
  loadState,
  pathsOf,
  releasePaths,
  saveState,
  type LocalTargetPaths,
  type TargetOptions,
  type UpState,
} from './paths.js';
import { assertPrerequisites } from './prerequisites.js';
import { DEFAULT_RELEASE, ensureRootfs, parseTargetRelease, targetRootfsSpec, type TargetRelease } from './rootfs.js';
import { isMountPoint, readText, waitFor } from './system.js';
import { attachVolume, ensureVolumeImage, loopDevicesOf, newVolumeId } from './volume.js';
import { applyLimits, containerPids, limitsFor, readLimits, removeGroup, shapeLink, type LinkShape } from './limits.js';

// The public API, whichever file holds each part.
export {
  BOOT_SCRIPT_IN_CONTAINER,
  deviceEnvFile,
  deviceKey,
  installBootScript,
  PAYLOAD_IN_CONTAINER,
  parseMarker,
  renderFor,
  rerunBootScript,
} from './boot-script.js';
export { containerExec, execInTarget, localSshdDropin } from './container.js';
export { DEFAULT_PORT, localConnection, sshBanner } from './local-connection.js';
export { CONTAINER_NAME, localTargetPaths, type Env, type LocalTargetPaths, type TargetOptions } from './paths.js';
export { missingPrerequisites } from './prerequisites.js';
export {
  ensureRootfs,
  MIRROR,
  ROOTFS_PACKAGES,
  rootfsStamp,
  SUITE,
  TARGET_RELEASES,
  TARGET_ROOTFS,
  type RootfsSpec,
  type TargetRelease,
} from './rootfs.js';
export { DEFAULT_VOLUME_SIZE, ebsByIdPath, newVolumeId, parseVolumeSize } from './volume.js';
export {
  groupCpuSeconds,
  kernelThreadCpuSeconds,
  parseLinkShape,
  systemBusySeconds,
  type LinkShape,
} from './limits.js';

export interface LocalTargetStatus {
  running: boolean;
  /** The Debian release the instance runs (or ran last). */
  release: TargetRelease;
  /** Running, the boot script finished (ready marker, no failed marker), the volume mounted and sshd answering. */
  healthy: boolean;
  nspawnPid: number | null;
  /** The container's PID 1 as seen from this machine. */
  leaderPid: number | null;
  port: number | null;
  sshBanner: string | null;
  volumeId: string | null;
  volumeImage: string | null;
  volumeBytes: number | null;
  loopDevices: string[];
  instanceMounted: boolean;
  /** /backup_volume is mounted inside the container. */
  mounted: boolean;
  mount: { fstype: string; source: string } | null;
  /** The boot script's ready and failed marker files, parsed (parseMarker). */
  boot: { ready: Record<string, string> | null; failed: Record<string, string> | null };
  envFile: string | null;
  stateDir: string;
  consoleLog: string;
  bootLog: string;
  /** The instance type whose limits the container runs under (up --limits), and the limits its cgroup has now. */
  limits: {
    type: string | null;
    cpuQuotaUs: number | null;
    cpuPeriodUs: number | null;
    memoryBytes: number | null;
  } | null;
  /** The shaped link to the sshd port (up --link), if any. */
  link: LinkShape | null;
}

export interface UpTimings {
  rootfsSeconds?: number;
  bootSeconds?: number;
  bootScriptSeconds?: number;
  totalSeconds?: number;
}

export interface UpResult extends LocalTargetStatus {
  /** A running, healthy target was left as it was. */
  alreadyUp: boolean;
  timings: UpTimings;
}

export interface DownResult {
  wasRunning: boolean;
  purged: boolean;
  volumeImage: string;
  volumeKept: boolean;
  seconds: number;
}

export interface UpOptions extends TargetOptions {
  /** The sshd port on 127.0.0.1 (default: the last one used, else DEFAULT_PORT). */
  port?: number;
  /** Size of a new volume image, e.g. 2G (an existing image is kept as it is). */
  volumeSize?: string;
  /** An instance type: run the container under its CPU baseline and memory (null: lift them). Applied after the boot script. */
  limits?: string | null;
  /** Shape the link to the sshd port (null: unshape). */
  link?: LinkShape | null;
  /** The Debian release to run (default: the one the target ran last, else 12); a change replaces the instance. */
  release?: TargetRelease | string;
  /** Devices with a key each (default: BTRBK_LOCAL_TARGET_DEVICES, else none); a change replaces the instance. */
  devices?: string[];
  onProgress?: (line: string) => void;
}

export interface DownOptions extends TargetOptions {
  /** Also delete the volume image (its backups), the volume id and the connection file. */
  purge?: boolean;
  onProgress?: (line: string) => void;
}

/** Brings the local target up. Idempotent: a running, healthy target is left as it is. */
export async function up(opts: UpOptions = {}): Promise<UpResult> {
  const { onProgress = () => {} } = opts;
  const given = pathsOf(opts);
  const paths = {
    ...(opts.release
      ? { ...given, ...releasePaths(given.cacheDir, parseTargetRelease(String(opts.release)), given.preloaded) }
      : given),
    ...(opts.devices ? { devices: opts.devices } : {}),
  };
  assertPrerequisites();
  return withLock(paths, async () => {
    const timings: UpTimings = {};
    const t0 = Date.now();
    const before = await status({ paths });
    if (before.running && before.healthy) {
      // On AWS a changed boot script gives a new instance (user_data_replace_on_change); so here.
      const running = loadState(paths);
      // (a healthy target has both: its sshd answered on the state's port, and bootScriptOutdated needs the volume id)
      const ranRelease = running.release ?? DEFAULT_RELEASE;
      if (!bootScriptOutdated(paths) && isUpState(running) && ranRelease === paths.release) {
        // a checkout other than the one that started it (CI's fresh clone) gets its connection file too
        writeEnvFile(paths, running);
        writeDeviceEnvFiles(paths, running);
        if (opts.limits !== undefined || opts.link !== undefined) {
          setLimits({ paths, limits: opts.limits, link: opts.link, onProgress });
          return { ...(await status({ paths })), alreadyUp: true, timings };
        }
        return { ...before, envFile: paths.envFile, alreadyUp: true, timings };
      }
      onProgress(
        ranRelease === paths.release
          ? 'the boot script changed since this instance started: replacing the instance (the volume is kept)'
          : `Debian ${ranRelease} -> ${paths.release}: replacing the instance (the volume is kept)`,
      );
      await stopAndClean(paths, { onProgress });
      liftLimits(paths);
    } else if (before.running || before.loopDevices.length || before.instanceMounted) {
      onProgress('a previous instance is half up: cleaning it up first');
      await stopAndClean(paths, { onProgress });
    }
    const rootfs = await ensureRootfs({ paths, spec: targetRootfsSpec(paths.release, paths.preloaded), onProgress });
    timings.rootfsSeconds = rootfs.seconds;

    const saved = loadState(paths);
    const port = Number(opts.port ?? paths.port ?? saved.port ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new OperatorError(`port ${opts.port} is not a TCP port`, {
        next: 'give --port with a number from 1024 to 65535',
      });
    if (!(await portFree(port))) {
      throw new OperatorError(`port ${port} on 127.0.0.1 is in use`, {
        cause: 'another sshd or local target listens there',
        next: `free it, or choose another: npx zx scripts/local-target.mjs up --port ${port + 1}`,
      });
    }
    const state: UpState = {
      ...saved,
      volumeId: saved.volumeId || newVolumeId(),
      port,
      release: paths.release,
      ...(paths.devices ? { devices: paths.devices } : {}),
    };
    saveState(paths, state);

    if (!fs.existsSync(paths.sshKey)) {
      makeKey(paths.sshKey, 'btrbk-local-target backup key');
    }
    ensureDeviceKeys(paths);
    const scriptText = renderFor(paths, state.volumeId);
    ensureVolumeImage(paths, { volumeSize: opts.volumeSize, volumeId: state.volumeId, onProgress });

    try {
      const loop = attachVolume(paths);
      prepareInstance(paths, { port });
      installBootScript(paths, scriptText);
      const t1 = Date.now();
      onProgress(
        `booting the container (systemd-nspawn, volume ${state.volumeId} on ${loop}, sshd on 127.0.0.1:${port}) ...`,
      );
      const leader = await startContainer(paths, targetNspawnArgs(paths, { loop, volumeId: state.volumeId }));
      timings.bootSeconds = (Date.now() - t1) / 1000;

      const t2 = Date.now();
      onProgress('running the boot script inside (as cloud-init would) ...');
      await runBootScript(paths, leader, onProgress);
      timings.bootScriptSeconds = (Date.now() - t2) / 1000;
      keepDownloadedDebs(paths);

      const hostKey = fs
        .readFileSync(path.join(paths.root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')
        .trim()
        .split(/\s+/)
        .slice(0, 2)
        .join(' ');
      fs.writeFileSync(paths.knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
      const banner = await waitFor(() => sshBanner(port), 20000, 300);
      if (!banner)
        throw new OperatorError(`sshd in the container does not answer on 127.0.0.1:${port}`, {
          next: `see ${paths.consoleLog}`,
        });
      writeEnvFile(paths, state);
      writeDeviceEnvFiles(paths, state);
      timings.totalSeconds = (Date.now() - t0) / 1000;
      state.lastUp = new Date().toISOString();
      saveState(paths, state);
      // after the boot script (on AWS it runs on launch credits): from here on, the instance type's limits
      if (opts.limits || opts.link) setLimits({ paths, limits: opts.limits, link: opts.link, onProgress });
      return { ...(await status({ paths })), alreadyUp: false, timings };
    } catch (err) {
      onProgress('up failed: cleaning up (nothing stays mounted or attached)');
      try {
        await stopAndClean(paths, { onProgress });
      } catch (cleanErr) {
        onProgress(`cleanup: ${cleanErr instanceof Error ? cleanErr.message : String(cleanErr)}`);
      }
      throw err;
    }
  });
}

/** Stops the container, unmounts everything and detaches the volume. The volume image stays unless purge. */
export async function down(opts: DownOptions = {}): Promise<DownResult> {
  const { purge = false, onProgress = () => {} } = opts;
  const paths = pathsOf(opts);
  assertPrerequisites();
  return withLock(paths, async () => {
    const t0 = Date.now();
    const wasRunning = Boolean(nspawnPid(paths));
    await stopAndClean(paths, { onProgress });
    liftLimits(paths);
    let purged = false;
    if (purge) {
      fs.rmSync(paths.volumeImage, { force: true });
      const state = loadState(paths);
      delete state.volumeId;
      saveState(paths, state);
      fs.rmSync(paths.envFile, { force: true });
      purged = true;
    }
    return {
      wasRunning,
      purged,
      volumeImage: paths.volumeImage,
      volumeKept: fs.existsSync(paths.volumeImage),
      seconds: (Date.now() - t0) / 1000,
    };
  });
}

/** What the local target is doing now. Reads only; never changes anything. */
export async function status(opts: TargetOptions = {}): Promise<LocalTargetStatus> {
  const paths = pathsOf(opts);
  const state = loadState(paths);
  const pid = nspawnPid(paths);
  const leader = leaderPid(pid);
  const instanceMounted = isMountPoint(paths.root);
  let mounted = false;
  let mount: LocalTargetStatus['mount'] = null;
  if (leader) {
    const m = parseMountinfo(readText(`/proc/${leader}/mountinfo`) ?? '').find((x) => x.mountPoint === MOUNT_POINT);
    if (m) {
      mounted = true;
      mount = { fstype: m.fstype, source: m.source };
    }
  }
  const readMarker = (p: string) => (instanceMounted ? readText(path.join(paths.root, p.slice(1))) : null);
  const readyText = readMarker(READY_MARKER);
  const failedText = readMarker(FAILED_MARKER);
  const port = state.port ?? null;
  const running = Boolean(pid && leader);
  const ready = readyText ? parseMarker(readyText) : null;
  // a quick look first; a target that is otherwise up gets a second, longer one (a loaded machine's sshd can take
  // more than 1.5 s to print its banner, and "not healthy" would make `up` rebuild a good target)
  let banner = leader && port ? await sshBanner(port, { timeoutMs: 1500 }) : null;
  if (!banner && port && running && ready && !failedText && mounted)
    banner = await sshBanner(port, { timeoutMs: 6000 });
  return {
    running,
    release: state.release ?? DEFAULT_RELEASE,
    healthy: Boolean(running && ready && !failedText && mounted && banner),
    nspawnPid: pid,
    leaderPid: leader,
    port,
    sshBanner: banner,
    volumeId: state.volumeId ?? null,
    volumeImage: fs.existsSync(paths.volumeImage) ? paths.volumeImage : null,
    volumeBytes: fs.existsSync(paths.volumeImage) ? fs.statSync(paths.volumeImage).size : null,
    loopDevices: loopDevicesOf(paths.volumeImage),
    instanceMounted,
    mounted,
    mount,
    boot: { ready, failed: failedText ? parseMarker(failedText) : null },
    envFile: fs.existsSync(paths.envFile) ? paths.envFile : null,
    stateDir: paths.stateDir,
    consoleLog: paths.consoleLog,
    bootLog: paths.bootLog,
    limits:
      running && state.limits !== undefined
        ? {
            type: state.limits ?? null,
            ...(readLimits(paths.name) ?? { cpuQuotaUs: null, cpuPeriodUs: null, memoryBytes: null }),
          }
        : null,
    link: running ? (state.link ?? null) : null,
  };
}

/**
 * Puts the running container under an instance type's limits (limits: the type; null lifts them, undefined
 * keeps them) and shapes its sshd port's link (link: the shape; null unshapes; undefined keeps it).
 * The container's processes stay in their cgroup either way, so the bench can count their CPU.
 */
export function setLimits(
  opts: TargetOptions & { limits?: string | null; link?: LinkShape | null; onProgress?: (line: string) => void },
): void {
  const paths = pathsOf(opts);
  const { onProgress = () => {} } = opts;
  const pid = nspawnPid(paths);
  const leader = leaderPid(pid);
  if (!leader)
    throw new OperatorError('the local target is not running', { next: 'npx zx scripts/local-target.mjs up' });
  const state = loadState(paths);
  if (opts.limits !== undefined) {
    const limits = opts.limits ? limitsFor(opts.limits) : null;
    applyLimits(paths.name, containerPids(leader, pid), limits);
    onProgress(
      limits
        ? `limits of ${limits.type}: CPU ${limits.cpuQuotaUs}/${limits.cpuPeriodUs} µs per period (${((100 * limits.cpuQuotaUs) / limits.cpuPeriodUs).toFixed(0)} % of one core), memory ${limits.memoryBytes / 2 ** 20} MiB`
        : 'no CPU or memory limits',
    );
    state.limits = opts.limits ?? null;
  }
  if (opts.link !== undefined) {
    if (!isUpState(state))
      throw new OperatorError('the local target has no port yet', { next: 'npx zx scripts/local-target.mjs up' });
    shapeLink(state.port, opts.link);
    onProgress(
      opts.link
        ? `link to 127.0.0.1:${state.port} shaped: ${opts.link.rateMbit} Mbit/s, ${opts.link.rttMs} ms round trip`
        : 'link unshaped',
    );
    state.link = opts.link ?? null;
  }
  saveState(paths, state);
}

/** After the container stopped: its cgroup and link shape go. */
function liftLimits(paths: LocalTargetPaths): void {
  const state = loadState(paths);
  removeGroup(paths.name);
  if (state.link && isUpState(state)) {
    try {
      shapeLink(state.port, null);
    } catch {
      /* someone else's qdisc now: left alone */
    }
  }
  delete state.limits;
  delete state.link;
  saveState(paths, state);
}
