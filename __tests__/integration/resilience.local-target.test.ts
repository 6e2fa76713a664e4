// Failure resilience against the test run's local target, with real processes: a real btrbk 0.32.5 client through
// the SSH gate, connections cut halfway, a target volume filled to the brim, a long transfer's progress.
// Everything changed on the target is put back: the backups made here (in the tools' scratch area, selftest/)
// are deleted through the gate, the fill file and the test directory by the target's root helper.
import { jest } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseUsage } from '../../scripts/lib/core/btrfs-output.js';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, SELFTEST_DIR_NAME, STAGING_DIR } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import {
  createScratchBtrfs,
  createSubvolume,
  snapshotReadOnly,
  type ScratchBtrfs,
} from '../../scripts/lib/data/btrfs-scratch.js';
import { writeRandomFile } from '../../scripts/lib/bench/bench.js';
import { deleteRemote, remoteReceiveStage, sendStage } from '../../scripts/lib/bench/bench-measure.js';
import { findIncompleteBackups, listBackups, restoreBackup } from '../../scripts/lib/data/restore.js';
import { GATE_COMMANDS, gateLine } from '../../scripts/lib/remote/gate-commands.js';
import { runRemote } from '../../scripts/lib/remote/ssh.js';
import { runChecks } from '../../scripts/lib/diagnose/checks.js';
import { formatProgress, runPipeline } from '../../scripts/lib/remote/transfer.js';
import { btrbkClient, waitUntil, type BtrbkClient, runEach } from './btrbk-client-harness.js';
import { sameBytes } from '../support/file-bytes.js';

jest.setTimeout(15 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const REMOTE_DIR = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/resilience-${process.pid}`;
const MiB = 1024 * 1024;
const DATA_MIB = 192;
const FILL_DIR = `${MOUNT_POINT}/resilience-fill-${process.pid}`;

let scratch: ScratchBtrfs;
let work: string;
let client: BtrbkClient;

async function backupsHere() {
  return listBackups(conn, REMOTE_DIR);
}

/** What receives left in the host's staging area (btrbk-receive removes its own unless it is killed). */
function stagingLeft(): string[] {
  const r = execInTarget(['ls', '-A', STAGING_DIR]);
  if (r.status !== 0) throw new Error(`ls of the staging area failed: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

async function waitForReceivesToEnd() {
  await waitUntil(
    () => execInTarget(['pgrep', '-f', 'btrfs receive|btrbk-receive']).status !== 0,
    60_000,
    'the receives on the target to end',
  );
}

async function verifyLatestBackup(label: string) {
  const all = (await backupsHere()).filter((b) => b.complete).sort((a, b) => a.path.localeCompare(b.path));
  const latest = all[all.length - 1];
  expect(latest).toBeDefined();
  const dir = scratch.path(`verify-${label}`);
  fs.mkdirSync(dir);
  const r = await restoreBackup(conn, latest.path, dir);
  const name = path.posix.basename(latest.path);
  expect(sameBytes(path.join(r.path, 'data.bin'), scratch.path('snaps', name, 'data.bin'))).toEqual({ same: true });
  return latest;
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'resilience-'));
  scratch = await createScratchBtrfs({ sizeMiB: 2048, label: 'resilience' });
  await createSubvolume(scratch.path('data'));
  fs.mkdirSync(scratch.path('snaps'));
  writeRandomFile(scratch.path('data', 'data.bin'), DATA_MIB * MiB);
  // rate_limit (mbuffer): the transfers take seconds however fast the machine is, so the kills below land in the
  // middle of a stream (unlimited, the 128 MiB incremental once crossed before a kill 0.5 s in, and CI failed)
  client = btrbkClient(conn, work, { volume: scratch.mountpoint, targetDir: REMOTE_DIR, extra: ['rate_limit 32m'] });
  const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(REMOTE_DIR)));
  if (mk.status !== 0) throw new Error(`mkdir through the gate failed: ${mk.stderr}`);
});

afterAll(async () => {
  await runEach([
    () => execInTarget(['rm', '-rf', '--one-file-system', FILL_DIR]),
    async () =>
      deleteRemote(
        conn,
        (await backupsHere()).map((b) => b.path),
      ),
    () => execInTarget(['rmdir', REMOTE_DIR]),
    () => scratch?.destroy(),
    () => fs.rmSync(work, { recursive: true, force: true }),
  ]);
});

