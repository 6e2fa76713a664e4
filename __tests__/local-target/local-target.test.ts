// Unit tests of the local target's API (scripts/lib/local-target/local-target.ts) that need no container. Bringing
// it up for real is in __tests__/integration/boot.local-target.test.ts; the pure parts are tested next to this file.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { localTargetPaths, status } from '../../scripts/lib/local-target/local-target.js';

describe('local target: status of a target that was never started', () => {
  test('reports stopped, no volume, nothing mounted, without changing anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lt-status-'));
    try {
      const paths = localTargetPaths({
        HOME: dir,
        BTRBK_LOCAL_TARGET_STATE: path.join(dir, 'state'),
        BTRBK_LOCAL_TARGET_ENV_FILE: path.join(dir, 'x.env'),
      });
      const s = await status({ paths });
      expect(s).toMatchObject({
        running: false,
        healthy: false,
        volumeImage: null,
        loopDevices: [],
        instanceMounted: false,
        mounted: false,
        envFile: null,
      });
      expect(fs.existsSync(path.join(dir, 'state'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
