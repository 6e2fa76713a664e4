// Unit tests of the cached rootfs's stamp (scripts/lib/local-target/rootfs.ts).
import { ROOTFS_PACKAGES, rootfsStamp } from '../../scripts/lib/local-target/rootfs.js';

describe('local target: names and formats', () => {
  test('the rootfs stamp is stable and records the package list', () => {
    expect(rootfsStamp().hash).toBe(rootfsStamp().hash);
    expect(rootfsStamp().packages).toEqual([...ROOTFS_PACKAGES].sort());
    expect(ROOTFS_PACKAGES).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'sudo']));
    // the packages the boot script installs are not baked in: it installs them like on AWS
    for (const p of ['btrfs-progs', 'btrbk', 'mbuffer', 'zstd']) expect(ROOTFS_PACKAGES).not.toContain(p);
  });
});
