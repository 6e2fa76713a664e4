// What this machine needs to run the local target (root, btrfs, overlayfs, debootstrap, systemd-nspawn, ...), and
// how to get what it lacks.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from '../core/errors.js';
import { runSync } from '../core/process.js';
import { readText } from './system.js';

const TOOLS: Readonly<Record<string, string>> = {
  'systemd-nspawn': 'systemd-container',
  debootstrap: 'debootstrap',
  losetup: 'util-linux',
  nsenter: 'util-linux',
  'ssh-keygen': 'openssh-client',
  'mkfs.btrfs': 'btrfs-progs',
};

function hasCommand(cmd: string): boolean {
  return (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .concat(['/usr/sbin', '/sbin'])
    .some((d) => {
      try {
        fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
        return true;
      } catch {
        return false;
      }
    });
}

/** What this machine lacks for the local target: [{what, fix}]. Empty when everything is there. */
export function missingPrerequisites({
  isRoot = process.getuid?.() === 0,
  filesystems = readText('/proc/filesystems') ?? '',
}: { isRoot?: boolean; filesystems?: string } = {}): Array<{ what: string; fix: string }> {
  const missing: Array<{ what: string; fix: string }> = [];
  if (!isRoot)
    missing.push({
      what: 'root',
      fix: 'run as root (sudo npx zx scripts/local-target.mjs up): it mounts, attaches loop devices and starts a container',
    });
  const pkgs = [
    ...new Set(
      Object.entries(TOOLS)
        .filter(([cmd]) => !hasCommand(cmd))
        .map(([, pkg]) => pkg),
    ),
  ];
  if (pkgs.length)
    missing.push({ what: `commands from ${pkgs.join(', ')}`, fix: `sudo apt-get install -y ${pkgs.join(' ')}` });
  const fsList = filesystems.split('\n').map((l) => l.trim().split(/\s+/).pop());
  for (const fsName of ['btrfs', 'overlay']) {
    if (!fsList.includes(fsName)) {
      const r = isRoot ? runSync('modprobe', [fsName]) : { status: 1 };
      if (r.status !== 0)
        missing.push({
          what: `the ${fsName} filesystem in the kernel`,
          fix: `sudo modprobe ${fsName} (a kernel with ${fsName} support is needed)`,
        });
    }
  }
  return missing;
}

/** Throws an OperatorError listing what is missing, if anything is. */
export function assertPrerequisites(): void {
  const missing = missingPrerequisites();
  if (!missing.length) return;
  throw new OperatorError(`the local target cannot run here: missing ${missing.map((m) => m.what).join('; ')}`, {
    details: missing.map((m) => `${m.what}: ${m.fix}`).join('\n'),
    cause: 'the local target needs root, btrfs, overlayfs, debootstrap and systemd-nspawn',
    next: 'install what is listed above (node scripts/ensure-deps.mjs demo does it as root), then run up again',
  });
}
