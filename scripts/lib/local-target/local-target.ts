// The local target: the real boot script, run in a Debian 12 container on this machine, on a loop-device "EBS
// volume", serving sshd on a loopback port. It stands in for the AWS instance in the demo and the tests.
//
// How `up` works (see docs/LOCAL-TARGET.md):
//   1. a Debian 12 rootfs is built once with debootstrap and cached outside the repo (rootfs-bookworm);
//   2. each `up` is a fresh instance: an overlay mount (cached rootfs read-only below, an empty upper dir) that
//      gets new host keys and a local-target-only sshd drop-in (port, 127.0.0.1);
//   3. the volume is a sparse image attached with losetup, bound into the container at the by-id name an EBS
//      volume has on a Nitro instance (and at its /dev/loopN name);
//   4. systemd-nspawn boots the container (systemd inside, like on a host; --register=no --keep-unit because
//      this machine runs no systemd/machined);
//   5. the boot script, rendered exactly as the stack renders it, runs as root inside (nsenter into the
//      container's namespaces), like cloud-init would run it;
//   6. the host key is pinned into known_hosts and local_connection.env is written.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { createHash } from 'node:crypto';
import { parseMountinfo, parseSize } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { BACKUP_ROOT, BACKUP_USER, CLOUD_INIT_LOG, FAILED_MARKER, MOUNT_POINT, READY_MARKER } from '../core/host-layout.js';
import { run, runSync, startDetached, type RunResult } from '../core/process.js';
import { LOCAL_ENV_FILE, writeConnection, type Connection } from '../core/connection.js';
import { renderBootScript, renderHostPayload } from '../../../user-data/render.js';

