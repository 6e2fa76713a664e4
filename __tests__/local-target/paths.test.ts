// Unit tests of where a local target's files live (scripts/lib/local-target/paths.ts).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { localTargetPaths, releasePaths } from '../../scripts/lib/local-target/paths.js';
import { LAPTOP_ROOTFS } from '../../scripts/lib/local-target/laptop.js';
import {
  isRootfsEntryOf,
  parseTargetRelease,
  rootfsStamp,
  TARGET_RELEASES,
} from '../../scripts/lib/local-target/rootfs.js';

describe('local target: names and formats', () => {
  test('paths live outside the repo, under XDG dirs, and each can be overridden', () => {
    const p = localTargetPaths({ HOME: '/home/me' });
    expect(p.cacheDir).toBe('/home/me/.cache/btrbk-aws-target');
    expect(p.rootfs).toBe(`/home/me/.cache/btrbk-aws-target/rootfs-bookworm-${rootfsStamp().hash}`);
    expect(p.stateDir).toBe('/home/me/.local/state/btrbk-aws-target/local-target');
    expect(p.volumeImage).toBe('/home/me/.local/state/btrbk-aws-target/local-target/volume.img');
    expect(p.envFile).toMatch(/\/local_connection\.env$/);
    expect(p.name).toBe('btrbk-local-target');
    expect(p.port).toBeUndefined();
    const q = localTargetPaths({
      HOME: '/h',
      XDG_CACHE_HOME: '/c',
      XDG_STATE_HOME: '/s',
      BTRBK_LOCAL_TARGET_NAME: 'other',
      BTRBK_LOCAL_TARGET_PORT: '2400',
    });
    expect([q.cacheDir, q.stateDir, q.name, q.port]).toEqual([
      '/c/btrbk-aws-target',
      '/s/btrbk-aws-target/local-target',
      'other',
      2400,
    ]);
    const r = localTargetPaths({
      HOME: '/h',
      BTRBK_LOCAL_TARGET_STATE: '/x',
      BTRBK_LOCAL_TARGET_CACHE: '/y',
      BTRBK_LOCAL_TARGET_ENV_FILE: '/z.env',
    });
    expect([r.stateDir, r.cacheDir, r.envFile]).toEqual(['/x', '/y', '/z.env']);
  });
});

describe('local target: which Debian it runs', () => {
  test('12 by default; 13 from BTRBK_LOCAL_TARGET_RELEASE or the release the state records, with its own rootfs and apt cache', () => {
    const state = fs.mkdtempSync(path.join(os.tmpdir(), 'release-'));
    try {
      const d12 = localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_STATE: state });
      expect([d12.release, path.basename(d12.aptArchives)]).toEqual(['12', 'apt-archives']);
      expect(d12.rootfs).toBe(`/h/.cache/btrbk-aws-target/rootfs-bookworm-${rootfsStamp().hash}`);
      const d13 = localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_STATE: state, BTRBK_LOCAL_TARGET_RELEASE: '13' });
      expect(d13.release).toBe('13');
      expect(d13.rootfs).toBe(
        `/h/.cache/btrbk-aws-target/rootfs-trixie-target-${rootfsStamp(TARGET_RELEASES['13']).hash}`,
      );
      expect(path.basename(d13.aptArchives)).toBe('apt-archives-trixie');
      // the same packages as Debian 12's: only the release differs
      expect(TARGET_RELEASES['13'].packages).toEqual(TARGET_RELEASES['12'].packages);
      fs.writeFileSync(path.join(state, 'state.json'), JSON.stringify({ release: '13' }));
      expect(localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_STATE: state }).release).toBe('13');
      expect(releasePaths('/c', '12')).toEqual({ ...releasePaths('/c', '12'), release: '12' });
    } finally {
      fs.rmSync(state, { recursive: true, force: true });
    }
  });

  test('a release is 12 or 13 (debian-13 or trixie too); anything else is refused naming the choices', () => {
    expect(parseTargetRelease('debian-13')).toBe('13');
    expect(parseTargetRelease('Trixie')).toBe('13');
    expect(parseTargetRelease('12')).toBe('12');
    expect(() => parseTargetRelease('11')).toThrow(OperatorError);
    expect(() => parseTargetRelease('buster')).toThrow(
      expect.objectContaining({ next: expect.stringMatching(/^use one of: 12, 13 /) }),
    );
    expect(() => localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_RELEASE: 'sid' })).toThrow(
      /BTRBK_LOCAL_TARGET_RELEASE sid is not a Debian release/,
    );
  });
});

test("the laptop's Debian 13 rootfs and the target's are separate cache entries: building one never removes the other", () => {
  const target = path.basename(localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_RELEASE: '13' }).rootfs);
  const laptop = `rootfs-trixie-${rootfsStamp(LAPTOP_ROOTFS).hash}`;
  expect(target).not.toBe(laptop);
  expect([target, `${target}.tmp-42`].map((e) => isRootfsEntryOf(e, TARGET_RELEASES['13']))).toEqual([true, true]);
  expect(isRootfsEntryOf(laptop, TARGET_RELEASES['13'])).toBe(false);
  expect(isRootfsEntryOf(target, LAPTOP_ROOTFS)).toBe(false);
  expect(isRootfsEntryOf('rootfs-trixie-0123456789abcdef', LAPTOP_ROOTFS)).toBe(true);
  expect(isRootfsEntryOf('rootfs-trixie', LAPTOP_ROOTFS)).toBe(true);
  expect(isRootfsEntryOf('rootfs-bookworm-0123456789abcdef', LAPTOP_ROOTFS)).toBe(false);
});

test('devices: from BTRBK_LOCAL_TARGET_DEVICES (set but empty: none), else the list the last up recorded, else none', () => {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'devices-'));
  try {
    const at = (env: Record<string, string> = {}) =>
      localTargetPaths({ HOME: '/h', BTRBK_LOCAL_TARGET_STATE: state, ...env }).devices;
    expect(at()).toBeUndefined();
    expect(at({ BTRBK_LOCAL_TARGET_DEVICES: 'alpha, bravo' })).toEqual(['alpha', 'bravo']);
    fs.writeFileSync(path.join(state, 'state.json'), JSON.stringify({ devices: ['alpha', 'bravo'] }));
    // a later up without the variable keeps them (leaving one out would revoke it)
    expect(at()).toEqual(['alpha', 'bravo']);
    expect(at({ BTRBK_LOCAL_TARGET_DEVICES: 'alpha' })).toEqual(['alpha']);
    expect(at({ BTRBK_LOCAL_TARGET_DEVICES: '' })).toEqual([]);
  } finally {
    fs.rmSync(state, { recursive: true, force: true });
  }
});
