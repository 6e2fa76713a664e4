// The container of one instance: its overlay root prepared fresh, booted with systemd-nspawn, entered with
// nsenter (containerExec, execInTarget), and stopped with everything it mounted or attached undone.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from '../core/errors.js';
import { runSync, startDetached, type RunResult } from '../core/process.js';
import { pathsOf, type ContainerPaths, type LocalTargetPaths, type TargetOptions } from './paths.js';
import { isMountPoint, pidAlive, readText, runOrThrow, sleep, waitFor } from './system.js';
import { detachVolume, ebsByIdPath, loopDevicesOf } from './volume.js';

const LOCAL_SSHD_DROPIN = '/etc/ssh/sshd_config.d/90-local-target.conf';
const CONTAINER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The sshd drop-in only the local target has: where it listens. The boot script does not know about it. */
export function localSshdDropin(port: number): string {
  return `# local target only (scripts/lib/local-target/container.ts): sshd on a loopback port of the machine running the tests\nPort ${port}\nListenAddress 127.0.0.1\n`;
}

/** nsenter's arguments that run argv as root inside the container (all its namespaces), with a clean environment
 * (and in cwd, a directory inside the container, when given). */
export function nsenterArgs(leader: number, argv: string[], { cwd }: { cwd?: string } = {}): string[] {
  return [
    '-t',
    String(leader),
    '-a',
    '--',
    '/usr/bin/env',
    '-i',
    ...(cwd ? ['-C', cwd] : []),
    `PATH=${CONTAINER_PATH}`,
    'HOME=/root',
    'LANG=C.UTF-8',
    ...argv,
  ];
}

/** The running systemd-nspawn of this target (from its pid file), or null. */
export function nspawnPid(paths: ContainerPaths): number | null {
  const pid = Number((readText(paths.pidFile) ?? '').trim());
  if (!pidAlive(pid)) return null;
  const cmdline = (readText(`/proc/${pid}/cmdline`) ?? '').split('\0');
  return path.basename(cmdline[0] ?? '') === 'systemd-nspawn' && cmdline.includes(`--machine=${paths.name}`)
    ? pid
    : null;
}

/** The container's PID 1 (as seen from here): nspawn's child once it runs systemd. */
export function leaderPid(nspawn: number | null): number | null {
  if (!nspawn) return null;
  const children = (readText(`/proc/${nspawn}/task/${nspawn}/children`) ?? '')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
  return children.find((pid) => (readText(`/proc/${pid}/comm`) ?? '').trim() === 'systemd') ?? null;
}

/** The running container's PID 1; an OperatorError when it is not running. */
export function runningLeader(
  paths: ContainerPaths,
  { what = 'the local target', next = 'npx zx scripts/local-target.mjs up' }: { what?: string; next?: string } = {},
): number {
  const leader = leaderPid(nspawnPid(paths));
  if (!leader) throw new OperatorError(`${what} is not running`, { next });
  return leader;
}

/** Runs a command as root inside the container (all its namespaces), with a clean environment. */
export function containerExec(
  leader: number,
  argv: string[],
  { input, timeout, cwd }: { input?: string; timeout?: number; cwd?: string } = {},
): RunResult {
  const r = runSync('nsenter', nsenterArgs(leader, argv, { cwd }), { input, timeoutMs: timeout });
  // nsenter that could not start or ran into the timeout says so on stderr (the tests and the bench print it)
  return r.error ? { ...r, stderr: r.error.message, output: `${r.stdout}${r.error.message}` } : r;
}

/** Runs argv as root inside the running container. For tests and diagnostics. */
export function execInTarget(
  argv: string[],
  opts: TargetOptions & { input?: string; timeout?: number } = {},
): RunResult {
  return containerExec(runningLeader(pathsOf(opts)), argv, { input: opts.input, timeout: opts.timeout });
}

/** A fresh instance root: an empty upper layer over the cached rootfs, mounted, with its host name. */
export function prepareOverlay(paths: ContainerPaths): void {
  fs.rmSync(path.join(paths.stateDir, 'instance'), { recursive: true, force: true });
  for (const d of [paths.upper, paths.work, paths.root]) fs.mkdirSync(d, { recursive: true });
  runOrThrow('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${paths.rootfs},upperdir=${paths.upper},workdir=${paths.work}`,
    paths.root,
  ]);
  fs.writeFileSync(path.join(paths.root, 'etc/hostname'), `${paths.name}\n`);
  // sudo resolves its own host name: give the name an address as cloud-init's hosts template does on AWS
  fs.writeFileSync(
    path.join(paths.root, 'etc/hosts'),
    `127.0.0.1 localhost\n127.0.1.1 ${paths.name}\n::1 localhost ip6-localhost ip6-loopback\n`,
  );
}

/** A fresh target instance root: the overlay, new host keys, the local-only sshd drop-in. */
export function prepareInstance(paths: LocalTargetPaths, { port }: { port: number }): void {
  prepareOverlay(paths);
  const r = (p: string) => path.join(paths.root, p);
  runOrThrow('ssh-keygen', ['-A', '-f', paths.root]);
  // no translated package descriptions: apt-get update in the boot script fetches 6 MB less on every up
  fs.writeFileSync(r('etc/apt/apt.conf.d/99-local-target-no-translations'), 'Acquire::Languages "none";\n');
  fs.writeFileSync(r(LOCAL_SSHD_DROPIN), localSshdDropin(port), { mode: 0o644 });
}

/** The target's own systemd-nspawn arguments: the volume's loop device at its EBS by-id name (and its own name),
 * the instance's apt archive directory, seeded from the shared cache. */