export const CONTAINER_NAME = 'btrbk-local-target';
export const DEFAULT_PORT = 2222;
export const DEFAULT_VOLUME_SIZE = '2G';
export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** Packages the rootfs gets beyond minbase: what an Ubuntu cloud image has that the boot script relies on. */
export const ROOTFS_PACKAGES = Object.freeze(['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'passwd', 'mount', 'util-linux', 'procps']);
export const BOOT_SCRIPT_IN_CONTAINER = '/var/lib/cloud/instance/scripts/part-001';
/** The host payload, which EC2 reads from the instance's tags, as a file in the container (same bytes, same check). */
export const PAYLOAD_IN_CONTAINER = '/var/lib/cloud/instance/btrbk-payload.b64';
const LOCAL_SSHD_DROPIN = '/etc/ssh/sshd_config.d/90-local-target.conf';
const STAMP_FILE = '.btrbk-aws-target-rootfs.json';
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export type Env = Readonly<Record<string, string | undefined>>;

/** Where one local target's files live. */
export interface LocalTargetPaths {
  /** The container's machine name. */
  name: string;
  /** BTRBK_LOCAL_TARGET_PORT, when set: the sshd port up uses unless given another. */
  port?: number;
  cacheDir: string;
  /** The cached Debian rootfs of the current stamp (the instance's lower layer). */
  rootfs: string;
  /** Downloaded .debs, kept between instances. */
  aptArchives: string;
  stateDir: string;
  stateFile: string;
  lockFile: string;
  /** The sparse image that stands in for the EBS volume. */
  volumeImage: string;
  /** The backup key (the .pub next to it goes into the boot script). */
  sshKey: string;
  knownHosts: string;
  consoleLog: string;
  bootLog: string;
  pidFile: string;
  /** The instance's overlay: upper and work dirs, and the mounted root. */
  upper: string;
  work: string;
  root: string;
  /** local_connection.env (or BTRBK_LOCAL_TARGET_ENV_FILE). */
  envFile: string;
}

export interface LocalTargetStatus {
  running: boolean;
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

/** Which local target: its paths, or the environment they are derived from (default process.env). */
export interface TargetOptions {
  paths?: LocalTargetPaths;
  env?: Env;
}

export interface UpOptions extends TargetOptions {
  /** The sshd port on 127.0.0.1 (default: the last one used, else DEFAULT_PORT). */
  port?: number;
  /** Size of a new volume image, e.g. 2G (an existing image is kept as it is). */
  volumeSize?: string;
  onProgress?: (line: string) => void;
}

export interface DownOptions extends TargetOptions {
  /** Also delete the volume image (its backups), the volume id and the connection file. */
  purge?: boolean;
  onProgress?: (line: string) => void;
}

/** What survives an instance in state.json. */
interface TargetState {
  volumeId?: string;
  port?: number;
  /** When the last `up` finished (ISO time). */
  lastUp?: string;
}

/** The state of a target that has been brought up: its volume id and port are known. */
interface UpState extends TargetState {
  volumeId: string;
  port: number;
}

function isUpState(state: TargetState): state is UpState {
  return Boolean(state.volumeId) && state.port !== undefined;
}

/** Where things live. Everything is outside the repo except local_connection.env. */
export function localTargetPaths(env: Env = process.env): LocalTargetPaths {
  const home = env.HOME || os.homedir();
  const cacheDir = env.BTRBK_LOCAL_TARGET_CACHE || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'btrbk-aws-target');
  const stateDir = env.BTRBK_LOCAL_TARGET_STATE || path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'btrbk-aws-target', 'local-target');
  return {
    name: env.BTRBK_LOCAL_TARGET_NAME || CONTAINER_NAME,
    port: env.BTRBK_LOCAL_TARGET_PORT ? Number(env.BTRBK_LOCAL_TARGET_PORT) : undefined,
    cacheDir,
    // one directory per stamp: a rebuilt rootfs never replaces one that a running instance uses as its lower layer
    rootfs: path.join(cacheDir, `rootfs-${SUITE}-${rootfsStamp().hash}`),
    aptArchives: path.join(cacheDir, 'apt-archives'),
    stateDir,
    stateFile: path.join(stateDir, 'state.json'),
    lockFile: path.join(stateDir, 'lock'),
    volumeImage: path.join(stateDir, 'volume.img'),
    sshKey: path.join(stateDir, 'id_ed25519'),
    knownHosts: path.join(stateDir, 'known_hosts'),
    consoleLog: path.join(stateDir, 'console.log'),
    bootLog: path.join(stateDir, 'boot-script.log'),
    pidFile: path.join(stateDir, 'nspawn.pid'),
    upper: path.join(stateDir, 'instance', 'upper'),
    work: path.join(stateDir, 'instance', 'work'),
    root: path.join(stateDir, 'instance', 'root'),
    envFile: env.BTRBK_LOCAL_TARGET_ENV_FILE || LOCAL_ENV_FILE,
  };
}

/** The by-id name an EBS volume gets on a Nitro instance: the id without its dash. */
export function ebsByIdPath(volumeId: string): string {
  return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
}

/** A synthetic, stable volume id in the EBS format (vol- and 17 hex digits). */
export function newVolumeId(bytes: Uint8Array = randomBytes(8)): string {
  return `vol-0${Buffer.from(bytes).toString('hex').slice(0, 16)}`;
}

/** Stamp of the cached rootfs: rebuilt when any of these change. */
export function rootfsStamp(): { suite: string; mirror: string; variant: string; packages: string[]; layout: number; hash: string } {
  const spec = { suite: SUITE, mirror: MIRROR, variant: 'minbase', packages: [...ROOTFS_PACKAGES].sort(), layout: 1 };
  return { ...spec, hash: createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16) };
}

/** The volume image's size (--volume-size: 2G, 512M, 1073741824) in bytes; at least 256 MiB. */
export function parseVolumeSize(text: string): number {
  const bytes = parseSize(text);
  if (bytes === null || !Number.isInteger(bytes)) throw new OperatorError(`volume size ${JSON.stringify(text)} is not a size`, { next: 'give e.g. 2G or 512M' });
  if (bytes < 256 * 2 ** 20) throw new OperatorError(`volume size ${text} is too small`, { cause: 'btrfs needs at least 256 MiB here', next: 'give 1G or more' });
  return bytes;
}

/** The sshd drop-in only the local target has: where it listens. The boot script does not know about it. */
export function localSshdDropin(port: number): string {
  return `# local target only (scripts/lib/local-target/local-target.ts): sshd on a loopback port of the machine running the tests\nPort ${port}\nListenAddress 127.0.0.1\n`;
}

/**
 * The connection object for local_connection.env. btrbk's URL grammar is ssh://HOST[:PORT]/PATH (no user part:
 * the user is btrbk's ssh_user option), so the target URL carries the port and not the user.
 */
