// The round trip's remote commands (data/roundtrip.ts REMOTE) against the real gate in --dry-run mode. Its
// verification is in manifest.test.ts; the whole round trip against the local target is in
// __tests__/integration/roundtrip.local-target.test.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { REMOTE } from '../../scripts/lib/data/roundtrip.js';

describe('round trip: every remote command has the form the real gate accepts', () => {
  const gate = path.join(REPO_ROOT, 'user-data', 'btrbk-ssh-gate.sh');
  const dry = (cmd: string) =>
    spawnSync('bash', [gate, '--dry-run', '--logger', '/bin/true'], {
      env: { SSH_ORIGINAL_COMMAND: cmd, PATH: process.env.PATH },
      encoding: 'utf8',
    });
  const dir = '/backup_volume/backups/selftest/roundtrip-test';
  const snap = `${dir}/roundtrip.20261123T225821-eec006.2`;
  const parent = `${dir}/roundtrip.20261123T225821-eec006.1`;
  it.each([
    ['mkdir -p', REMOTE.mkdir(dir), [['/usr/bin/mkdir', '-p', dir]]],
    ['receive', REMOTE.receive(dir, null), [['/usr/bin/sudo', '-n', '/usr/local/sbin/btrbk-receive', dir]]],
    [
      'receive, zstd',
      REMOTE.receive(dir, 'zstd'),
      [
        ['/usr/bin/zstd', '-d', '-c'],
        ['/usr/bin/sudo', '-n', '/usr/local/sbin/btrbk-receive', dir],
      ],
    ],
    ['send', REMOTE.send(parent, null, null), [['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'send', parent]]],
    [
      'send -p, zstd',
      REMOTE.send(snap, parent, 'zstd'),
      [
        ['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'send', '-p', parent, snap],
        ['/usr/bin/zstd', '-c'],
      ],
    ],
    ['show', REMOTE.show(snap), [['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'subvolume', 'show', snap]]],
    ['delete', REMOTE.delete(snap), [['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'subvolume', 'delete', snap]]],
  ])('%s', (_label, cmd, argv) => {
    const r = dry(cmd as string);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(argv);
  });
});
