// The laptop: a second container on this machine that plays the person's laptop in the tests and the demo. Debian
// 13 (trixie: a newer btrbk, btrfs-progs and systemd than the Debian 12 target, the mix people will have) booted
// with systemd-nspawn like the target (rootfs.ts, container.ts, volume.ts), with
//   - its own disk: a sparse image on a loop device holding a btrfs (made once, with the subvolumes home and srv)
//     that is mounted noatime at /mnt/laptop inside; it survives down (down --purge deletes it);
//   - the project directory (and the node_modules it links to) bound read-only at the same path, so
//     `node_modules/.bin/zx scripts/backup.mjs ...` runs inside with trixie's own node;
//   - its own network namespace (only lo) with an "uplink" to the local target: laptop-uplink.service inside
//     forwards 127.0.0.1:PORT to a unix socket bound in from here, where a socat of this machine forwards to the
//     target's sshd on 127.0.0.1:PORT. `network down` stops that unit: the laptop is then offline (connection
//     refused) while this machine and the target are untouched;
//   - the connection file, the backup key and the pinned known_hosts copied in (a person's laptop holds them), at
//     LAPTOP_ENV_FILE.
// Each up is a fresh OS (an overlay over the cached rootfs, like the target): what install wrote under /etc is gone
// after down; the disk is not.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { parseMountinfo } from '../core/btrfs-output.js';
import { readConnection, REPO_ROOT, resolveEnvFile, writeConnection, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { runSync, startDetached, type RunResult } from '../core/process.js';
import {
  containerExec,
  leaderPid,
  nsenterArgs,
  nspawnPid,
  prepareOverlay,
  runningLeader,
  startContainer,
  stopAndClean,
} from './container.js';
import { sshBanner } from './local-connection.js';
import { withLock } from './lock.js';
import { localTargetPaths, type ContainerPaths, type Env } from './paths.js';
import { assertPrerequisites } from './prerequisites.js';
import { ensureRootfs, rootfsDir, type RootfsSpec } from './rootfs.js';
import { isMountPoint, pidAlive, readText, runOrThrow, waitFor } from './system.js';
import { attachVolume, detachVolume, ensureVolumeImage, loopDevicesOf } from './volume.js';

export const LAPTOP_NAME = 'btrbk-laptop';
/** What the laptop gets beyond minbase: the backup engine and what the backup command runs on. */
export const LAPTOP_ROOTFS: RootfsSpec = Object.freeze({
  suite: 'trixie',
  release: 'Debian 13 (laptop)',
  packages: Object.freeze([
    'systemd',
    'systemd-sysv',
    'dbus',
    'btrbk',
    'btrfs-progs',
    'openssh-client',
    'nodejs',
    'iproute2',
    'socat',
    'mbuffer',
    'zstd',
    'util-linux',
    'mount',
    'procps',
    'passwd',
    'man-db',
  ]),
});
/** Where the laptop's disk (its btrfs top level) is mounted inside, and the subvolumes a new disk gets. */
export const LAPTOP_DISK_MOUNT = '/mnt/laptop';
export const LAPTOP_SUBVOLUMES = Object.freeze(['home', 'srv']);
export const DEFAULT_DISK_SIZE = '1G';
/** Where the person's connection file, backup key and known_hosts are inside the laptop. */
export const LAPTOP_SECRETS_DIR = '/root/btrbk-aws';
export const LAPTOP_ENV_FILE = `${LAPTOP_SECRETS_DIR}/connection.env`;
export const UPLINK_UNIT = 'laptop-uplink.service';
const UPLINK_DIR_INSIDE = '/run/laptop-uplink';
const UPLINK_SOCKET = 'target.sock';

export interface LaptopPaths extends ContainerPaths {
  /** Holds the unix socket the laptop's uplink reaches this machine through (bound into the laptop). */
  uplinkDir: string;
  /** The pid of this machine's socat end of the uplink. */
  uplinkPidFile: string;
  uplinkLog: string;
}

/** What survives a laptop instance in its state.json. */
export interface LaptopState {
  /** The target's sshd port on 127.0.0.1, which the uplink forwards. */
  port?: number;
  /** The connection file the laptop was given. */
  envFile?: string;
}

/** Where the laptop's files live: its own state dir (BTRBK_LAPTOP_STATE) and name (BTRBK_LAPTOP_NAME); the rootfs
 * cache is the target's. */
export function laptopPaths(env: Env = process.env): LaptopPaths {
  const { cacheDir } = localTargetPaths(env);
  const home = env.HOME || '/root';
  const stateDir =
    env.BTRBK_LAPTOP_STATE ||
    path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'btrbk-aws-target', 'laptop');
  const instance = path.join(stateDir, 'instance');
  return {
    name: env.BTRBK_LAPTOP_NAME || LAPTOP_NAME,
    cacheDir,
    rootfs: rootfsDir(cacheDir, LAPTOP_ROOTFS),
    aptArchives: path.join(cacheDir, `apt-archives-${LAPTOP_ROOTFS.suite}`),
    stateDir,
    stateFile: path.join(stateDir, 'state.json'),
    lockFile: path.join(stateDir, 'lock'),
    volumeImage: path.join(stateDir, 'disk.img'),
    consoleLog: path.join(stateDir, 'console.log'),
    pidFile: path.join(stateDir, 'nspawn.pid'),
    upper: path.join(instance, 'upper'),
    work: path.join(instance, 'work'),
    root: path.join(instance, 'root'),
    uplinkDir: path.join(stateDir, 'uplink'),
    uplinkPidFile: path.join(stateDir, 'uplink.pid'),
    uplinkLog: path.join(stateDir, 'uplink.log'),
  };
}

