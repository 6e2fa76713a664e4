// The Debian 12 rootfs every instance boots from: built once with debootstrap, cached outside the repo under a
// stamp of what went into it, rebuilt (and the old one removed when unused) when that changes.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { parseMountinfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { run } from '../core/process.js';
import type { LocalTargetPaths } from './paths.js';
import { logOf, pidAlive, readText } from './system.js';

export const SUITE = 'bookworm';
export const MIRROR = 'http://deb.debian.org/debian';
/** Packages the rootfs gets beyond minbase: what an Ubuntu cloud image has that the boot script relies on. */
export const ROOTFS_PACKAGES = Object.freeze(['systemd', 'systemd-sysv', 'dbus', 'openssh-server', 'sudo', 'passwd', 'mount', 'util-linux', 'procps']);
const STAMP_FILE = '.btrbk-aws-target-rootfs.json';

/** Stamp of the cached rootfs: rebuilt when any of these change. */
export function rootfsStamp(): { suite: string; mirror: string; variant: string; packages: string[]; layout: number; hash: string } {
  const spec = { suite: SUITE, mirror: MIRROR, variant: 'minbase', packages: [...ROOTFS_PACKAGES].sort(), layout: 1 };
  return { ...spec, hash: createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16) };
}

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
  paths,
  onProgress = () => {},
}: { paths: LocalTargetPaths; onProgress?: (line: string) => void }): Promise<{ built: boolean; seconds: number }> {
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
