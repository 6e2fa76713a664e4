// Unit tests of the container's pure parts (scripts/lib/local-target/container.ts). Booting it for real is in
// __tests__/integration/boot.local-target.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  instanceAptArchives,
  keepDownloadedDebs,
  localSshdDropin,
  seedAptArchives,
} from '../../scripts/lib/local-target/container.js';

describe('local target: names and formats', () => {
  test('the local-only sshd drop-in says where to listen and nothing else', () => {
    expect(
      localSshdDropin(2345)
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
    ).toEqual(['Port 2345', 'ListenAddress 127.0.0.1']);
  });
});

test('each instance gets its own apt archive directory, seeded from the shared cache; what it downloads is kept for the next', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apt-archives-'));
  try {
    const paths = { stateDir: path.join(dir, 'state'), aptArchives: path.join(dir, 'cache') };
    fs.mkdirSync(paths.aptArchives, { recursive: true });
    fs.writeFileSync(path.join(paths.aptArchives, 'btrbk_0.32.5-1_all.deb'), 'deb');
    fs.writeFileSync(path.join(paths.aptArchives, 'lock'), '');
    const own = seedAptArchives(paths);
    expect(own).toBe(instanceAptArchives(paths));
    expect(own.startsWith(paths.stateDir)).toBe(true);
    // apt's lock and partial downloads are the instance's own: two instances never wait for each other's lock
    expect(fs.readdirSync(own).sort()).toEqual(['btrbk_0.32.5-1_all.deb', 'partial']);
    expect(fs.readFileSync(path.join(own, 'btrbk_0.32.5-1_all.deb'), 'utf8')).toBe('deb');
    fs.writeFileSync(path.join(own, 'mbuffer_20230301-1_amd64.deb'), 'new');
    fs.writeFileSync(path.join(own, 'partial', 'zstd_1.5.4_amd64.deb'), 'half');
    expect(keepDownloadedDebs(paths)).toBe(1);
    expect(fs.readdirSync(paths.aptArchives).sort()).toEqual([
      'btrbk_0.32.5-1_all.deb',
      'lock',
      'mbuffer_20230301-1_amd64.deb',
    ]);
    expect(keepDownloadedDebs(paths)).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
