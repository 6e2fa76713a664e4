// The volume that stands in for the EBS volume: its synthetic id and by-id name, the sparse image file, and the
// loop device it is attached to while an instance runs.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { parseSize } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { runSync } from '../core/process.js';
import type { ContainerPaths } from './paths.js';
import { runOrThrow } from './system.js';

export const DEFAULT_VOLUME_SIZE = '2G';

/** The by-id name an EBS volume gets on a Nitro instance: the id without its dash. */
export function ebsByIdPath(volumeId: string): string {
  return `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
}

/** A synthetic, stable volume id in the EBS format (vol- and 17 hex digits). */
export function newVolumeId(bytes: Uint8Array = randomBytes(8)): string {
  return `vol-0${Buffer.from(bytes).toString('hex').slice(0, 16)}`;
}

/** The volume image's size (--volume-size: 2G, 512M, 1073741824) in bytes; at least 256 MiB. */
export function parseVolumeSize(text: string): number {
  const bytes = parseSize(text);
  if (bytes === null || !Number.isInteger(bytes))
    throw new OperatorError(`volume size ${JSON.stringify(text)} is not a size`, { next: 'give e.g. 2G or 512M' });
  if (bytes < 256 * 2 ** 20)
    throw new OperatorError(`volume size ${text} is too small`, {
      cause: 'btrfs needs at least 256 MiB here',
      next: 'give 1G or more',
    });
  return bytes;
}

/** Creates the sparse volume image unless it exists (an existing image is kept as it is). */
export function ensureVolumeImage(
  paths: ContainerPaths,
  { volumeSize, volumeId, onProgress }: { volumeSize?: string; volumeId: string; onProgress: (line: string) => void },
): void {
  if (fs.existsSync(paths.volumeImage)) return;
  const size = parseVolumeSize(volumeSize ?? DEFAULT_VOLUME_SIZE);
  onProgress(`creating a ${volumeSize ?? DEFAULT_VOLUME_SIZE} sparse volume image (${volumeId})`);
  const fd = fs.openSync(paths.volumeImage, 'wx', 0o600);
  fs.ftruncateSync(fd, size);
  fs.closeSync(fd);
}

/** Attaches the volume image to a free loop device; returns the device. */
export function attachVolume(paths: ContainerPaths): string {
  return runOrThrow('losetup', ['--find', '--show', paths.volumeImage]).stdout.trim();
}

/** The loop devices the image is attached to. */
export function loopDevicesOf(image: string): string[] {
  if (!fs.existsSync(image)) return [];
  const r = runSync('losetup', ['-j', image, '-O', 'NAME', '-n']);
  return r.status === 0
    ? r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
    : [];
}

/** Detaches the image from every loop device it is attached to. */
export function detachVolume(paths: ContainerPaths): void {
  for (const dev of loopDevicesOf(paths.volumeImage)) {
    const r = runSync('losetup', ['-d', dev]);
    if (r.status !== 0)
      throw new OperatorError(`cannot detach ${dev} from ${paths.volumeImage}`, {
        details: r.error?.message ?? r.stderr,
        next: `check what still uses it: lsblk ${dev}; fuser -vm ${dev}`,
      });
  }
}