describe('interrupted transfer', () => {
  test('the ssh connection cut halfway: btrbk fails, the host removes the half-received stream itself, the next run succeeds and verifies', async () => {
    const { child, done } = client.start('-v', 'run');
    // cut the connection that carries the stream once part of it has crossed
    const pid = Number(
      await waitUntil(
        () => fs.existsSync(client.receivePidFile) && fs.readFileSync(client.receivePidFile, 'utf8').trim(),
        60_000,
        'the receiving ssh',
      ),
    );
    // (0.3 s into a 192 MiB stream at 32 MiB/s)
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGKILL');
    const first = await done;
    expect(child.exitCode).not.toBe(0);
    expect(first.out).toMatch(/Failed to send\/receive subvolume/);
    // the stream was received in a staging directory of its own (btrbk-receive), which is removed whole: nothing
    // half-received ever appears where btrbk looks, so there is nothing for it (or anyone) to delete
    expect(first.out).not.toMatch(/Deleted partially received/);
    await waitForReceivesToEnd();
    expect(await findIncompleteBackups(conn, REMOTE_DIR)).toEqual([]);
    expect(await backupsHere()).toEqual([]);
    expect(stagingLeft()).toEqual([]);

    fs.rmSync(client.receivePidFile, { force: true });
    const second = client.run('-v', 'run');
    expect({ status: second.status, output: `${second.out}${second.err}` }).toMatchObject({ status: 0 });
    // btrbk sends every snapshot the target lacks: the one whose transfer was cut, and this run's
    const backups = await backupsHere();
    expect(backups.length).toBeGreaterThanOrEqual(1);
    expect(backups.every((b) => b.complete)).toBe(true);
    const local = fs.readdirSync(scratch.path('snaps')).sort();
    expect(backups.map((b) => path.posix.basename(b.path)).sort()).toEqual(local);
    await verifyLatestBackup('after-cut');
  });

  test('btrbk itself killed with its connection: nothing half-received is left on the target, no `btrbk clean` is needed, the next run succeeds', async () => {
    // a change big enough that its incremental transfer takes a while
    writeRandomFile(scratch.path('data', 'more.bin'), 128 * MiB);
    fs.rmSync(client.receivePidFile, { force: true });
    const countBefore = (await backupsHere()).length;
    const { child, done } = client.start('-v', 'run');
    const pid = Number(
      await waitUntil(
        () => fs.existsSync(client.receivePidFile) && fs.readFileSync(client.receivePidFile, 'utf8').trim(),
        60_000,
        'the receiving ssh',
      ),
    );
    // wait until the receive has created its subvolume in staging, then kill everything at once (a laptop that
    // loses power or network in the middle of a backup)
    await waitUntil(() => stagingLeft().length > 0, 60_000, 'the partial subvolume in staging');
    await new Promise((r) => setTimeout(r, 500));
    process.kill(-child.pid!, 'SIGKILL');
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone with the group */
    }
    await done;
    // the host notices the broken pipe a moment later: btrbk-receive's receive fails and it removes the staging dir
    await waitForReceivesToEnd();
    expect(stagingLeft()).toEqual([]);
    expect(await findIncompleteBackups(conn, REMOTE_DIR)).toEqual([]);
    expect((await backupsHere()).length).toBe(countBefore);
    // troubleshoot's check-volume finds nothing half-received either
    const [volume] = await runChecks(conn, ['check-volume']);
    const half = volume.results.find((r) => r.name === 'no half-received backups');
    expect(half).toMatchObject({ ok: true });
    expect(half!.warn).toBeFalsy();

    const next = client.run('-v', 'run');
    expect({ status: next.status, output: `${next.out}${next.err}` }).toMatchObject({ status: 0 });
    expect((await backupsHere()).every((b) => b.complete)).toBe(true);
    await verifyLatestBackup('after-kill');
  });

  test("a receive killed on the host (power loss, OOM): its staging leftover is removed by the host's prune run, never a backup", async () => {
    const snaps = fs.readdirSync(scratch.path('snaps')).sort();
    const snap = scratch.path('snaps', snaps[snaps.length - 1]);
    const dir = `${REMOTE_DIR}/killed`;
    expect((await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(dir)))).status).toBe(0);
    // committed first: `subvolume list` shows each root's generation as of the last commit, and the mkdir above
    // would otherwise move the backup root's from one listing to the next (seen under load: gen 375 -> 376)
    const subvolumes = () => {
      execInTarget(['btrfs', 'filesystem', 'sync', MOUNT_POINT]);
      return execInTarget(['btrfs', 'subvolume', 'list', '-R', MOUNT_POINT]).stdout;
    };
    const before = subvolumes();
    const transfer = runPipeline([sendStage(snap), remoteReceiveStage(conn, dir)]).then(
      () => null,
      (e) => e,
    );
    await waitUntil(() => stagingLeft().length > 0, 60_000, 'the receive in staging');
    // SIGKILL the host side first: nothing gets the chance to clean up
    expect(execInTarget(['pkill', '-KILL', '-f', 'btrbk-receive']).status).toBe(0);
    execInTarget(['pkill', '-KILL', '-f', 'btrfs receive']);
    expect(await transfer).not.toBeNull();
    await waitForReceivesToEnd();
    expect(stagingLeft().length).toBeGreaterThan(0);
    // the hourly prune (the same unit the timer starts) removes it; the backups stay
    const prune = execInTarget(['systemctl', 'start', 'btrbk-prune.service'], { timeout: 120_000 });
    expect({ status: prune.status, err: prune.stderr }).toMatchObject({ status: 0 });
    expect(stagingLeft()).toEqual([]);
    expect(subvolumes()).toBe(before);
    expect(await listBackups(conn, dir)).toEqual([]);
    execInTarget(['rmdir', dir]);
  });
});

