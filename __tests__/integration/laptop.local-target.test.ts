// The laptop container itself (scripts/lib/local-target/laptop.ts), booted for real: Debian 13 under systemd with
// trixie's btrbk and node, its own btrfs disk, the project read-only, and an uplink to the run's local target that
// the tests can cut. The backup command on it: laptop-backup.local-target.test.ts.
import { jest } from '@jest/globals';
import fs from 'node:fs';
import process from 'node:process';
import { readConnection, REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { sshBanner } from '../../scripts/lib/local-target/local-connection.js';
import { isMountPoint } from '../../scripts/lib/local-target/system.js';
import {
  laptopNetwork,
  laptopReachesTarget,
  laptopStatus,
  LAPTOP_DISK_MOUNT,
  LAPTOP_ENV_FILE,
} from '../../scripts/lib/local-target/laptop.js';
import { loopDevicesOf } from '../../scripts/lib/local-target/volume.js';
import { startTestLaptop, type TestLaptop } from './laptop-harness.js';

jest.setTimeout(15 * 60_000);

const { port } = readConnection(process.env.BTRBK_ENV_FILE ?? '');
let laptop: TestLaptop;

beforeAll(async () => {
  laptop = await startTestLaptop('box');
});
afterAll(async () => {
  await laptop?.destroy();
});

test('the laptop boots Debian 13 under systemd, with btrbk 0.32 and node 20 of trixie, and is healthy', () => {
  const s = laptopStatus(laptop.paths);
  expect(s).toMatchObject({
    running: true,
    healthy: true,
    diskMounted: true,
    port,
    uplink: { host: true, unit: true },
  });
  expect(laptop.exec(['cat', '/etc/debian_version']).stdout).toMatch(/^13\./);
  expect(laptop.exec(['systemctl', 'is-system-running']).stdout.trim()).toMatch(/^(running|degraded)$/);
  expect(laptop.exec(['btrbk', '--version']).stdout).toMatch(/btrbk command line client, version 0\.32\./);
  expect(laptop.exec(['node', '--version']).stdout).toMatch(/^v20\./);
  expect(laptop.exec(['hostname']).stdout.trim()).toBe(laptop.paths.name);
});

test('its disk is a btrfs mounted noatime with the subvolumes home and srv', () => {
  const m = laptop.exec(['findmnt', '-n', '-o', 'FSTYPE,OPTIONS', LAPTOP_DISK_MOUNT]).stdout;
  expect(m).toMatch(/^btrfs\s/);
  expect(m).toMatch(/\bnoatime\b/);
  const subs = laptop.exec(['btrfs', 'subvolume', 'list', '-o', LAPTOP_DISK_MOUNT]).stdout;
  expect(subs).toMatch(/ path home$/m);
  expect(subs).toMatch(/ path srv$/m);
});

test("the project is there read-only at its own path, and the backup command's zx runs on trixie's node", () => {
  const r = laptop.exec(['node_modules/.bin/zx', '--version']);
  expect(r.status).toBe(0);
  expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  expect(laptop.exec(['test', '-f', `${REPO_ROOT}/package.json`]).status).toBe(0);
  const w = laptop.exec(['touch', `${REPO_ROOT}/.laptop-write-test`]);
  expect(w.status).not.toBe(0);
  expect(w.stderr).toMatch(/Read-only file system/);
});

test("it holds the connection file, the backup key and the pinned known_hosts, and reaches the target's sshd with them", () => {
  expect(laptop.exec(['cat', LAPTOP_ENV_FILE]).stdout).toMatch(new RegExp(`^BTRBK_AWS_SSH_PORT='?${port}'?$`, 'm'));
  expect(laptop.exec(['stat', '-c', '%a', '/root/btrbk-aws/id_ed25519']).stdout.trim()).toBe('600');
  expect(laptopReachesTarget(port, laptop.paths)).toMatch(/^SSH-2\.0-OpenSSH/);
  // a real ssh with the laptop's key and pinned host key: the gate answers (and refuses a shell)
  const ssh = laptop.exec(
    [
      'ssh',
      '-p',
      String(port),
      '-i',
      '/root/btrbk-aws/id_ed25519',
      '-o',
      'BatchMode=yes',
      '-o',
      'UserKnownHostsFile=/root/btrbk-aws/known_hosts',
      '-o',
      'StrictHostKeyChecking=yes',
      'btrbk@127.0.0.1',
      'btrfs subvolume list /etc',
    ],
    { timeout: 30_000 },
  );
  // (the gate's refusal: this ssh got past the host key check and the key login)
  expect(ssh.stderr).toMatch(/rejected/);
});

test('network down cuts the laptop off the target (and not this machine); network up restores it', async () => {
  await laptopNetwork('down', laptop.paths);
  expect(laptopReachesTarget(port, laptop.paths)).toBeNull();
  expect(laptopStatus(laptop.paths)).toMatchObject({ healthy: true, uplink: { host: true, unit: false } });
  expect(await sshBanner(port)).toMatch(/^SSH-2\.0-/); // this machine still reaches the target
  await laptopNetwork('up', laptop.paths);
  expect(laptopReachesTarget(port, laptop.paths)).toMatch(/^SSH-2\.0-/);
});

test('down leaves nothing mounted or attached and keeps the disk; up again is a fresh OS on the same disk', async () => {
  laptop.exec(['sh', '-c', `echo kept > ${LAPTOP_DISK_MOUNT}/home/file.txt && echo gone > /etc/laptop-os-file`]);
  await laptop.down();
  expect(isMountPoint(laptop.paths.root)).toBe(false);
  expect(loopDevicesOf(laptop.paths.volumeImage)).toEqual([]);
  expect(fs.existsSync(laptop.paths.volumeImage)).toBe(true);
  expect(laptopStatus(laptop.paths).running).toBe(false);
  await laptop.up();
  expect(laptop.exec(['cat', `${LAPTOP_DISK_MOUNT}/home/file.txt`]).stdout).toBe('kept\n');
  expect(laptop.exec(['test', '-e', '/etc/laptop-os-file']).status).toBe(1);
});
