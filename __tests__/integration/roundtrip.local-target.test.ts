// The round trip against the test run's local target, for real: scratch btrfs filesystems on loop devices here,
// btrfs send/receive through real SSH and the gate, restore onto a second filesystem, file-by-file
// verification. Also: a failure halfway still cleans up local and remote subvolumes, and the CLI closes with
// "N passed, M failed".
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseMountinfo } from '../../scripts/lib/core/btrfs-output.js';
import { LOCAL_ENV_FILE, REPO_ROOT, readConnection } from '../../scripts/lib/core/connection.js';
import { MOUNT_POINT } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { REMOTE_DIR_NAME, runRoundtrip, type RoundtripEvent } from '../../scripts/lib/data/roundtrip.js';

jest.setTimeout(300_000);

const envFile = process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE;
const conn = readConnection(envFile);
const remoteDir = `${conn.backupRoot}/${REMOTE_DIR_NAME}`;

/** Subvolumes of this run left on the target (as root inside the container, not through the gate). */
function leftOnTarget(runId: string) {
  const r = execInTarget(['btrfs', 'subvolume', 'list', '-o', MOUNT_POINT]);
  return r.stdout.split('\n').filter((l) => l.includes(runId));
}
/** The scratch mount points a run used (from its first step's detail) that are still mounted here. */
function stillMounted(r: { steps: { detail: string }[] }) {
  const used = r.steps[0].detail.match(/\/\S+\/btrfs-scratch-[^/\s]+\/mnt/g) ?? [];
  expect(used).toHaveLength(2);
  const mounts = parseMountinfo(fs.readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint);
  return used.filter((m) => mounts.includes(m) || fs.existsSync(m));
}

describe('round trip against the local target', () => {
  it('full + incremental, there and back, content and metadata identical, everything cleaned up (zstd on the wire)', async () => {
    const events: RoundtripEvent[] = [];
    const r = await runRoundtrip(conn, { sizeMb: 24, compress: 'zstd', onEvent: (e) => events.push(e) });
    const failed = r.steps.filter((s) => !s.ok);
    expect(failed).toEqual([]);
    expect(r.passed).toBe(r.steps.length);
    expect(r.steps.map((s) => s.name)).toEqual(
      expect.arrayContaining([
        'full send to the target',
        'incremental send to the target (-p snapshot 1)',
        'target holds both snapshots read-only, received from the originals',
        'full receive back from the target',
        'incremental receive back from the target (-p snapshot 1)',
        expect.stringMatching(/^snapshot 2 restored: content identical \(sha256 of \d+ files\)$/),
        'snapshot 2 restored: metadata identical',
      ]),
    );
    expect(r.steps.find((s) => s.name === 'snapshot 1 restored: metadata identical')?.detail).toMatch(
      /4 symlinks, 3 hard-linked names, 7 xattrs, 1 sparse file\(s\) still sparse/,
    );
    // figures: 4 transfers; the full send carries the data, the incremental a fraction of it
    expect(r.transfers.map((t) => t.name)).toEqual([
      'full send',
      'incremental send',
      'full receive',
      'incremental receive',
    ]);
    const [full, incr] = r.transfers;
    expect(full.streamBytes).toBeGreaterThan(18 * 1024 * 1024);
    expect(incr.streamBytes).toBeGreaterThan(3 * 1024 * 1024);
    expect(r.ratio).toBeGreaterThan(0.1);
    expect(r.ratio).toBeLessThan(0.35);
    // random data does not compress, the text files do: wire bytes close to stream bytes, never zero
    expect(full.wireBytes).toBeGreaterThan(0.8 * full.streamBytes);
    expect(full.wireBytes).toBeLessThanOrEqual(full.streamBytes);
    // the stream back from the target carries the same data (decompressed here) as the stream there
    const back = r.transfers[2];
    expect(Math.abs(back.streamBytes - full.streamBytes) / full.streamBytes).toBeLessThan(0.05);
    expect(back.wireBytes).toBeLessThanOrEqual(back.streamBytes);
    // progress was reported while the full send ran, with an ETA (its size is known)
    const progress = events.filter(
      (e): e is Extract<RoundtripEvent, { type: 'progress' }> => e.type === 'progress' && e.transfer === 'full send',
    );
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatchObject({ done: true, bytes: full.streamBytes });
    expect(progress.some((p) => p.total && p.eta !== null)).toBe(true);
    // nothing left behind
    expect(leftOnTarget(r.runId)).toEqual([]);
    expect(stillMounted(r)).toEqual([]);
    console.log(
      `round trip (24 MiB, zstd): ${r.transfers.map((t) => `${t.name} ${(t.wireBytes / 2 ** 20).toFixed(2)} MiB wire @ ${(t.rate / 2 ** 20).toFixed(1)} MiB/s`).join('; ')}; ratio ${r.ratio?.toFixed(4)}`,
    );
  });

  it('a step failing halfway (parent gone on the target): named, later steps not run, local and remote cleaned up', async () => {
    let runId = '';
    let parent = '';
    const r = await runRoundtrip(conn, {
      sizeMb: 8,
      onEvent: (e) => {
        if (e.type === 'start') {
          runId = e.runId;
          parent = e.snapshots[0];
        }
        // after the full send, remove the received parent behind the round trip's back
        if (e.type === 'transfer' && e.transfer.name === 'full send')
          expect(execInTarget(['btrfs', 'subvolume', 'delete', parent]).status).toBe(0);
      },
    });
    expect(r.ok).toBe(false);
    const incr = r.steps.find((s) => s.name === 'incremental send to the target (-p snapshot 1)');
    expect(incr).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/the transfer failed at "ssh → btrfs receive": .*cannot find parent subvolume/s),
    });
    expect(r.steps.find((s) => /receive back/.test(s.name))).toBeUndefined();
    expect(r.steps.filter((s) => /^remove/.test(s.name)).every((s) => s.ok)).toBe(true);
    expect(runId).toBe(r.runId);
    expect(parent).toBe(`${remoteDir}/roundtrip.${r.runId}.1`);
    expect(leftOnTarget(r.runId)).toEqual([]);
    expect(stillMounted(r)).toEqual([]);
  });

  it('the CLI: progress while it runs, the transfer table, "N passed, 0 failed", exit 0', () => {
    const p = spawnSync(
      path.join(REPO_ROOT, 'node_modules', '.bin', 'zx'),
      [path.join(REPO_ROOT, 'scripts', 'roundtrip.mjs'), '--env', envFile, '--size-mb', '8'],
      {
        encoding: 'utf8',
        env: { ...process.env, NO_COLOR: '1' },
        timeout: 240_000,
      },
    );
    expect(p.status).toBe(0);
    expect(p.stdout).toMatch(/^ {2}full send +[\d.]+ [KM]iB on the wire/m);
    expect(p.stdout).toMatch(/incremental\/full ratio: 0\.\d{4}/);
    expect(p.stdout.trim().split('\n').at(-1)).toMatch(/^(\d+) passed, 0 failed$/);
    expect(p.stderr).toMatch(/full send: [\d.]+ [KM]iB of [\d.]+ MiB \(\d+%\) {2}[\d.]+ [KM]iB\/s/);
  });
});
