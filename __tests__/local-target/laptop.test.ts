// Unit tests of the laptop container's pure parts (scripts/lib/local-target/laptop.ts): its paths, its rootfs, the
// connection it holds, its uplink unit and its nspawn arguments. Booting it is __tests__/integration/laptop.local-target.test.ts.
import {
  laptopConnection,
  laptopNspawnArgs,
  laptopPaths,
  LAPTOP_ENV_FILE,
  LAPTOP_ROOTFS,
  LAPTOP_SECRETS_DIR,
  projectBinds,
  uplinkUnit,
} from '../../scripts/lib/local-target/laptop.js';
import { localConnection } from '../../scripts/lib/local-target/local-connection.js';
import { localTargetPaths } from '../../scripts/lib/local-target/paths.js';
import { rootfsDir, rootfsStamp, TARGET_ROOTFS } from '../../scripts/lib/local-target/rootfs.js';

const conn = localConnection({
  port: 2345,
  sshKey: '/state/id_ed25519',
  knownHosts: '/state/known_hosts',
  volumeId: 'vol-0123456789abcdef0',
});

describe('laptop container: names and formats', () => {
  test("its files live in their own state dir; the rootfs cache is the target's, one directory per suite and stamp", () => {
    const p = laptopPaths({ HOME: '/home/me' });
    const t = localTargetPaths({ HOME: '/home/me' });
    expect(p.stateDir).toBe('/home/me/.local/state/btrbk-aws-target/laptop');
    expect(p.volumeImage).toBe('/home/me/.local/state/btrbk-aws-target/laptop/disk.img');
    expect(p.name).toBe('btrbk-laptop');
    expect(p.cacheDir).toBe(t.cacheDir);
    expect(p.rootfs).toBe(`/home/me/.cache/btrbk-aws-target/rootfs-trixie-${rootfsStamp(LAPTOP_ROOTFS).hash}`);
    expect(p.rootfs).not.toBe(t.rootfs);
    const q = laptopPaths({
      HOME: '/h',
      BTRBK_LAPTOP_STATE: '/x',
      BTRBK_LAPTOP_NAME: 'lap-1',
      BTRBK_LOCAL_TARGET_CACHE: '/y',
    });
    expect([q.stateDir, q.name, q.cacheDir, q.uplinkDir]).toEqual(['/x', 'lap-1', '/y', '/x/uplink']);
  });

  test('the rootfs spec is a parameter: the target keeps its Debian 12 stamp (its cache stays valid), the laptop is Debian 13 with btrbk and node', () => {
    // the hash the target's rootfs had before the spec became a parameter: changing it would rebuild every cache
    expect(rootfsStamp().hash).toBe('1445497cf53e38dc');
    expect(rootfsStamp(TARGET_ROOTFS)).toEqual(rootfsStamp());
    expect(rootfsDir('/c')).toBe(`/c/rootfs-bookworm-${rootfsStamp().hash}`);
    expect(LAPTOP_ROOTFS.suite).toBe('trixie');
    expect(LAPTOP_ROOTFS.packages).toEqual(
      expect.arrayContaining(['btrbk', 'btrfs-progs', 'openssh-client', 'systemd', 'nodejs', 'socat']),
    );
    expect(LAPTOP_ROOTFS.packages).not.toContain('openssh-server');
    expect(rootfsStamp(LAPTOP_ROOTFS).hash).not.toBe(rootfsStamp().hash);
  });

  test('the laptop holds the same target with the key and known_hosts at its own paths', () => {
    const l = laptopConnection(conn);
    expect(l.targetUrl).toBe('ssh://127.0.0.1:2345/backup_volume/backups/');
    expect(l.port).toBe(2345);
    expect(l.keyFile).toBe(`${LAPTOP_SECRETS_DIR}/id_ed25519`);
    expect(l.knownHostsFile).toBe(`${LAPTOP_SECRETS_DIR}/known_hosts`);
    expect(LAPTOP_ENV_FILE.startsWith(`${LAPTOP_SECRETS_DIR}/`)).toBe(true);
    expect(conn.keyFile).toBe('/state/id_ed25519'); // the input is not changed
  });

  test('a connection to an AWS host is refused: the laptop reaches only the local target, and says what to do', () => {
    expect(() => laptopConnection({ ...conn, host: '203.0.113.7' }, 'aws_connection.env')).toThrow(
      /reaches only the local target; aws_connection.env names 203\.0\.113\.7/,
    );
  });

  test("the uplink unit forwards the target port on the laptop's loopback to the bound unix socket, and is enabled at boot", () => {
    const u = uplinkUnit(2345);
    expect(u).toMatch(
      /^ExecStart=\/usr\/bin\/socat TCP-LISTEN:2345,bind=127\.0\.0\.1,fork,reuseaddr UNIX-CONNECT:\/run\/laptop-uplink\/target\.sock$/m,
    );
    expect(u).toMatch(/^WantedBy=multi-user\.target$/m);
    expect(u).toMatch(/^Before=network-online\.target$/m);
    // stopping it (network down) never waits out systemd's 90 s for a socat child that outlives SIGTERM
    expect(u).toMatch(/^TimeoutStopSec=3$/m);
  });

  test('nspawn: a private network, the disk, the uplink directory, the project read-only', () => {
    const p = laptopPaths({ HOME: '/h' });
    expect(laptopNspawnArgs(p, { loop: '/dev/loop7', binds: ['/work/w', '/work/main/node_modules'] })).toEqual([
      '--private-network',
      '--bind=/dev/loop7',
      `--bind=${p.stateDir}/uplink:/run/laptop-uplink`,
      '--bind-ro=/work/w',
      '--bind-ro=/work/main/node_modules',
    ]);
  });

  test('node_modules linked out of the project (a worktree) is bound too; one inside it is not bound twice', () => {
    expect(projectBinds('/work/w', () => '/work/main/node_modules')).toEqual(['/work/w', '/work/main/node_modules']);
    expect(projectBinds('/work/main', (p) => p)).toEqual(['/work/main']);
    expect(
      projectBinds('/work/x', () => {
        throw new Error('ENOENT');
      }),
    ).toEqual(['/work/x']);
  });
});
