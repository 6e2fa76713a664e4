// Where one local target's files live (localTargetPaths: cache, state, volume image, keys, logs, the instance's
// overlay), and what survives an instance in its state.json (volume id, port).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { LOCAL_ENV_FILE } from '../core/connection.js';
import {
  DEFAULT_RELEASE,
  parseTargetRelease,
  rootfsDir,
  TARGET_RELEASES,
  targetRootfsSpec,
  type TargetRelease,
} from './rootfs.js';
import { readText } from './system.js';

export const CONTAINER_NAME = 'btrbk-local-target';

export type Env = Readonly<Record<string, string | undefined>>;

/** Where one local target's files live. */
export interface LocalTargetPaths {
  /** The container's machine name. */
  name: string;
  /** BTRBK_LOCAL_TARGET_PORT, when set: the sshd port up uses unless given another. */
  port?: number;
  cacheDir: string;
  /** Which Debian the instance runs (BTRBK_LOCAL_TARGET_RELEASE, else the one the state records, else 12). */
  release: TargetRelease;
  /** BTRBK_LOCAL_TARGET_PRELOADED=1: the rootfs has the boot script's packages already (targetRootfsSpec). */
  preloaded: boolean;
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
  /**
   * Devices with a key each (BTRBK_LOCAL_TARGET_DEVICES, comma- or space-separated, or up's `devices`): each gets
   * id_ed25519-NAME beside the target's key and connection-NAME.env beside its connection file. None: the target has
   * the one (legacy) backup key, as before devices existed.
   */
  devices?: string[];
}

/** What every container (the target, the laptop) has: its rootfs, its instance overlay, its disk image, its lock. */
export type ContainerPaths = Omit<
  LocalTargetPaths,
  'port' | 'sshKey' | 'knownHosts' | 'bootLog' | 'envFile' | 'release' | 'preloaded'
>;

/** Which local target: its paths, or the environment they are derived from (default process.env). */
export interface TargetOptions {
  paths?: LocalTargetPaths;
  env?: Env;
}

/** What survives an instance in state.json. */
export interface TargetState {
  volumeId?: string;
  port?: number;
  /** When the last `up` finished (ISO time). */
  lastUp?: string;
  /** The instance type whose limits the running container has (null: in its cgroup, unlimited). */
  limits?: string | null;
  /** The shaped link to the sshd port. */
  link?: { rateMbit: number; rttMs: number } | null;
  /** The Debian release the last instance ran (absent: 12, the only one before there was a choice). */
  release?: TargetRelease;
  /** The devices the last `up` gave a key each (absent: none), so that a later `up` keeps them. */
  devices?: string[];
}

/** The state of a target that has been brought up: its volume id and port are known. */
export interface UpState extends TargetState {
  volumeId: string;
  port: number;
}

export function isUpState(state: TargetState): state is UpState {
  return Boolean(state.volumeId) && state.port !== undefined;
}

/** Where things live. Everything is outside the repo except local_connection.env. */
export function localTargetPaths(env: Env = process.env): LocalTargetPaths {
  const home = env.HOME || os.homedir();
  const cacheDir =
    env.BTRBK_LOCAL_TARGET_CACHE || path.join(env.XDG_CACHE_HOME || path.join(home, '.cache'), 'btrbk-aws-target');
  const stateDir =
    env.BTRBK_LOCAL_TARGET_STATE ||
    path.join(env.XDG_STATE_HOME || path.join(home, '.local', 'state'), 'btrbk-aws-target', 'local-target');
  const stateFile = path.join(stateDir, 'state.json');
  const saved = JSON.parse(readText(stateFile) ?? '{}') as TargetState;
  const release = env.BTRBK_LOCAL_TARGET_RELEASE
    ? parseTargetRelease(env.BTRBK_LOCAL_TARGET_RELEASE, 'BTRBK_LOCAL_TARGET_RELEASE')
    : (saved.release ?? DEFAULT_RELEASE);
  return {
    name: env.BTRBK_LOCAL_TARGET_NAME || CONTAINER_NAME,
    port: env.BTRBK_LOCAL_TARGET_PORT ? Number(env.BTRBK_LOCAL_TARGET_PORT) : undefined,
    cacheDir,
    ...releasePaths(cacheDir, release, /^(1|true|yes)$/i.test(env.BTRBK_LOCAL_TARGET_PRELOADED ?? '')),
    stateDir,
    stateFile,
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
    // the environment's list (set but empty: none), else the one the last `up` used
    ...(env.BTRBK_LOCAL_TARGET_DEVICES !== undefined
      ? { devices: env.BTRBK_LOCAL_TARGET_DEVICES.split(/[\s,]+/).filter(Boolean) }
      : saved.devices
        ? { devices: saved.devices }
        : {}),
  };
}

/** The parts of a target's paths that depend on its Debian release: the rootfs, and the apt archive cache (Debian
 * 13's is the one the laptop container, also Debian 13, uses). */
export function releasePaths(
  cacheDir: string,
  release: TargetRelease,
  preloaded = false,
): Pick<LocalTargetPaths, 'release' | 'preloaded' | 'rootfs' | 'aptArchives'> {
  const spec = TARGET_RELEASES[release];
  return {
    release,
    preloaded,
    rootfs: rootfsDir(cacheDir, targetRootfsSpec(release, preloaded)),
    aptArchives: path.join(cacheDir, release === DEFAULT_RELEASE ? 'apt-archives' : `apt-archives-${spec.suite}`),
  };
}

/** The paths the options name: their own, or those of their environment (default process.env). */
export function pathsOf(opts: TargetOptions): LocalTargetPaths {
  return opts.paths ?? localTargetPaths(opts.env ?? process.env);
}

export function loadState(paths: LocalTargetPaths): TargetState {
  const text = readText(paths.stateFile);
  return text ? (JSON.parse(text) as TargetState) : {};
}

export function saveState(paths: LocalTargetPaths, state: TargetState): void {
  fs.writeFileSync(`${paths.stateFile}.tmp`, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(`${paths.stateFile}.tmp`, paths.stateFile);
}
