// Unit tests of the local target's pure parts (scripts/lib/local-target/local-target.ts). Bringing it up for real is in
// __tests__/integration/boot.local-target.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOTFS_PACKAGES,
  ebsByIdPath,
  localConnection,
  localSshdDropin,
  localTargetPaths,
  missingPrerequisites,
  newVolumeId,
  parseMarker,
  parseVolumeSize,
  rootfsStamp,
  status,
} from '../../scripts/lib/local-target/local-target.js';
import { formatConnection, parseEnvText, validateConnection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { BACKUP_ROOT } from '../../scripts/lib/core/host-layout.js';

describe('local target: names and formats', () => {
  test('the volume id has the EBS format, and its by-id name is the one a Nitro instance shows', () => {
    const id = newVolumeId(Buffer.from('0123456789abcdef', 'hex'));
    expect(id).toBe('vol-00123456789abcdef');
    expect(newVolumeId()).toMatch(/^vol-0[0-9a-f]{16}$/);
    expect(newVolumeId()).not.toBe(newVolumeId());
    expect(ebsByIdPath(id)).toBe('/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol00123456789abcdef');
  });

  test('the boot script accepts the synthetic id (its own pattern, vol- and 8 to 17 hex digits)', () => {
    const source = fs.readFileSync('user-data/bootstrap.sh', 'utf8');
    const re = /\$\{BTRBK_VOLUME_ID:-\}\s*=~\s*(\S+)\s*\]\]/.exec(source)![1];
    expect(new RegExp(re).test(newVolumeId())).toBe(true);
  });

  test('the connection file is in the aws_connection.env format, with the port and the pinned known_hosts', () => {
    const conn = localConnection({ port: 2299, sshKey: '/s/id_ed25519', knownHosts: '/s/known_hosts', volumeId: 'vol-0aaaaaaaaaaaaaaaa' });
    expect(validateConnection(conn)).toMatchObject({ BTRBK_AWS_SSH_PORT: '2299', BTRBK_AWS_KNOWN_HOSTS: '/s/known_hosts' });
    expect(parseEnvText(formatConnection(conn))).toEqual(conn);
    expect(conn).toMatchObject({ BTRBK_AWS_HOST: '127.0.0.1', BTRBK_AWS_USER: 'btrbk', BTRBK_AWS_PATH: BACKUP_ROOT, BTRBK_AWS_INSTANCE_ID: 'local-target', BTRBK_AWS_REGION: 'local' });
  });

  test("the target URL is in btrbk's grammar: ssh://HOST[:PORT]/PATH, no user part", () => {
    const { BTRBK_AWS_TARGET } = localConnection({ port: 2222, sshKey: 'k', knownHosts: 'h', volumeId: 'vol-0aaaaaaaaaaaaaaaa' });
    expect(BTRBK_AWS_TARGET).toBe('ssh://127.0.0.1:2222/backup_volume/backups/');
    // btrbk 0.32 check_url(): ^(ssh://(hostname|ipv4|[ipv6])(:[1-9][0-9]*)?)/
    expect(BTRBK_AWS_TARGET).toMatch(/^ssh:\/\/[0-9.]+(:[1-9][0-9]*)?\//);
  });

  test('the local-only sshd drop-in says where to listen and nothing else', () => {
    expect(localSshdDropin(2345).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['Port 2345', 'ListenAddress 127.0.0.1']);
  });

  test('volume sizes', () => {
    expect(parseVolumeSize('2G')).toBe(2 * 2 ** 30);
    expect(parseVolumeSize('512M')).toBe(512 * 2 ** 20);
    expect(parseVolumeSize('1GiB')).toBe(2 ** 30);
    expect(parseVolumeSize(String(2 ** 30))).toBe(2 ** 30);
    expect(() => parseVolumeSize('lots')).toThrow(OperatorError);
    expect(() => parseVolumeSize('100M')).toThrow(/too small/);
  });

  test('marker files parse as key=value lines', () => {
    expect(parseMarker('version=1\ncompleted=2025-01-01T00:00:00Z\nnoise\nstep=mount\n')).toEqual({ version: '1', completed: '2025-01-01T00:00:00Z', step: 'mount' });
  });

  test('the rootfs stamp is stable and records the package list', () => {
    expect(rootfsStamp().hash).toBe(rootfsStamp().hash);
    expect(rootfsStamp().packages).toEqual([...ROOTFS_PACKAGES].sort());
    expect(ROOTFS_PACKAGES).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'sudo']));
    // the packages the boot script installs are not baked in: it installs them like on AWS
    for (const p of ['btrfs-progs', 'btrbk', 'mbuffer', 'zstd']) expect(ROOTFS_PACKAGES).not.toContain(p);
  });

  test('paths live outside the repo, under XDG dirs, and each can be overridden', () => {
    const p = localTargetPaths({ HOME: '/home/me' });
    expect(p.cacheDir).toBe('/home/me/.cache/btrbk-aws-target');
    expect(p.rootfs).toBe(`/home/me/.cache/btrbk-aws-target/rootfs-bookworm-${rootfsStamp().hash}`);
    expect(p.stateDir).toBe('/home/me/.local/state/btrbk-aws-target/local-target');
    expect(p.volumeImage).toBe('/home/me/.local/state/btrbk-aws-target/local-target/volume.img');
    expect(p.envFile).toMatch(/\/local_connection\.env$/);
    expect(p.name).toBe('btrbk-local-target');
    expect(p.port).toBeUndefined();
    const q = localTargetPaths({ HOME: '/h', XDG_CACHE_HOME: '/c', XDG_STATE_HOME: '/s', BTRBK_LOCAL_TARGET_NAME: 'other', BTRBK_LOCAL_TARGET_PORT: '2400' });
    expect([q.cacheDir, q.stateDir, q.name, q.port]).toEqual(['/c/btrbk-aws-target', '/s/btrbk-aws-target/local-target', 'other', 2400]);
    const r = localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_STATE: '/x', BTRBK_LOCAL_TARGET_CACHE: '/y', BTRBK_LOCAL_TARGET_ENV_FILE: '/z.env' });
    expect([r.stateDir, r.cacheDir, r.envFile]).toEqual(['/x', '/y', '/z.env']);
  });
});