export function targetNspawnArgs(
  paths: LocalTargetPaths,
  { loop, volumeId }: { loop: string; volumeId: string },
): string[] {
  return [
    `--bind=${loop}:${ebsByIdPath(volumeId)}`,
    `--bind=${loop}`,
    // downloaded .debs are kept between instances: the boot script still installs them, only faster
    `--bind=${seedAptArchives(paths)}:/var/cache/apt/archives`,
  ];
}

/** The instance's own /var/cache/apt/archives (in the instance dir, gone with it). Not the shared cache itself: apt
 * locks its archive directory and gives up at once when another instance holds the lock (two targets booting side
 * by side, as the test lanes do, failed at step 'packages'). */
export function instanceAptArchives(paths: Pick<LocalTargetPaths, 'stateDir'>): string {
  return path.join(paths.stateDir, 'instance', 'apt-archives');
}

const DEB = /^[^/]+\.deb$/;

/** A hard link where it can be made, else a copy; into place by rename, so a reader never sees half a file. */
function linkOrCopy(from: string, to: string): void {
  const tmp = `${to}.tmp-${process.pid}`;
  try {
    fs.linkSync(from, tmp);
  } catch {
    fs.copyFileSync(from, tmp);
  }
  fs.renameSync(tmp, to);
}

/** The instance's apt archive directory with the shared cache's .debs in it. */
export function seedAptArchives(paths: Pick<LocalTargetPaths, 'stateDir' | 'aptArchives'>): string {
  const own = instanceAptArchives(paths);
  fs.mkdirSync(paths.aptArchives, { recursive: true });
  fs.mkdirSync(path.join(own, 'partial'), { recursive: true });
  for (const f of fs.readdirSync(paths.aptArchives).filter((x) => DEB.test(x)))
    if (!fs.existsSync(path.join(own, f))) linkOrCopy(path.join(paths.aptArchives, f), path.join(own, f));
  return own;
}

/** Puts the .debs this instance downloaded into the shared cache (the next instance's apt-get finds them). */
export function keepDownloadedDebs(paths: Pick<LocalTargetPaths, 'stateDir' | 'aptArchives'>): number {
  const own = instanceAptArchives(paths);
  if (!fs.existsSync(own)) return 0;
  let kept = 0;
  for (const f of fs.readdirSync(own).filter((x) => DEB.test(x)))
    if (!fs.existsSync(path.join(paths.aptArchives, f))) {
      linkOrCopy(path.join(own, f), path.join(paths.aptArchives, f));
      kept += 1;
    }
  return kept;
}

/** Boots the prepared instance with systemd-nspawn and the container's own arguments (binds, network); resolves
 * with the container's PID 1 once systemd inside has finished booting. */
export async function startContainer(paths: ContainerPaths, extraArgs: string[]): Promise<number> {
  const console = fs.openSync(paths.consoleLog, 'w', 0o600);
  const pid = startDetached(
    'systemd-nspawn',
    [
      `--machine=${paths.name}`,
      `--directory=${paths.root}`,
      '--boot',
      '--register=no',
      '--keep-unit',
      '--console=passive',
      '--resolv-conf=copy-host',
      '--timezone=off',
      '--link-journal=no',
      ...extraArgs,
    ],
    { logFd: console },
  );
  fs.closeSync(console);
  fs.writeFileSync(paths.pidFile, `${pid}\n`);
  const leader = await waitFor(() => leaderPid(nspawnPid(paths)), 30000);
  if (!leader)
    throw new OperatorError('the container did not start', {
      details: (readText(paths.consoleLog) ?? '').split('\n').slice(-20).join('\n'),
      next: `see ${paths.consoleLog}`,
    });
  const booted = await waitFor(
    () => {
      const s = containerExec(leader, ['systemctl', 'is-system-running']).stdout.trim();
      return ['running', 'degraded'].includes(s) ? s : null;
    },
    60000,
    500,
  );
  if (!booted)
    throw new OperatorError('systemd in the container did not finish booting within 60 s', {
      details: (readText(paths.consoleLog) ?? '').split('\n').slice(-20).join('\n'),
      next: `see ${paths.consoleLog}`,
    });
  return leader;
}

/** Stops the container (clean poweroff, else killed), unmounts the instance, detaches the volume, removes the
 * instance's files; an OperatorError when something stays mounted or attached. */
export async function stopAndClean(
  paths: ContainerPaths,
  { onProgress = () => {} }: { onProgress?: (line: string) => void } = {},
): Promise<void> {
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
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      while (pidAlive(pid)) await sleep(100);
    }
  }
  fs.rmSync(paths.pidFile, { force: true });
  // nspawn leaves this directory behind when /run is not a tmpfs
  try {
    fs.rmdirSync(`/run/systemd/nspawn/propagate/${paths.name}`);
  } catch {
    /* absent or not empty */
  }
  if (isMountPoint(paths.root)) {
    const r = runSync('umount', [paths.root]);
    if (r.status !== 0) {
      await sleep(1000);
      runOrThrow('umount', [paths.root]);
    }
  }
  detachVolume(paths);
  fs.rmSync(path.join(paths.stateDir, 'instance'), { recursive: true, force: true });
  const leftovers: string[] = [];
  if (isMountPoint(paths.root)) leftovers.push(`${paths.root} is still mounted`);
  const loops = loopDevicesOf(paths.volumeImage);
  if (loops.length) leftovers.push(`${loops.join(', ')} still attached`);
  if (leftovers.length)
    throw new OperatorError(`could not clean up ${paths.name}: ${leftovers.join('; ')}`, {
      next: 'unmount / detach by hand (umount, losetup -d) and run down again',
    });
}