export function localConnection({ port, sshKey, knownHosts, volumeId }: { port: number; sshKey: string; knownHosts: string; volumeId: string }): Connection {
  return {
    BTRBK_AWS_HOST: '127.0.0.1',
    BTRBK_AWS_USER: BACKUP_USER,
    BTRBK_AWS_SSH_KEY: sshKey,
    BTRBK_AWS_TARGET: `ssh://127.0.0.1:${port}${BACKUP_ROOT}/`,
    BTRBK_AWS_PATH: BACKUP_ROOT,
    BTRBK_AWS_INSTANCE_ID: 'local-target',
    BTRBK_AWS_VOLUME_ID: volumeId,
    BTRBK_AWS_REGION: 'local',
    BTRBK_AWS_SSH_PORT: String(port),
    BTRBK_AWS_KNOWN_HOSTS: knownHosts,
  };
}

/** Parses KEY=value lines of a marker file. */
export function parseMarker(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of String(text).split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ processes

/** runSync, and an OperatorError when the command cannot start or exits non-zero. */
function runOrThrow(cmd: string, args: string[]): RunResult {
  const r = runSync(cmd, args);
  if (r.error) throw new OperatorError(`cannot run ${cmd}`, { cause: r.error.message, next: 'check the prerequisites: npx zx scripts/local-target.mjs status' });
  if (r.status !== 0) throw new OperatorError(`${cmd} ${args.join(' ')} failed (exit ${r.status})`, { details: `${r.stderr || r.stdout}`.slice(-2000) });
  return r;
}

/** A command's output for a log, with why it did not run to its end when it did not. */
const logOf = (r: RunResult): string => (r.error ? `${r.output}${r.error.message}\n` : r.output);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  return parseMountinfo(readText('/proc/self/mountinfo') ?? '').some((m) => m.mountPoint === target);
}

// ------------------------------------------------------------------------------------------------ prerequisites

const TOOLS: Readonly<Record<string, string>> = {
  'systemd-nspawn': 'systemd-container',
  debootstrap: 'debootstrap',
  losetup: 'util-linux',
  nsenter: 'util-linux',
  'ssh-keygen': 'openssh-client',
  'mkfs.btrfs': 'btrfs-progs',
};

function hasCommand(cmd: string): boolean {
  return (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':').concat(['/usr/sbin', '/sbin'])
    .some((d) => { try { fs.accessSync(path.join(d, cmd), fs.constants.X_OK); return true; } catch { return false; } });
}

/** What this machine lacks for the local target: [{what, fix}]. Empty when everything is there. */
export function missingPrerequisites({
  isRoot = process.getuid?.() === 0,
  filesystems = readText('/proc/filesystems') ?? '',
}: { isRoot?: boolean; filesystems?: string } = {}): Array<{ what: string; fix: string }> {
  const missing: Array<{ what: string; fix: string }> = [];
  if (!isRoot) missing.push({ what: 'root', fix: 'run as root (sudo npx zx scripts/local-target.mjs up): it mounts, attaches loop devices and starts a container' });
  const pkgs = [...new Set(Object.entries(TOOLS).filter(([cmd]) => !hasCommand(cmd)).map(([, pkg]) => pkg))];
  if (pkgs.length) missing.push({ what: `commands from ${pkgs.join(', ')}`, fix: `sudo apt-get install -y ${pkgs.join(' ')}` });
  const fsList = filesystems.split('\n').map((l) => l.trim().split(/\s+/).pop());
  for (const fsName of ['btrfs', 'overlay']) {
    if (!fsList.includes(fsName)) {
      const r = isRoot ? runSync('modprobe', [fsName]) : { status: 1 };
      if (r.status !== 0) missing.push({ what: `the ${fsName} filesystem in the kernel`, fix: `sudo modprobe ${fsName} (a kernel with ${fsName} support is needed)` });
    }
  }
  return missing;
}

function assertPrerequisites(): void {
  const missing = missingPrerequisites();
  if (!missing.length) return;
  throw new OperatorError(`the local target cannot run here: missing ${missing.map((m) => m.what).join('; ')}`, {
    details: missing.map((m) => `${m.what}: ${m.fix}`).join('\n'),
    cause: 'the local target needs root, btrfs, overlayfs, debootstrap and systemd-nspawn',
    next: 'install what is listed above (node scripts/ensure-deps.mjs demo does it as root), then run up again',
  });
}

// ------------------------------------------------------------------------------------------------ lock