describe('local target: prerequisites', () => {
  test('without root and without btrfs it says what is missing and how to get it', () => {
    const missing = missingPrerequisites({ isRoot: false, filesystems: 'nodev\tproc\n\text4\n' });
    expect(missing.map((m) => m.what)).toEqual(expect.arrayContaining(['root', 'the btrfs filesystem in the kernel', 'the overlay filesystem in the kernel']));
    expect(missing.find((m) => m.what === 'root')!.fix).toMatch(/sudo npx zx scripts\/local-target.mjs up/);
    expect(missing.find((m) => m.what.includes('btrfs'))!.fix).toMatch(/modprobe btrfs/);
  });

  test('on this machine (root, btrfs, debootstrap, systemd-nspawn) nothing is missing', () => {
    expect(missingPrerequisites({ isRoot: true, filesystems: '\tbtrfs\nnodev\toverlay\n' })).toEqual([]);
  });
});

describe('local target: status of a target that was never started', () => {
  test('reports stopped, no volume, nothing mounted, without changing anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-status-'));
    try {
      const paths = localTargetPaths({ HOME: dir, BTRBK_LOCAL_TARGET_STATE: path.join(dir, 'state'), BTRBK_LOCAL_TARGET_ENV_FILE: path.join(dir, 'x.env') });
      const s = await status({ paths });
      expect(s).toMatchObject({ running: false, healthy: false, volumeImage: null, loopDevices: [], instanceMounted: false, mounted: false, envFile: null });
      expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
