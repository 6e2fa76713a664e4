// Unit tests of where a local target's files live (scripts/lib/local-target/paths.ts).
import { localTargetPaths } from '../../scripts/lib/local-target/paths.js';
import { rootfsStamp } from '../../scripts/lib/local-target/rootfs.js';

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