describe('target full', () => {
  test('a send larger than the free space fails saying the target is full; earlier backups stay intact and verify', async () => {
    const before = (await backupsHere()).filter((b) => b.complete);
    expect(before.length).toBeGreaterThan(0);
    // fill the target's volume in 32 MiB steps until it takes no more (files deleted afterwards)
    const usage = execInTarget(['btrfs', 'filesystem', 'usage', '-b', MOUNT_POINT]);
    const free = parseUsage(usage.stdout)?.free ?? NaN;
    expect(free).toBeGreaterThan(DATA_MIB * MiB);
    const fill = execInTarget(
      [
        '/bin/sh',
        '-c',
        `mkdir -p ${FILL_DIR}; i=0; while fallocate -l 32M ${FILL_DIR}/$i 2>/dev/null; do i=$((i+1)); done; echo $i`,
      ],
      { timeout: 120_000 },
    );
    expect(Number(fill.stdout.trim()) * 32 * MiB).toBeGreaterThan(free / 2);
    try {
      await createSubvolume(scratch.path('big'));
      writeRandomFile(scratch.path('big', 'big.bin'), 160 * MiB);
      fs.mkdirSync(scratch.path('bigsnaps'));
      const snap = scratch.path('bigsnaps', 'big.1');
      await snapshotReadOnly(scratch.path('big'), snap);
      const err = (await runPipeline([sendStage(snap), remoteReceiveStage(conn, REMOTE_DIR)]).then(
        () => null,
        (e) => e,
      )) as { what: string; likelyCause: string; format(): string } | null;
      expect(err).not.toBeNull();
      expect(err!.likelyCause).toBe('the receiving filesystem is full');
      expect(err!.format()).toMatch(/No space left on device/);
      // the partial receive stayed in its staging directory, which btrbk-receive removed: nothing half-received
      await waitForReceivesToEnd();
      expect(await findIncompleteBackups(conn, REMOTE_DIR)).toEqual([]);
      expect(stagingLeft()).toEqual([]);
    } finally {
      execInTarget(['rm', '-rf', '--one-file-system', FILL_DIR]);
    }
    const after = (await backupsHere()).filter((b) => b.complete);
    expect(after.map((b) => b.path)).toEqual(before.map((b) => b.path));
    await verifyLatestBackup('after-full');
  });
});

describe('progress', () => {
  test('a real send through the gate reports bytes, a rate and an ETA when the size is known', async () => {
    const snaps = fs.readdirSync(scratch.path('snaps')).sort();
    const snap = scratch.path('snaps', snaps[snaps.length - 1]);
    const dir = `${REMOTE_DIR}/progress`;
    expect((await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(dir)))).status).toBe(0);
    const seen: { bytes: number; rate: number; eta: number | null; done: boolean }[] = [];
    try {
      const r = await runPipeline([sendStage(snap), remoteReceiveStage(conn, dir)], {
        total: DATA_MIB * MiB,
        progressIntervalMs: 200,
        onProgress: (p) => seen.push({ bytes: p.bytes, rate: p.rate, eta: p.eta, done: p.done }),
      });
      expect(r.bytes).toBeGreaterThan(DATA_MIB * MiB);
      const mid = seen.filter((p) => !p.done && p.bytes > 0 && p.rate > 0);
      expect(mid.length).toBeGreaterThan(1);
      expect(mid.some((p) => p.eta !== null && p.eta > 0)).toBe(true);
      expect(mid.map((p) => p.bytes)).toEqual([...mid.map((p) => p.bytes)].sort((a, b) => a - b));
      const sample = mid.find((p) => p.bytes > MiB) ?? mid[mid.length - 1];
      const line = formatProgress({
        ...sample,
        total: DATA_MIB * MiB,
        fraction: sample.bytes / (DATA_MIB * MiB),
      } as never);
      expect(line).toMatch(/^[\d.]+ [KMG]iB of 192 MiB \(\d+%\) {2}[\d.]+ [KMG]?i?B\/s {2}ETA [\d:]+$/);
      expect(seen[seen.length - 1].done).toBe(true);
    } finally {
      await deleteRemote(conn, [`${dir}/${path.basename(snap)}`]);
      execInTarget(['rmdir', dir]);
    }
  });
});
