// Debian packages the product needs on this machine, checked before the demo and the tests. As root the
// missing ones are installed with apt-get; otherwise the error names the one `sudo apt-get install ...` line to run.
import process from 'node:process';
import { OperatorError } from './errors.js';
import { runSync as runSyncDefault, type RunSync } from './process.js';

/** Package -> why it is needed. `demo` is the local target and a round trip; `test` adds linters. */
export const PACKAGES = Object.freeze({
  demo: {
    'btrfs-progs': 'btrfs send/receive and mkfs on this machine',
    btrbk: 'the backup engine on the laptop side',
    'systemd-container': 'systemd-nspawn runs the local target',
    debootstrap: 'builds the local target rootfs (Debian 12)',
    'openssh-client': 'ssh to the backup host',
    mbuffer: 'stream buffer between send and ssh',
    zstd: 'stream compression',
    'util-linux': 'losetup for the loop-device volume',
    e2fsprogs: 'tests that the boot script refuses a volume with another filesystem',
    rsync: 'the rsync comparison in the benchmark',
    attr: 'setfattr/getfattr for the round trip extended-attribute checks',
    socat: "the laptop container's link to the local target",
  },
  test: {
    shellcheck: 'lints user-data/',
    sudo: 'visudo checks the sudoers fragment the boot script installs',
    'ssh-audit': "audits the host's sshd algorithms on the local target",
  },
});
/** What the packages are for: `demo` (the local target, a round trip) or `test` (that, plus the test linters). */
export type Purpose = keyof typeof PACKAGES;

export interface EnsurePackagesOptions {
  log?: (line: string) => void;
  /** Runs dpkg-query and apt-get (core/process.ts runSync; tests fake it). */
  runSync?: RunSync;
  /** Whether this process may install packages itself; default: running as uid 0. */
  isRoot?: boolean;
}

/** What ensurePackages found missing and installed (both empty when nothing was missing). */
export interface EnsurePackagesResult {
  missing: string[];
  installed: string[];
}

/** Package -> why it is needed, for a purpose. */
export function packagesFor(purpose: Purpose): Record<string, string> {
  const list: Record<string, string> = { ...PACKAGES.demo };
  if (purpose === 'test') Object.assign(list, PACKAGES.test);
  return list;
}

/** Returns the names in `names` that dpkg does not report as installed. */
export function missingPackages(names: string[], runSync: RunSync = runSyncDefault): string[] {
  const r = runSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\n', ...names]);
  if (r.error) {
    throw new OperatorError('cannot ask dpkg which packages are installed', {
      cause: `dpkg-query failed: ${r.error.message}; this tool's tests and local target need a Debian-based Linux`,
      next: 'run on Debian 12 / Ubuntu 24.04, or install the packages by hand: ' + names.join(' '),
    });
  }
  const installed = new Set(
    r.stdout
      .split('\n')
      .filter((l) => /\sii\s*$/.test(l))
      .map((l) => l.split(' ')[0].replace(/:.*$/, '')),
  );
  return names.filter((n) => !installed.has(n));
}

/** The one command line that installs `missing` (what a person without root is told to run). */
export function installCommand(missing: string[]): string {
  return `sudo apt-get install -y ${missing.join(' ')}`;
}

/**
 * Ensures the packages for `purpose` are present. Returns {missing, installed}. Throws an OperatorError with
 * the install line when they are missing and this process cannot install them.
 */
export function ensurePackages(
  purpose: Purpose,
  { log = console.log, runSync = runSyncDefault, isRoot = process.getuid?.() === 0 }: EnsurePackagesOptions = {},
): EnsurePackagesResult {
  const wanted = packagesFor(purpose);
  const missing = missingPackages(Object.keys(wanted), runSync);
  if (!missing.length) return { missing: [], installed: [] };
  const why = missing.map((m) => `  - ${m}: ${wanted[m]}`).join('\n');
  if (!isRoot) {
    throw new OperatorError(`missing Debian packages: ${missing.join(' ')}`, {
      details: why,
      cause: 'they are not installed, and only root can install them',
      next: installCommand(missing),
    });
  }
  log(`installing missing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // apt-get's output goes to the terminal
  const upd = runSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const inst =
    upd.status === 0
      ? runSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'inherit', env })
      : upd;
  if (inst.status !== 0) {
    throw new OperatorError(`apt-get could not install ${missing.join(' ')}`, {
      details: why,
      cause: 'the package lists could not be fetched, or another apt process holds the lock',
      next: `check the network to the Debian mirror, then run: ${installCommand(missing).replace(/^sudo /, '')}`,
    });
  }
  const still = missingPackages(missing, runSync);
  if (still.length)
    throw new OperatorError(`still missing after apt-get: ${still.join(' ')}`, { next: installCommand(still) });
  return { missing, installed: missing };
}
