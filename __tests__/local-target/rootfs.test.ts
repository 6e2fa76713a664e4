// Unit tests of the cached rootfs's stamp and specs (scripts/lib/local-target/rootfs.ts).
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { localTargetPaths } from '../../scripts/lib/local-target/paths.js';
import {
  bootScriptPackages,
  isRootfsEntryOf,
  ROOTFS_PACKAGES,
  rootfsDir,
  rootfsStamp,
  TARGET_RELEASES,
  targetRootfsSpec,
} from '../../scripts/lib/local-target/rootfs.js';

describe('local target: names and formats', () => {
  test('the rootfs stamp is stable and records the package list', () => {
    expect(rootfsStamp().hash).toBe(rootfsStamp().hash);
    expect(rootfsStamp().packages).toEqual([...ROOTFS_PACKAGES].sort());
    expect(ROOTFS_PACKAGES).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'sudo']));
    // the packages the boot script installs are not baked in: it installs them like on AWS
    for (const p of ['btrfs-progs', 'btrbk', 'mbuffer', 'zstd']) expect(ROOTFS_PACKAGES).not.toContain(p);
  });
});

describe('the preloaded rootfs (the boot script finds its packages, as in a custom AMI)', () => {
  test("the boot script's package list is read from its PACKAGES line, and a script without one is an error", () => {
    const script = fs.readFileSync(path.join(REPO_ROOT, 'user-data', 'bootstrap.sh'), 'utf8');
    const line = /^readonly PACKAGES=\((.*)\)$/m.exec(script)?.[1];
    expect(bootScriptPackages()).toEqual(line?.split(' '));
    expect(bootScriptPackages()).toEqual(expect.arrayContaining(['btrfs-progs', 'btrbk', 'mbuffer', 'zstd']));
    expect(() => bootScriptPackages('#!/bin/bash\nPACKAGES=(a b)\n')).toThrow(/no `readonly PACKAGES=/);
  });

  test('plain by default; preloaded adds the boot packages, under a cache name of its own', () => {
    expect(targetRootfsSpec('12')).toBe(TARGET_RELEASES['12']);
    const pre = targetRootfsSpec('12', true);
    expect(pre.packages).toEqual(expect.arrayContaining([...ROOTFS_PACKAGES, ...bootScriptPackages()]));
    expect(new Set(pre.packages).size).toBe(pre.packages.length); // sudo, openssh-server once
    expect(rootfsStamp(pre).hash).not.toBe(rootfsStamp(TARGET_RELEASES['12']).hash);
    const plainDir = path.basename(rootfsDir('/c', TARGET_RELEASES['12']));
    const preDir = path.basename(rootfsDir('/c', pre));
    expect(preDir).toMatch(/^rootfs-bookworm-preloaded-[0-9a-f]{16}$/);
    // building one never removes the other as an older build of its own
    expect(isRootfsEntryOf(preDir, TARGET_RELEASES['12'])).toBe(false);
    expect(isRootfsEntryOf(plainDir, pre)).toBe(false);
    expect(path.basename(rootfsDir('/c', targetRootfsSpec('13', true)))).toMatch(/^rootfs-trixie-target-preloaded-/);
  });

  test('BTRBK_LOCAL_TARGET_PRELOADED=1 picks the preloaded rootfs; unset or empty, the plain one', () => {
    const env = { HOME: '/h', BTRBK_LOCAL_TARGET_STATE: '/nonexistent/state' };
    expect(localTargetPaths(env)).toMatchObject({ preloaded: false, rootfs: rootfsDir('/h/.cache/btrbk-aws-target') });
    expect(localTargetPaths({ ...env, BTRBK_LOCAL_TARGET_PRELOADED: '' }).preloaded).toBe(false);
    expect(localTargetPaths({ ...env, BTRBK_LOCAL_TARGET_PRELOADED: '1' })).toMatchObject({
      preloaded: true,
      rootfs: rootfsDir('/h/.cache/btrbk-aws-target', targetRootfsSpec('12', true)),
    });
  });
});