/** The connection file as the laptop holds it: the same target, the key and known_hosts at their laptop paths.
 * The laptop reaches only a target on this machine's loopback (the local target). */
export function laptopConnection(conn: Connection, source = 'the connection file'): Connection {
  if (conn.host !== '127.0.0.1') {
    throw new OperatorError(`the laptop container reaches only the local target; ${source} names ${conn.host}`, {
      next: 'bring the local target up (npx zx scripts/local-target.mjs up) and give its file: laptop up --env local_connection.env',
    });
  }
  return {
    ...conn,
    keyFile: `${LAPTOP_SECRETS_DIR}/id_ed25519`,
    knownHostsFile: `${LAPTOP_SECRETS_DIR}/known_hosts`,
  };
}

/** The unit inside the laptop that is its network: 127.0.0.1:port forwarded to the unix socket of this machine. */
export function uplinkUnit(port: number): string {
  return [
    "# laptop container only (scripts/lib/local-target/laptop.ts): the laptop's link to the local target.",
    '# `systemctl stop laptop-uplink` takes the laptop offline; start brings it back.',
    '[Unit]',
    'Description=Laptop uplink to the local target (127.0.0.1:' + port + ')',
    'Before=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    `ExecStart=/usr/bin/socat TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${UPLINK_DIR_INSIDE}/${UPLINK_SOCKET}`,
    'Restart=on-failure',
    "# `network down` is this unit's stop: a socat child that outlived SIGTERM held it for systemd's default 90 s",
    'TimeoutStopSec=3',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The directories bound read-only into the laptop at their own paths: the project and, when node_modules is a
 * link out of it (a git worktree), what it links to. */
export function projectBinds(projectDir: string, realpath: (p: string) => string = fs.realpathSync): string[] {
  const binds = [projectDir];
  let modules: string | null = null;
  try {
    modules = realpath(path.join(projectDir, 'node_modules'));
  } catch {
    /* none */
  }
  if (modules && !modules.startsWith(`${projectDir}/`)) binds.push(modules);
  return binds;
}

/** The laptop's own systemd-nspawn arguments: a private network, its disk's loop device, the uplink socket's
 * directory, the project read-only. */
export function laptopNspawnArgs(paths: LaptopPaths, { loop, binds }: { loop: string; binds: string[] }): string[] {
  return [
    '--private-network',
    `--bind=${loop}`,
    `--bind=${paths.uplinkDir}:${UPLINK_DIR_INSIDE}`,
    ...binds.map((b) => `--bind-ro=${b}`),
  ];
}

/** This machine's end of the uplink (socat), or null. */
function uplinkPid(paths: LaptopPaths): number | null {
  const pid = Number((readText(paths.uplinkPidFile) ?? '').trim());
  if (!pidAlive(pid)) return null;
  return path.basename((readText(`/proc/${pid}/cmdline`) ?? '').split('\0')[0] ?? '') === 'socat' ? pid : null;
}

function startUplink(paths: LaptopPaths, port: number): void {
  fs.mkdirSync(paths.uplinkDir, { recursive: true, mode: 0o700 });
  const log = fs.openSync(paths.uplinkLog, 'w', 0o600);
  const pid = startDetached(
    'socat',
    [`UNIX-LISTEN:${path.join(paths.uplinkDir, UPLINK_SOCKET)},fork,unlink-early,mode=600`, `TCP:127.0.0.1:${port}`],
    { logFd: log },
  );
  fs.closeSync(log);
  fs.writeFileSync(paths.uplinkPidFile, `${pid}\n`);
}

async function stopUplink(paths: LaptopPaths): Promise<void> {
  const pid = uplinkPid(paths);
  if (pid) {
    process.kill(pid, 'SIGTERM');
    await waitFor(() => !pidAlive(pid), 5000, 100);
  }
  fs.rmSync(paths.uplinkPidFile, { force: true });
  fs.rmSync(paths.uplinkDir, { recursive: true, force: true });
}

function loadLaptopState(paths: LaptopPaths): LaptopState {
  const text = readText(paths.stateFile);
  return text ? (JSON.parse(text) as LaptopState) : {};
}

/** Makes the btrfs of a new disk image, with its subvolumes. Only ever called on an image created just now. */
function formatNewDisk(paths: LaptopPaths, loop: string): void {
  runOrThrow('mkfs.btrfs', ['-q', '-L', 'laptop', loop]);
  const mnt = path.join(paths.stateDir, 'mkfs-mnt');
  fs.mkdirSync(mnt, { recursive: true });
  runOrThrow('mount', [loop, mnt]);
  try {
    for (const sub of LAPTOP_SUBVOLUMES) runOrThrow('btrfs', ['-q', 'subvolume', 'create', path.join(mnt, sub)]);
  } finally {
    runOrThrow('umount', [mnt]);
    fs.rmdirSync(mnt);
  }
}

/** Writes the laptop's own files into its fresh root: the uplink unit (enabled) and the person's connection. */
function furnish(
  paths: LaptopPaths,
  { port, conn, envFile }: { port: number; conn: Connection; envFile: string },
): void {
  const r = (p: string) => path.join(paths.root, p.replace(/^\//, ''));
  fs.writeFileSync(r(`/etc/systemd/system/${UPLINK_UNIT}`), uplinkUnit(port));
  fs.mkdirSync(r('/etc/systemd/system/multi-user.target.wants'), { recursive: true });
  fs.symlinkSync(`/etc/systemd/system/${UPLINK_UNIT}`, r(`/etc/systemd/system/multi-user.target.wants/${UPLINK_UNIT}`));
  fs.mkdirSync(r(LAPTOP_SECRETS_DIR), { recursive: true, mode: 0o700 });
  const laptop = laptopConnection(conn, envFile);
  fs.copyFileSync(conn.keyFile, r(laptop.keyFile));
  fs.chmodSync(r(laptop.keyFile), 0o600);
  if (fs.existsSync(`${conn.keyFile}.pub`)) fs.copyFileSync(`${conn.keyFile}.pub`, r(`${laptop.keyFile}.pub`));
  if (conn.knownHostsFile) fs.copyFileSync(conn.knownHostsFile, r(laptop.knownHostsFile));
  writeConnection(
    r(LAPTOP_ENV_FILE),
    laptop,
    `Copied into the laptop container by scripts/local-target.mjs laptop up from ${envFile}.`,
  );
}

/** Runs argv as root inside the running laptop (in cwd, default the project directory). */
export function laptopExec(
  argv: string[],
  {
    paths = laptopPaths(),
    cwd = REPO_ROOT,
    input,
    timeout,
  }: { paths?: LaptopPaths; cwd?: string; input?: string; timeout?: number } = {},
): RunResult {
  return containerExec(laptopLeader(paths), argv, { cwd, input, timeout });
}

/** nsenter's arguments that run argv inside the running laptop (for a caller that wants its own stdio). */
export function laptopExecArgs(
  argv: string[],
  { paths = laptopPaths(), cwd = REPO_ROOT }: { paths?: LaptopPaths; cwd?: string } = {},
): string[] {
  return nsenterArgs(laptopLeader(paths), argv, { cwd });
}

function laptopLeader(paths: LaptopPaths): number {
  return runningLeader(paths, { what: 'the laptop container', next: 'npx zx scripts/local-target.mjs laptop up' });
}

/** Whether the laptop reaches the target's sshd through its uplink: the first bytes of the SSH banner, or null. */
export function laptopReachesTarget(port: number, paths: LaptopPaths = laptopPaths()): string | null {
  const r = laptopExec(['timeout', '5', 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port} && head -n 1 <&3`], {
    paths,
    cwd: '/',
  });
  return r.status === 0 && r.stdout.startsWith('SSH-') ? r.stdout.trim() : null;
}

/** Takes the laptop offline (down) or back online (up) by stopping or starting its uplink unit; resolves once the
 * target's port is unreachable, or answers, from inside the laptop. */
export async function laptopNetwork(state: 'up' | 'down', paths: LaptopPaths = laptopPaths()): Promise<void> {
  const next = `look at: npx zx scripts/local-target.mjs laptop exec -- systemctl status ${UPLINK_UNIT}`;
  const r = laptopExec(['systemctl', state === 'up' ? 'start' : 'stop', UPLINK_UNIT], { paths, cwd: '/' });
  if (r.status !== 0)
    throw new OperatorError(`could not take the laptop's network ${state}`, { details: r.output, next });
  const port = loadLaptopState(paths).port;
  if (!port) return;
  // (the unit is Type=simple: start returns before socat listens)
  const done = await waitFor(
    () => ((laptopReachesTarget(port, paths) !== null) === (state === 'up') ? true : null),
    10000,
    200,
  );
  if (!done)
    throw new OperatorError(
      `the laptop's network is not ${state} 10 s after ${state === 'up' ? 'starting' : 'stopping'} ${UPLINK_UNIT}`,
      {
        cause:
          state === 'up'
            ? "the local target is not up, or this machine's end of the uplink has stopped"
            : 'something else listens on that port inside the laptop',
        next,
      },
    );
}

export interface LaptopStatus {
  running: boolean;
  /** Running, its disk mounted, this machine's end of the uplink running (the unit inside may be stopped on
   * purpose: `network down`). */
  healthy: boolean;
  name: string;
  leaderPid: number | null;
  diskImage: string | null;
  diskBytes: number | null;
  loopDevices: string[];
  /** The laptop's disk is mounted at LAPTOP_DISK_MOUNT inside. */
  diskMounted: boolean;
  /** The target port the uplink forwards, and whether this machine's end and the unit inside run. */
  port: number | null;
  uplink: { host: boolean; unit: boolean };
  envFile: string | null;
  stateDir: string;
  consoleLog: string;
}

/** What the laptop is doing now. Reads only. */
export function laptopStatus(paths: LaptopPaths = laptopPaths()): LaptopStatus {
  const state = loadLaptopState(paths);
  const leader = leaderPid(nspawnPid(paths));
  const diskMounted = Boolean(
    leader &&
    parseMountinfo(readText(`/proc/${leader}/mountinfo`) ?? '').some(
      (m) => m.mountPoint === LAPTOP_DISK_MOUNT && m.fstype === 'btrfs',
    ),
  );
  const unit = Boolean(
    leader && containerExec(leader, ['systemctl', 'is-active', '--quiet', UPLINK_UNIT]).status === 0,
  );
  const host = Boolean(uplinkPid(paths));
  const image = fs.existsSync(paths.volumeImage);
  return {
    running: Boolean(leader),
    healthy: Boolean(leader && diskMounted && host),
    name: paths.name,
    leaderPid: leader,
    diskImage: image ? paths.volumeImage : null,
    diskBytes: image ? fs.statSync(paths.volumeImage).size : null,
    loopDevices: loopDevicesOf(paths.volumeImage),
    diskMounted,
    port: state.port ?? null,
    uplink: { host, unit },
    envFile: leader ? LAPTOP_ENV_FILE : null,
    stateDir: paths.stateDir,
    consoleLog: paths.consoleLog,
  };
}

export interface LaptopUpOptions {
  paths?: LaptopPaths;
  /** The target's connection file (default: --env rules, BTRBK_ENV_FILE, else the local target's). */
  envFile?: string;
  /** Size of a new disk image (an existing one is kept as it is). */
  diskSize?: string;
  onProgress?: (line: string) => void;
}

/** Brings the laptop up. A running, healthy laptop is left as it is. */
export async function laptopUp(
  opts: LaptopUpOptions = {},
): Promise<LaptopStatus & { alreadyUp: boolean; seconds: number }> {
  const { paths = laptopPaths(), onProgress = () => {} } = opts;
  assertPrerequisites();
  if (runSync('socat', ['-V']).error)
    throw new OperatorError('socat is missing on this machine', {
      cause: "the laptop container's link to the local target is a socat",
      next: 'sudo apt-get install -y socat (node scripts/ensure-deps.mjs demo does it as root)',
    });
  return withLock(paths, async () => {
    const t0 = Date.now();
    const before = laptopStatus(paths);
    if (before.healthy) return { ...before, alreadyUp: true, seconds: 0 };
    if (before.running || before.loopDevices.length || isMountPoint(paths.root) || uplinkPid(paths)) {
      onProgress('a previous laptop instance is half up: cleaning it up first');
      await stopUplink(paths);
      await stopAndClean(paths, { onProgress });
    }
    const envFile = opts.envFile
      ? path.resolve(opts.envFile)
      : process.env.BTRBK_ENV_FILE
        ? resolveEnvFile()
        : localTargetPaths().envFile;
    const conn = readConnection(envFile);
    laptopConnection(conn, envFile); // the target must be on this machine: say so before building anything
    const { port } = conn;
    const unreachable = (where: string, log: boolean) =>
      new OperatorError(`the laptop does not reach the target's sshd on 127.0.0.1:${port}${where}`, {
        cause: 'the local target is not up, or its port changed since this connection file was written',
        next: `npx zx scripts/local-target.mjs status (and up); then laptop up again${log ? `; see ${paths.uplinkLog}` : ''}`,
      });
    if (!(await sshBanner(port))) throw unreachable(' (nothing answers there on this machine)', false);
    await ensureRootfs({ paths, spec: LAPTOP_ROOTFS, onProgress });
    fs.writeFileSync(paths.stateFile, `${JSON.stringify({ port, envFile } satisfies LaptopState, null, 2)}\n`, {
      mode: 0o600,
    });
    const newDisk = !fs.existsSync(paths.volumeImage);
    ensureVolumeImage(paths, {
      volumeSize: opts.diskSize ?? DEFAULT_DISK_SIZE,
      volumeId: 'the laptop disk',
      onProgress,
    });
    try {
      const loop = attachVolume(paths);
      if (newDisk) {
        onProgress(`making the laptop disk's btrfs with the subvolumes ${LAPTOP_SUBVOLUMES.join(', ')}`);
        formatNewDisk(paths, loop);
      }
      prepareOverlay(paths);
      furnish(paths, { port, conn, envFile });
      startUplink(paths, port);
      onProgress(
        `booting the laptop (Debian 13, systemd-nspawn; disk on ${loop} at ${LAPTOP_DISK_MOUNT}; target at 127.0.0.1:${port} through its uplink) ...`,
      );
      const leader = await startContainer(paths, laptopNspawnArgs(paths, { loop, binds: projectBinds(REPO_ROOT) }));
      containerExec(leader, ['mkdir', '-p', LAPTOP_DISK_MOUNT]);
      const m = containerExec(leader, ['mount', '-o', 'noatime', loop, LAPTOP_DISK_MOUNT]);
      if (m.status !== 0)
        throw new OperatorError(`cannot mount the laptop disk (${loop}) inside the laptop`, {
          details: m.output,
          next: `see ${paths.consoleLog}; or start over: laptop down --purge`,
        });
      const banner = await waitFor(() => laptopReachesTarget(port, paths), 15000, 500);
      if (!banner) throw unreachable(' (through its uplink)', true);
      return { ...laptopStatus(paths), alreadyUp: false, seconds: (Date.now() - t0) / 1000 };
    } catch (err) {
      onProgress('laptop up failed: cleaning up (nothing stays mounted or attached)');
      try {
        await stopUplink(paths);
        await stopAndClean(paths, { onProgress });
      } catch (cleanErr) {
        onProgress(`cleanup: ${cleanErr instanceof Error ? cleanErr.message : String(cleanErr)}`);
      }
      throw err;
    }
  });
}

/** Stops the laptop and its uplink, unmounts and detaches everything. Its disk image stays unless purge. */
export async function laptopDown({
  paths = laptopPaths(),
  purge = false,
  onProgress = () => {},
}: { paths?: LaptopPaths; purge?: boolean; onProgress?: (line: string) => void } = {}): Promise<{
  wasRunning: boolean;
  purged: boolean;
  diskImage: string;
  seconds: number;
}> {
  assertPrerequisites();
  return withLock(paths, async () => {
    const t0 = Date.now();
    const wasRunning = Boolean(nspawnPid(paths));
    await stopUplink(paths);
    await stopAndClean(paths, { onProgress });
    if (purge) {
      detachVolume(paths);
      fs.rmSync(paths.volumeImage, { force: true });
    }
    return { wasRunning, purged: purge, diskImage: paths.volumeImage, seconds: (Date.now() - t0) / 1000 };
  });
}
