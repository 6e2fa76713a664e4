// The Debian rootfs a container boots from (the target's Debian 12, the laptop's Debian 13: a RootfsSpec each):
// built once with debootstrap, cached outside the repo under a stamp of what went into it, rebuilt (and the old
// one removed when unused) when that changes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { REPO_ROOT } from '../core/connection.js';
import { parseMountinfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { run } from '../core/process.js';
import type { ContainerPaths } from './paths.js';
import { logOf, pidAlive, readText } from './system.js';

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** Packages the rootfs gets beyond minbase: what an Ubuntu cloud image has that the boot script relies on. */
export const ROOTFS_PACKAGES = Object.freeze([
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'sudo',
  'passwd',
  'mount',
  'util-linux',
  'procps',
]);
const STAMP_FILE = '.btrbk-aws-target-rootfs.json';

/** Which Debian a rootfs is, and what it gets beyond minbase. */
export interface RootfsSpec {
  suite: string;
  /** The cache directory's name part (default: the suite): two specs of one suite (the laptop's Debian 13 and the
   * target's) need their own, or building one would remove the other as an older build. */
  cacheName?: string;
  /** For messages: "Debian 12". */
  release: string;
  packages: readonly string[];
}

/** The local target's rootfs: the Debian 12 an Ubuntu 24.04 LTS host stands in for. */
export const TARGET_ROOTFS: RootfsSpec = Object.freeze({
  suite: SUITE,
  release: 'Debian 12',
  packages: ROOTFS_PACKAGES,
});

/** The Debian releases the local target runs the boot script on: 12 (the default) and 13, the neighbours of the
 * Ubuntu 24.04 LTS the EC2 host runs (its OpenSSH 9.6 and systemd 255 sit between Debian 12's and 13's). */
export const TARGET_RELEASES = Object.freeze({
  '12': TARGET_ROOTFS,
  '13': Object.freeze({
    suite: 'trixie',
    cacheName: 'trixie-target',
    release: 'Debian 13',
    packages: ROOTFS_PACKAGES,
  }) as RootfsSpec,
});
export type TargetRelease = keyof typeof TARGET_RELEASES;
export const DEFAULT_RELEASE: TargetRelease = '12';

/** The packages the boot script installs (its `readonly PACKAGES=(...)` line: one list, read from the script). */
export function bootScriptPackages(
  text: string = fs.readFileSync(path.join(REPO_ROOT, 'user-data', 'bootstrap.sh'), 'utf8'),
): string[] {
  const m = /^readonly PACKAGES=\(([a-z0-9 .+-]+)\)$/m.exec(text);
  if (!m) throw new Error('user-data/bootstrap.sh has no `readonly PACKAGES=(...)` line');
  return m[1].split(/\s+/).filter(Boolean);
}

/**
 * A release's rootfs, plain (what the boot script meets on EC2: it installs its packages) or preloaded: the boot
 * script's packages already in the image, as in a custom AMI, so that its packages step finds them all and runs
 * no apt (the path every later run of the script takes). The tests boot most of their targets preloaded.
 */
export function targetRootfsSpec(release: TargetRelease, preloaded = false): RootfsSpec {
  const spec = TARGET_RELEASES[release];
  if (!preloaded) return spec;
  return Object.freeze({
    ...spec,
    cacheName: `${spec.cacheName ?? spec.suite}-preloaded`,
    release: `${spec.release} (preloaded)`,
    packages: [...new Set([...spec.packages, ...bootScriptPackages()])],
  });
}

/** A release named on the command line or in the environment (12, 13, debian-13 or trixie ...), checked. */
export function parseTargetRelease(value: string, source = '--release'): TargetRelease {
  const v = String(value)
    .toLowerCase()
    .replace(/^debian-?/, '');
  for (const [release, spec] of Object.entries(TARGET_RELEASES))
    if (v === release || v === spec.suite) return release as TargetRelease;
  throw new OperatorError(`${source} ${value} is not a Debian release the local target runs`, {
    next: `use one of: ${Object.keys(TARGET_RELEASES).join(', ')} (Debian 12 bookworm, Debian 13 trixie)`,
  });
}

/** Stamp of the cached rootfs: rebuilt when any of these change. */
export function rootfsStamp(spec: RootfsSpec = TARGET_ROOTFS): {
  suite: string;
  mirror: string;
  variant: string;
  packages: string[];
  layout: number;
  hash: string;
} {
  const stamped = {
    suite: spec.suite,
    mirror: MIRROR,
    variant: 'minbase',
    packages: [...spec.packages].sort(),
    layout: 1,
  };
  return { ...stamped, hash: createHash('sha256').update(JSON.stringify(stamped)).digest('hex').slice(0, 16) };
}

/** The cached rootfs directory of a spec's current stamp (one per stamp: a rebuilt rootfs never replaces one that a
 * running instance uses as its lower layer). */
export function rootfsDir(cacheDir: string, spec: RootfsSpec = TARGET_ROOTFS): string {
  return path.join(cacheDir, `rootfs-${cacheName(spec)}-${rootfsStamp(spec).hash}`);
}

const cacheName = (spec: RootfsSpec): string => spec.cacheName ?? spec.suite;

/** A cache entry of this spec: its build of any stamp, the unversioned first build, or a build in progress. */
export function isRootfsEntryOf(entry: string, spec: RootfsSpec): boolean {
  return new RegExp(`^rootfs-${cacheName(spec).replace(/[.-]/g, '\\$&')}(-[0-9a-f]{16})?(\\.tmp-\\d+)?$`).test(entry);
}

/** Deletes cached rootfs directories of older stamps that no mounted instance uses as its lower layer. */
function removeUnusedRootfs(paths: ContainerPaths, spec: RootfsSpec, onProgress: (line: string) => void): void {
  const mounts = parseMountinfo(readText('/proc/self/mountinfo') ?? '');
  for (const entry of fs.readdirSync(paths.cacheDir)) {
    const dir = path.join(paths.cacheDir, entry);
    if (
      !isRootfsEntryOf(entry, spec) ||
      dir === paths.rootfs ||
      mounts.some((m) => m.superOptions.includes(`lowerdir=${dir}`))
    )
      continue;
    if (/\.tmp-(\d+)$/.test(entry) && pidAlive(Number(entry.split('-').pop()))) continue; // another build in progress
    onProgress(`removing an unused older rootfs: ${dir}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Builds the cached rootfs once (debootstrap into a temp dir, renamed into place). */
export async function ensureRootfs({
  paths,
  spec = TARGET_ROOTFS,
  onProgress = () => {},
}: {
  paths: ContainerPaths;
  spec?: RootfsSpec;
  onProgress?: (line: string) => void;
}): Promise<{ built: boolean; seconds: number }> {
  const stamp = rootfsStamp(spec);
  const legacy = path.join(paths.cacheDir, `rootfs-${cacheName(spec)}`); // the unversioned name of the first builds
  const stampHash = (text: string): unknown => (JSON.parse(text) as { hash?: unknown }).hash;
  if (!fs.existsSync(paths.rootfs) && stampHash(readText(path.join(legacy, STAMP_FILE)) ?? '{}') === stamp.hash)
    fs.renameSync(legacy, paths.rootfs);
  const current = readText(path.join(paths.rootfs, STAMP_FILE));
  if (current && stampHash(current) === stamp.hash) return { built: false, seconds: 0 };
  const t0 = Date.now();
  fs.mkdirSync(paths.cacheDir, { recursive: true });
  const tmp = `${paths.rootfs}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  onProgress(`building the ${spec.release} rootfs with debootstrap (once; cached in ${paths.rootfs}) ...`);
  let last = 0;
  const r = await run(
    'debootstrap',
    ['--variant=minbase', `--include=${spec.packages.join(',')}`, spec.suite, tmp, MIRROR],
    {
      onLine: (line) => {
        if (
          /^I: (Retrieving|Validating|Extracting|Installing|Configuring|Unpacking|Base system)/.test(line) &&
          Date.now() - last > 3000
        ) {
          last = Date.now();
          onProgress(`  debootstrap: ${line.slice(3)}`);
        }
      },
    },
  );
  if (r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new OperatorError(`debootstrap could not build the ${spec.release} rootfs`, {
      details: logOf(r).split('\n').slice(-15).join('\n'),
      cause: `${MIRROR} is unreachable, or the disk is full`,
      next: `check that this machine reaches ${MIRROR} (apt-get update works), then run up again`,
    });
  }
  // An instance gets its own host keys and machine id at first boot: none are baked into the image.
  const sshDir = path.join(tmp, 'etc/ssh');
  for (const f of fs.existsSync(sshDir) ? fs.readdirSync(sshDir) : [])
    if (/^ssh_host_.*key(\.pub)?$/.test(f)) fs.rmSync(path.join(tmp, 'etc/ssh', f));
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
  removeUnusedRootfs(paths, spec, onProgress);
  const seconds = (Date.now() - t0) / 1000;
  onProgress(`rootfs built in ${seconds.toFixed(0)} s`);
  return { built: true, seconds };
}