/** Serializes up/down across processes with an exclusive lock file holding the owner's pid. */
async function withLock<T>(paths: LocalTargetPaths, fn: () => Promise<T>, { waitMs = 15 * 60 * 1000 }: { waitMs?: number } = {}): Promise<T> {
  fs.mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(paths.lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((readText(paths.lockFile) ?? '').trim());
      if (!pidAlive(owner)) { fs.rmSync(paths.lockFile, { force: true }); continue; }
      if (Date.now() > deadline) {
        throw new OperatorError(`the local target is busy (process ${owner} holds ${paths.lockFile})`, { next: 'wait for the other up/down to finish, or stop that process' });
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    if ((readText(paths.lockFile) ?? '').trim() === String(process.pid)) fs.rmSync(paths.lockFile, { force: true });
  }
}

// ------------------------------------------------------------------------------------------------ state

function loadState(paths: LocalTargetPaths): TargetState {
  const text = readText(paths.stateFile);
  return text ? (JSON.parse(text) as TargetState) : {};
}

function saveState(paths: LocalTargetPaths, state: TargetState): void {
  fs.writeFileSync(`${paths.stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${paths.stateFile}.tmp`, paths.stateFile);
}

function nspawnPid(paths: LocalTargetPaths): number | null {
  const pid = Number((readText(paths.pidFile) ?? '').trim());
  if (!pidAlive(pid)) return null;
  const cmdline = (readText(`/proc/${pid}/cmdline`) ?? '').split('\0');
  return path.basename(cmdline[0] ?? '') === 'systemd-nspawn' && cmdline.includes(`--machine=${paths.name}`) ? pid : null;
}

/** The container's PID 1 (as seen from here): nspawn's child once it runs systemd. */
function leaderPid(nspawn: number | null): number | null {
  if (!nspawn) return null;
  const children = (readText(`/proc/${nspawn}/task/${nspawn}/children`) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.find((pid) => (readText(`/proc/${pid}/comm`) ?? '').trim() === 'systemd') ?? null;
}

function loopDevicesOf(image: string): string[] {
  if (!fs.existsSync(image)) return [];
  const r = runSync('losetup', ['-j', image, '-O', 'NAME', '-n']);
  return r.status === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/** Runs a command as root inside the container (all its namespaces), with a clean environment. */
export function containerExec(leader: number, argv: string[], { input, timeout }: { input?: string; timeout?: number } = {}): RunResult {
  const r = runSync('nsenter', ['-t', String(leader), '-a', '--', '/usr/bin/env', '-i', `PATH=${CONTAINER_PATH}`, 'HOME=/root', 'LANG=C.UTF-8', ...argv], { input, timeoutMs: timeout });
  // nsenter that could not start or ran into the timeout says so on stderr (the tests and the bench print it)
  return r.error ? { ...r, stderr: r.error.message, output: `${r.stdout}${r.error.message}` } : r;
}

// ------------------------------------------------------------------------------------------------ rootfs

/** Deletes cached rootfs directories of older stamps that no mounted instance uses as its lower layer. */
function removeUnusedRootfs(paths: LocalTargetPaths, onProgress: (line: string) => void): void {
  const mounts = parseMountinfo(readText('/proc/self/mountinfo') ?? '');
  for (const entry of fs.readdirSync(paths.cacheDir)) {
    const dir = path.join(paths.cacheDir, entry);
    if (!entry.startsWith(`rootfs-${SUITE}`) || dir === paths.rootfs || mounts.some((m) => m.superOptions.includes(`lowerdir=${dir}`))) continue;
    if (/\.tmp-(\d+)$/.test(entry) && pidAlive(Number(entry.split('-').pop()))) continue; // another build in progress
    onProgress(`removing an unused older rootfs: ${dir}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds the cached rootfs once (debootstrap into a temp dir, renamed into place). */
export async function ensureRootfs({
  paths = localTargetPaths(),
  onProgress = () => {},
}: { paths?: LocalTargetPaths; onProgress?: (line: string) => void } = {}): Promise<{ built: boolean; seconds: number }> {
  const stamp = rootfsStamp();
  const legacy = path.join(paths.cacheDir, `rootfs-${SUITE}`); // the unversioned name of the first builds
  const stampHash = (text: string): unknown => (JSON.parse(text) as { hash?: unknown }).hash;
  if (!fs.existsSync(paths.rootfs) && stampHash(readText(path.join(legacy, STAMP_FILE)) ?? '{}') === stamp.hash) fs.renameSync(legacy, paths.rootfs);
  const current = readText(path.join(paths.rootfs, STAMP_FILE));
  if (current && stampHash(current) === stamp.hash) return { built: false, seconds: 0 };
  const t0 = Date.now();
  fs.mkdirSync(paths.cacheDir, { recursive: true });
  const tmp = `${paths.rootfs}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  onProgress(`building the Debian 12 rootfs with debootstrap (once; cached in ${paths.rootfs}) ...`);
  let last = 0;
  const r = await run('debootstrap', ['--variant=minbase', `--include=${ROOTFS_PACKAGES.join(',')}`, SUITE, tmp, MIRROR], {
    onLine: (line) => {
      if (/^I: (Retrieving|Validating|Extracting|Installing|Configuring|Unpacking|Base system)/.test(line) && Date.now() - last > 3000) {
        last = Date.now();
        onProgress(`  debootstrap: ${line.slice(3)}`);
      }
    },
  });
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new OperatorError('debootstrap could not build the Debian 12 rootfs', {
      details: logOf(r).split('\n').slice(-15).join('\n'),
      cause: `${MIRROR} is unreachable, or the disk is full`,
      next: `check that this machine reaches ${MIRROR} (apt-get update works), then run up again`,
    });
  }
  // An instance gets its own host keys and machine id at first boot: none are baked into the image.
  for (const f of fs.readdirSync(path.join(tmp, 'etc/ssh'))) if (/^ssh_host_.*key(\.pub)?$/.test(f)) fs.rmSync(path.join(tmp, 'etc/ssh', f));
  fs.writeFileSync(path.join(tmp, 'etc/machine-id'), '');
  fs.rmSync(path.join(tmp, 'var/lib/dbus/machine-id'), { force: true });
  // timers that would run apt in the background and race with the boot script's apt-get
  for (const unit of ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'e2scrub_reap.service']) {
    fs.rmSync(path.join(tmp, 'etc/systemd/system', unit), { force: true });
    fs.symlinkSync('/dev/null', path.join(tmp, 'etc/systemd/system', unit));
  }
  fs.writeFileSync(path.join(tmp, STAMP_FILE), `${JSON.stringify({ ...stamp, built: new Date().toISOString() })}\n`);
  if (fs.existsSync(paths.rootfs)) fs.rmSync(paths.rootfs, { recursive: true, force: true }); // a stale, stampless one
  fs.renameSync(tmp, paths.rootfs);
  removeUnusedRootfs(paths, onProgress);
  const seconds = (Date.now() - t0) / 1000;
  onProgress(`rootfs built in ${seconds.toFixed(0)} s`);
  return { built: true, seconds };
}

// ------------------------------------------------------------------------------------------------ up

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Resolves with the SSH banner sshd sends on host:port, or null after timeoutMs. */
export async function sshBanner(port: number, { timeoutMs = 2000 }: { timeoutMs?: number } = {}): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (v: string | null) => { sock.destroy(); resolve(v); };
    sock.setTimeout(timeoutMs, () => done(null));
    sock.on('data', (d) => { data += d.toString(); if (data.includes('\n')) done(data.split('\n')[0].trim()); });
    sock.on('error', () => done(null));
    sock.on('close', () => done(data.startsWith('SSH-') ? data.trim() : null));
  });
}

