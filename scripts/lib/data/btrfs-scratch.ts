// A throw-away btrfs filesystem on THIS machine: a sparse image file in a temp directory, attached to a loop
// device, formatted and mounted. For the benchmark's local side (source, local receive) and for tests that need a
// "new laptop". Everything it makes is undone by destroy(): subvolumes deleted, unmounted, loop detached, files
// removed. Needs root, btrfs-progs and loop devices.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSize, parseSubvolumeList, parseSubvolumeShow, type SubvolumeInfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { runChecked, runResult, type RunResult } from '../core/process.js';
import { MiB } from '../core/units.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sizes like 512 (MiB), '2G', '300M' -> MiB (rounded up). */
export function toMiB(size: number | string): number {
  if (typeof size === 'number') return size;
  const bytes = parseSize(size, MiB);
  if (bytes === null) throw new Error(`not a size: ${size}`);
  return Math.ceil(bytes / MiB);
}

/** A mounted scratch btrfs (see createScratchBtrfs). */
export interface ScratchBtrfs {
  /** The temp directory holding the image and the mountpoint. */
  dir: string;
  /** The sparse image file. */
  image: string;
  /** The loop device, while attached. */
  device: string | null;
  mountpoint: string;
  sizeMiB: number;
  mounted: boolean;
  /** A path below the mountpoint. */
  path(...parts: string[]): string;
  /** destroyScratchBtrfs(this). */
  destroy(): Promise<void>;
}

export interface ScratchBtrfsOptions {
  /** Image size, MiB or a size like '2G' (default 1024; the image is sparse, so only what is written uses disk). */
  sizeMiB?: number | string;
  /** The filesystem label (default 'scratch'). */
  label?: string;
  /** Default ['noatime']. */
  mountOptions?: string[];
  /** Where the temp directory goes (default os.tmpdir()). */
  parentDir?: string;
}

/** Creates and mounts a scratch btrfs. */
export async function createScratchBtrfs({
  sizeMiB = 1024,
  label = 'scratch',
  mountOptions = ['noatime'],
  parentDir = os.tmpdir(),
}: ScratchBtrfsOptions = {}): Promise<ScratchBtrfs> {
  if (process.getuid?.() !== 0) {
    throw new OperatorError('a scratch btrfs needs root (loop devices and mount)', { next: 'run as root (sudo)' });
  }
  const dir = fs.mkdtempSync(path.join(parentDir, 'btrfs-scratch-'));
  const image = path.join(dir, 'volume.img');
  const mountpoint = path.join(dir, 'mnt');
  fs.mkdirSync(mountpoint);
  const handle: ScratchBtrfs = {
    dir,
    image,
    device: null,
    mountpoint,
    sizeMiB: toMiB(sizeMiB),
    mounted: false,
    path: (...parts) => path.join(mountpoint, ...parts),
    destroy: () => destroyScratchBtrfs(handle),
  };
  try {
    const fd = fs.openSync(image, 'w', 0o600);
    fs.ftruncateSync(fd, handle.sizeMiB * 1024 * 1024);
    fs.closeSync(fd);
    const device = (
      await runChecked('losetup', ['--find', '--show', image], { what: 'cannot attach a loop device' })
    ).stdout.trim();
    handle.device = device;
    await runChecked('mkfs.btrfs', ['-q', '-f', '-L', label, device], { what: `mkfs.btrfs on ${device} failed` });
    const opts = mountOptions.length ? ['-o', mountOptions.join(',')] : [];
    await runChecked('mount', ['-t', 'btrfs', ...opts, device, mountpoint], {
      what: `cannot mount the scratch btrfs at ${mountpoint}`,
    });
    handle.mounted = true;
    return handle;
  } catch (err) {
    await destroyScratchBtrfs(handle).catch(() => {});
    throw err;
  }
}

/** Lists the subvolumes below a mountpoint, deepest first (so they can be deleted in that order). */
export async function listSubvolumes(mountpoint: string): Promise<string[]> {
  const { stdout } = await runChecked('btrfs', ['subvolume', 'list', mountpoint], {
    what: `cannot list subvolumes under ${mountpoint}`,
  });
  return parseSubvolumeList(stdout)
    .map((s) => path.join(mountpoint, s.path))
    .sort((a, b) => b.split('/').length - a.split('/').length);
}

/** Undoes createScratchBtrfs; safe to call twice and after a partial create. */
export async function destroyScratchBtrfs(handle: ScratchBtrfs): Promise<void> {
  if (handle.mounted) {
    for (let i = 0; i < 10; i += 1) {
      const r = await runChecked('umount', [handle.mountpoint], { check: false });
      if (r.status === 0) break;
      if (i === 9) {
        const lazy = await runChecked('umount', ['-l', handle.mountpoint], { check: false });
        if (lazy.status !== 0)
          throw new OperatorError(`cannot unmount ${handle.mountpoint}`, {
            details: r.stderr,
            next: `umount ${handle.mountpoint}`,
          });
      }
      await sleep(300);
    }
    handle.mounted = false;
  }
  if (handle.device) {
    await runChecked('losetup', ['-d', handle.device], { check: false });
    handle.device = null;
  }
  fs.rmSync(handle.dir, { recursive: true, force: true });
}

/** Runs fn(handle) with a scratch btrfs and always destroys it afterwards. */
export async function withScratchBtrfs<T>(
  opts: ScratchBtrfsOptions | undefined,
  fn: (handle: ScratchBtrfs) => Promise<T>,
): Promise<T> {
  const handle = await createScratchBtrfs(opts);
  try {
    return await fn(handle);
  } finally {
    await destroyScratchBtrfs(handle);
  }
}

/** Creates a subvolume (parents must exist). */
export function createSubvolume(p: string): Promise<RunResult> {
  return runChecked('btrfs', ['subvolume', 'create', p], { what: `cannot create subvolume ${p}` });
}

/** A read-only snapshot of `source` at `dest`. */
export function snapshotReadOnly(source: string, dest: string): Promise<RunResult> {
  return runChecked('btrfs', ['subvolume', 'snapshot', '-r', source, dest], { what: `cannot snapshot ${source}` });
}

/** A writable snapshot (the "make it live" step of a restore). */
export function snapshotWritable(source: string, dest: string): Promise<RunResult> {
  return runChecked('btrfs', ['subvolume', 'snapshot', source, dest], { what: `cannot snapshot ${source}` });
}

/** Deletes subvolumes (committing, so the space is back before the next measurement). */
export function deleteSubvolumes(paths: string[]): Promise<RunResult> {
  if (!paths.length) return Promise.resolve(runResult({ status: 0 }));
  return runChecked('btrfs', ['subvolume', 'delete', '--commit-after', ...paths], {
    what: `cannot delete ${paths.join(' ')}`,
  });
}

/** `btrfs subvolume show`, parsed. */
export async function subvolumeInfo(p: string): Promise<SubvolumeInfo> {
  const { stdout } = await runChecked('btrfs', ['subvolume', 'show', p], { what: `cannot read subvolume ${p}` });
  return parseSubvolumeShow(stdout);
}

/** Flushes dirty data (before timing a send, so the send does not pay for writeback). */
export function syncFs(p: string): Promise<RunResult> {
  return runChecked('btrfs', ['filesystem', 'sync', p], { what: `cannot sync ${p}` });
}
