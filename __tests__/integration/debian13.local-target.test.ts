// The boot script on the host's newer neighbour (issue 19): the EC2 host runs Ubuntu 24.04 (OpenSSH 9.6, systemd
// 255, btrfs-progs 6.6, btrbk 0.32.6), between the Debian 12 the shared test target runs and Debian 13 (OpenSSH 10,
// systemd 257, btrfs-progs 6.14, btrbk 0.32.6). This file boots a second local target of its own on Debian 13
// (root, btrfs, systemd-nspawn), from the same boot script and payload bytes, and runs on it what setup runs on a
// new host (the smoke tests), the round trip, and the first confinement attack of issue 17 (btrfs-progs 6.14 prints
// `subvolume show` differently, and the gate filters that output).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { readConnection, type Connection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, BOOT_LOG, MOUNT_POINT } from '../../user-data/host-layout.js';
import { runRoundtrip } from '../../scripts/lib/data/roundtrip.js';
import { allPassed, runChecks } from '../../scripts/lib/diagnose/checks.js';
import {
  down,
  execInTarget,
  localTargetPaths,
  up,
  type UpResult,
} from '../../scripts/lib/local-target/local-target.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';
import { newUuid, SendStream } from '../support/send-stream.js';
import { freePort } from './test-target.js';

jest.setTimeout(15 * 60_000);

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-test-d13-'));
const env = {
  ...process.env,
  BTRBK_LOCAL_TARGET_STATE: stateDir,
  BTRBK_LOCAL_TARGET_NAME: `btrbk-test-d13-${path.basename(stateDir).slice(-6)}`,
  BTRBK_LOCAL_TARGET_ENV_FILE: path.join(stateDir, 'connection.env'),
  BTRBK_LOCAL_TARGET_PORT: '',
  // the plain Debian 13 rootfs: the boot script installs its packages there as on EC2 (run-tests preloads the others)
  BTRBK_LOCAL_TARGET_PRELOADED: '',
};
const paths = () => localTargetPaths(env);
let result: UpResult;
let conn: Connection;
const inTarget = (...argv: string[]): string => {
  const r = execInTarget(argv, { paths: paths() });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

beforeAll(async () => {
  env.BTRBK_LOCAL_TARGET_PORT = String(await freePort());
  result = await up({ env, release: '13', onProgress: (l) => process.stderr.write(`[debian13] ${l}\n`) });
  conn = readConnection(paths().envFile);
});

afterAll(async () => {
  await down({ env, purge: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('the boot script on Debian 13 (a second local target, root)', () => {
  test('boots healthy on Debian 13 with its newer btrfs-progs, btrbk, OpenSSH and systemd, and records the release', () => {
    expect(result.healthy).toBe(true);
    expect(result.release).toBe('13');
    expect(inTarget('cat', '/etc/debian_version')).toMatch(/^13\./);
    expect(inTarget('btrfs', '--version')).toMatch(/^btrfs-progs v6\.(1[4-9]|[2-9]\d)/);
    expect(inTarget('btrbk', '--version')).toMatch(/version 0\.32\.(6|[7-9])/);
    expect(execInTarget(['ssh', '-V'], { paths: paths() }).stderr).toMatch(/^OpenSSH_(1\d)\./);
    expect(inTarget('cat', BOOT_LOG)).toMatch(/btrbk-backup-host: SUCCESS/);
    expect(JSON.parse(fs.readFileSync(paths().stateFile, 'utf8')).release).toBe('13');
  });

  test("setup's smoke tests pass (check-ssh, check-volume) through the gate", async () => {
    const results = await runChecks(conn, ['check-ssh', 'check-volume']);
    const failed = results.flatMap((c) => c.results.filter((t) => !t.ok).map((t) => `${c.check}: ${t.name}`));
    expect(failed).toEqual([]);
    expect(allPassed(results)).toBe(true);
  });

  test('the round trip: full and incremental sends and receives back, contents and metadata identical', async () => {
    const r = await runRoundtrip(conn, { sizeMb: 16 });
    expect(r.steps.filter((s) => !s.ok).map((s) => s.name)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.ratio).toBeLessThan(0.5); // the incremental carries the change, not the whole
  });

  test("a stolen key learns no UUID of the top level from btrfs-progs 6.14's output, and a stream naming it is refused", async () => {
    const topUuid = /UUID:\s+(\S+)/.exec(inTarget('btrfs', 'subvolume', 'show', MOUNT_POINT))?.[1] ?? '';
    expect(topUuid).toMatch(/^[0-9a-f-]{36}$/);
    const said: string[] = [];
    for (const command of [
      `btrfs subvolume show '${MOUNT_POINT}'`,
      `btrfs subvolume show '${BACKUP_ROOT}'`,
      `btrfs subvolume list -a '${MOUNT_POINT}'`,
      `btrfs subvolume show --rootid=5 '${BACKUP_ROOT}'`,
    ]) {
      const r = await runRemote(conn, command);
      said.push(`${r.stdout}${r.stderr}`);
    }
    expect(said.join('\n')).not.toContain(topUuid);
    const dir = `${BACKUP_ROOT}/d13-${Date.now()}`;
    expect((await runRemote(conn, `mkdir -p '${dir}'`)).status).toBe(0);
    const stream = new SendStream().snapshot('top', newUuid(), 1, topUuid, 1).end().toBuffer();
    const r = await runRemote(conn, `sudo -n btrfs receive '${dir}/'`, { input: stream });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/ERROR: cannot find parent subvolume\n/);
    expect(r.stderr).not.toMatch(/reachable/);
    expect(execInTarget(['test', '-e', `${dir}/top`], { paths: paths() }).status).not.toBe(0);
  });
});