function prepareInstance(paths: LocalTargetPaths, { port, scriptText }: { port: number; scriptText: string }): void {
  // a fresh instance: empty upper layer over the cached rootfs
  fs.rmSync(path.join(paths.stateDir, 'instance'), { recursive: true, force: true });
  for (const d of [paths.upper, paths.work, paths.root]) fs.mkdirSync(d, { recursive: true });
  runOrThrow('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${paths.rootfs},upperdir=${paths.upper},workdir=${paths.work}`, paths.root]);
  const r = (p: string) => path.join(paths.root, p);
  runOrThrow('ssh-keygen', ['-A', '-f', paths.root]);
  fs.writeFileSync(r('etc/hostname'), `${paths.name}\n`);
  // no translated package descriptions: apt-get update in the boot script fetches 6 MB less on every up
  fs.writeFileSync(r('etc/apt/apt.conf.d/99-local-target-no-translations'), 'Acquire::Languages "none";\n');
  // sudo resolves its own host name: give the name an address as cloud-init's hosts template does on AWS
  fs.writeFileSync(r('etc/hosts'), `127.0.0.1 localhost\n127.0.1.1 ${paths.name}\n::1 localhost ip6-localhost ip6-loopback\n`);
  fs.writeFileSync(r(LOCAL_SSHD_DROPIN), localSshdDropin(port), { mode: 0o644 });
  // what cloud-init does on AWS: keep the user-data script and run it as root once
  fs.mkdirSync(path.dirname(r(BOOT_SCRIPT_IN_CONTAINER)), { recursive: true, mode: 0o700 });
  fs.writeFileSync(r(BOOT_SCRIPT_IN_CONTAINER), scriptText, { mode: 0o700 });
  fs.writeFileSync(r(PAYLOAD_IN_CONTAINER), renderHostPayload().base64, { mode: 0o600 });
}

async function stopAndClean(paths: LocalTargetPaths, { onProgress = () => {} }: { onProgress?: (line: string) => void } = {}): Promise<void> {
  const pid = nspawnPid(paths);
  if (pid) {
    onProgress('stopping the container ...');
    const leader = leaderPid(pid);
    process.kill(pid, 'SIGTERM'); // nspawn -b turns SIGTERM into a clean poweroff of the container
    const deadline = Date.now() + 30000;
    while (pidAlive(pid) && Date.now() < deadline) await sleep(200);
    if (pidAlive(pid)) {
      onProgress('the container did not power off within 30 s: killing it');
      if (leader && pidAlive(leader)) process.kill(leader, 'SIGKILL');
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      while (pidAlive(pid)) await sleep(100);
    }
  }
  fs.rmSync(paths.pidFile, { force: true });
  // nspawn leaves this directory behind when /run is not a tmpfs
  try { fs.rmdirSync(`/run/systemd/nspawn/propagate/${paths.name}`); } catch { /* absent or not empty */ }
  if (isMountPoint(paths.root)) {
    const r = runSync('umount', [paths.root]);
    if (r.status !== 0) {
      await sleep(1000);
      runOrThrow('umount', [paths.root]);
    }
  }
  for (const dev of loopDevicesOf(paths.volumeImage)) {
    const r = runSync('losetup', ['-d', dev]);
    if (r.status !== 0) throw new OperatorError(`cannot detach ${dev} from ${paths.volumeImage}`, { details: r.error?.message ?? r.stderr, next: `check what still uses it: lsblk ${dev}; fuser -vm ${dev}` });
  }
  fs.rmSync(path.join(paths.stateDir, 'instance'), { recursive: true, force: true });
  const leftovers: string[] = [];
  if (isMountPoint(paths.root)) leftovers.push(`${paths.root} is still mounted`);
  const loops = loopDevicesOf(paths.volumeImage);
  if (loops.length) leftovers.push(`${loops.join(', ')} still attached`);
  if (leftovers.length) throw new OperatorError(`could not clean up the local target: ${leftovers.join('; ')}`, { next: 'unmount / detach by hand (umount, losetup -d) and run down again' });
}

function writeEnvFile(paths: LocalTargetPaths, state: UpState): void {
  writeConnection(paths.envFile, localConnection({ port: state.port, sshKey: paths.sshKey, knownHosts: paths.knownHosts, volumeId: state.volumeId }),
    'Written by scripts/local-target.mjs up: the local target (a container on this machine), in the aws_connection.env format.');
}

/** The boot script this target's instance gets: the renderer's output for its volume id and backup key. */
function renderFor(paths: LocalTargetPaths, volumeId: string): string {
  const backupSshPublicKey = fs.readFileSync(`${paths.sshKey}.pub`, 'utf8').trim();
  return renderBootScript({ volumeId, backupSshPublicKey }, { payload: 'file', payloadFile: PAYLOAD_IN_CONTAINER });
}

/** True when the running instance was booted with another boot script than the one rendered now. */
function bootScriptOutdated(paths: LocalTargetPaths): boolean {
  const state = loadState(paths);
  if (!state.volumeId || !fs.existsSync(`${paths.sshKey}.pub`)) return true;
  return readText(path.join(paths.root, BOOT_SCRIPT_IN_CONTAINER.slice(1))) !== renderFor(paths, state.volumeId);
}

async function waitFor<T>(fn: () => T | null | Promise<T | null>, timeoutMs: number, intervalMs = 200): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(intervalMs);
  }
}

/** Brings the local target up. Idempotent: a running, healthy target is left as it is. */
export async function up(opts: UpOptions = {}): Promise<UpResult> {
  const { onProgress = () => {}, env = process.env } = opts;
  const paths = opts.paths ?? localTargetPaths(env);
  assertPrerequisites();
  return withLock(paths, async () => {
    const timings: UpTimings = {};
    const t0 = Date.now();
    const before = await status({ paths });
    if (before.running && before.healthy) {
      // On AWS a changed boot script gives a new instance (user_data_replace_on_change); so here.
      const running = loadState(paths);
      // (a healthy target has both: its sshd answered on the state's port, and bootScriptOutdated needs the volume id)
      if (!bootScriptOutdated(paths) && isUpState(running)) {
        // a checkout other than the one that started it (CI's fresh clone) gets its connection file too
        writeEnvFile(paths, running);
        return { ...before, envFile: paths.envFile, alreadyUp: true, timings };
      }
      onProgress('the boot script changed since this instance started: replacing the instance (the volume is kept)');
      await stopAndClean(paths, { onProgress });
    } else if (before.running || before.loopDevices.length || before.instanceMounted) {
      onProgress('a previous instance is half up: cleaning it up first');
      await stopAndClean(paths, { onProgress });
    }
    const rootfs = await ensureRootfs({ paths, onProgress });
    timings.rootfsSeconds = rootfs.seconds;

    const saved = loadState(paths);
    const port = Number(opts.port ?? paths.port ?? saved.port ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new OperatorError(`port ${opts.port} is not a TCP port`, { next: 'give --port with a number from 1024 to 65535' });
    if (!(await portFree(port))) {
      throw new OperatorError(`port ${port} on 127.0.0.1 is in use`, { cause: 'another sshd or local target listens there', next: `free it, or choose another: npx zx scripts/local-target.mjs up --port ${port + 1}` });
    }
    const state: UpState = { ...saved, volumeId: saved.volumeId || newVolumeId(), port };
    saveState(paths, state);

    if (!fs.existsSync(paths.sshKey)) {
      runOrThrow('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'btrbk-local-target backup key', '-f', paths.sshKey]);
    }
    const scriptText = renderFor(paths, state.volumeId);

    if (!fs.existsSync(paths.volumeImage)) {
      const size = parseVolumeSize(opts.volumeSize ?? DEFAULT_VOLUME_SIZE);
      onProgress(`creating a ${opts.volumeSize ?? DEFAULT_VOLUME_SIZE} sparse volume image (${state.volumeId})`);
      const fd = fs.openSync(paths.volumeImage, 'wx', 0o600);
      fs.ftruncateSync(fd, size);
      fs.closeSync(fd);
    }

    try {
      const loop = runOrThrow('losetup', ['--find', '--show', paths.volumeImage]).stdout.trim();
      prepareInstance(paths, { port, scriptText });
      const t1 = Date.now();
      onProgress(`booting the container (systemd-nspawn, volume ${state.volumeId} on ${loop}, sshd on 127.0.0.1:${port}) ...`);
      fs.mkdirSync(paths.aptArchives, { recursive: true });
      const console = fs.openSync(paths.consoleLog, 'w', 0o600);
      const pid = startDetached('systemd-nspawn', [
        `--machine=${paths.name}`, `--directory=${paths.root}`, '--boot', '--register=no', '--keep-unit',
        '--console=passive', '--resolv-conf=copy-host', '--timezone=off', '--link-journal=no',
        `--bind=${loop}:${ebsByIdPath(state.volumeId)}`, `--bind=${loop}`,
        // downloaded .debs are kept between instances: the boot script still installs them, only faster
        `--bind=${paths.aptArchives}:/var/cache/apt/archives`,
      ], { logFd: console });
      fs.closeSync(console);
      fs.writeFileSync(paths.pidFile, `${pid}\n`);
      const leader = await waitFor(() => leaderPid(nspawnPid(paths)), 30000);
      if (!leader) throw new OperatorError('the container did not start', { details: (readText(paths.consoleLog) ?? '').split('\n').slice(-20).join('\n'), next: `see ${paths.consoleLog}` });
      const booted = await waitFor(() => {
        const s = containerExec(leader, ['systemctl', 'is-system-running']).stdout.trim();
        return ['running', 'degraded'].includes(s) ? s : null;
      }, 60000, 500);
      if (!booted) throw new OperatorError('systemd in the container did not finish booting within 60 s', { details: (readText(paths.consoleLog) ?? '').split('\n').slice(-20).join('\n'), next: `see ${paths.consoleLog}` });
      timings.bootSeconds = (Date.now() - t1) / 1000;

      const t2 = Date.now();
      onProgress('running the boot script inside (as cloud-init would) ...');
      const result = await run('nsenter', ['-t', String(leader), '-a', '--', '/usr/bin/env', '-i', `PATH=${CONTAINER_PATH}`, 'HOME=/root', 'LANG=C.UTF-8',
        '/bin/bash', '-o', 'pipefail', '-c', `/bin/bash ${BOOT_SCRIPT_IN_CONTAINER} 2>&1 | tee -a ${CLOUD_INIT_LOG}`], {
        onLine: (line) => { if (/btrbk-backup-host\[[a-z]+\]: (==|changed:|ERROR|WARNING|btrbk-backup-host:)/.test(line)) onProgress(`  ${line.replace(/^\S+ /, '')}`); },
      });
      const bootOutput = logOf(result);
      fs.writeFileSync(paths.bootLog, bootOutput, { mode: 0o600 });
      timings.bootScriptSeconds = (Date.now() - t2) / 1000;
      const ready = readText(path.join(paths.root, READY_MARKER.slice(1)));
      if (result.status !== 0 || !ready) {
        const failed = parseMarker(readText(path.join(paths.root, FAILED_MARKER.slice(1))) ?? '');
        throw new OperatorError(`the boot script failed in the local target${failed.step ? ` at step '${failed.step}'` : ''}`, {
          details: bootOutput.trimEnd().split('\n').slice(-25).join('\n'),
          cause: 'see the log above (whole log: ' + paths.bootLog + ')',
          next: 'fix the cause, then run up again; the volume image is kept',
        });
      }

      const hostKey = fs.readFileSync(path.join(paths.root, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
      fs.writeFileSync(paths.knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`, { mode: 0o600 });
      const banner = await waitFor(() => sshBanner(port), 20000, 300);
      if (!banner) throw new OperatorError(`sshd in the container does not answer on 127.0.0.1:${port}`, { next: `see ${paths.consoleLog}` });
      writeEnvFile(paths, state);
      timings.totalSeconds = (Date.now() - t0) / 1000;
      state.lastUp = new Date().toISOString();
      saveState(paths, state);
      return { ...(await status({ paths })), alreadyUp: false, timings };
    } catch (err) {
      onProgress('up failed: cleaning up (nothing stays mounted or attached)');
      try { await stopAndClean(paths, { onProgress }); } catch (cleanErr) { onProgress(`cleanup: ${cleanErr instanceof Error ? cleanErr.message : String(cleanErr)}`); }
      throw err;
    }
  });
}

/** Stops the container, unmounts everything and detaches the volume. The volume image stays unless purge. */
export async function down(opts: DownOptions = {}): Promise<DownResult> {
  const { purge = false, onProgress = () => {}, env = process.env } = opts;
  const paths = opts.paths ?? localTargetPaths(env);
  assertPrerequisites();
  return withLock(paths, async () => {
    const t0 = Date.now();
    const wasRunning = Boolean(nspawnPid(paths));
    await stopAndClean(paths, { onProgress });
    let purged = false;
    if (purge) {
      fs.rmSync(paths.volumeImage, { force: true });
      const state = loadState(paths);
      delete state.volumeId;
      saveState(paths, state);
      fs.rmSync(paths.envFile, { force: true });
      purged = true;
    }
    return { wasRunning, purged, volumeImage: paths.volumeImage, volumeKept: fs.existsSync(paths.volumeImage), seconds: (Date.now() - t0) / 1000 };
  });
}

/** What the local target is doing now. Reads only; never changes anything. */
export async function status(opts: TargetOptions = {}): Promise<LocalTargetStatus> {
  const paths = opts.paths ?? localTargetPaths(opts.env ?? process.env);
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
  const banner = leader && port ? await sshBanner(port, { timeoutMs: 1500 }) : null;
  const running = Boolean(pid && leader);
  const ready = readyText ? parseMarker(readyText) : null;
  return {
    running,
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
  };
}

/** Runs the (already rendered) boot script inside the running container again. */
export async function rerunBootScript(opts: TargetOptions = {}): Promise<{ status: number | null; output: string }> {
  const paths = opts.paths ?? localTargetPaths(opts.env ?? process.env);
  const leader = leaderPid(nspawnPid(paths));
  if (!leader) throw new OperatorError('the local target is not running', { next: 'npx zx scripts/local-target.mjs up' });
  const r = containerExec(leader, ['/bin/bash', BOOT_SCRIPT_IN_CONTAINER], { timeout: 600000 });
  return { status: r.status, output: r.output };
}

/** Runs argv as root inside the running container. For tests and diagnostics. */
export function execInTarget(argv: string[], opts: TargetOptions & { input?: string; timeout?: number } = {}): RunResult {
  const paths = opts.paths ?? localTargetPaths(opts.env ?? process.env);
  const leader = leaderPid(nspawnPid(paths));
  if (!leader) throw new OperatorError('the local target is not running', { next: 'npx zx scripts/local-target.mjs up' });
  return containerExec(leader, argv, { input: opts.input, timeout: opts.timeout });
}
