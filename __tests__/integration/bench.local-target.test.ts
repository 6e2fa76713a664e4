// A small benchmark run on the test run's local target: proves the harness end to end (every item measures, the
// figures are ratios with both measurements, the JSON matches the table) and that it leaves nothing behind
// (bench user, sudoers line, rsync copy, received subvolumes, loop devices). The full-size run is `npm run bench`.
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { formatTable, toJson } from '../../scripts/lib/bench/bench.js';
import { BENCH_USER, runBench } from '../../scripts/lib/bench/bench-measure.js';

jest.setTimeout(20 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
/** Block devices that still carry the bench's scratch filesystems (by label). */
const benchDevices = () =>
  ['bench-src', 'bench-dst'].flatMap((label) =>
    spawnSync('blkid', ['-t', `LABEL=${label}`, '-o', 'device'], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean),
  );

test('a small bench run measures every item as ratios and cleans up after itself', async () => {
  const logs: string[] = [];
  // a run killed earlier on this machine may have left its own (not this run's)
  const devicesBefore = benchDevices();
  const report = await runBench({
    conn,
    exec: (argv, opts) => execInTarget(argv, opts),
    scale: {
      datasetMiB: 32,
      changesMiB: [1, 4],
      compressibleMiB: 24,
      trees: [400, 1600],
      changedFiles: 20,
      atimeFiles: 400,
      repeats: 1,
    },
    items: ['incremental', 'path', 'compression', 'rsync', 'atime'],
    log: (l) => logs.push(l),
  });
  const byKey = (k: string) => report.figures.filter((f) => f.key === k);
  expect(report.figures.filter((f) => f.error)).toEqual([]);
  // incremental: the wire carries the change and little more (the one figure that is not timing noise)
  expect(byKey('incremental.wire_per_changed')).toHaveLength(2);
  for (const f of byKey('incremental.wire_per_changed')) {
    expect(f.value).toBeGreaterThanOrEqual(1);
    expect(f.value).toBeLessThan(1.05);
  }
  // path and gate: rates measured side by side, both present
  for (const k of ['path.gate_vs_local', 'path.gate_vs_plain_ssh', 'path.aes_vs_default_cipher']) {
    const [f] = byKey(k);
    expect(f.a!.value).toBeGreaterThan(0);
    expect(f.b!.value).toBeGreaterThan(0);
    expect(f.value).toBeGreaterThan(0);
  }
  // compression: zstd and proto 2 both cut log-like text to well under half; random data does not shrink
  expect(byKey('compression.zstd_wire')[0].value).toBeLessThan(0.5);
  expect(byKey('compression.proto2_wire')[0].value).toBeLessThan(0.5);
  expect(byKey('compression.zstd_random_wire')[0].value).toBeGreaterThan(0.99);
  // rsync: four figures with times on both sides
  for (const k of ['rsync.btrfs_growth', 'rsync.rsync_growth', 'rsync.speedup_small', 'rsync.speedup_large'])
    expect(byKey(k)[0].value).toBeGreaterThan(0);
  // atime: a read pass under relatime makes the next incremental bigger than under noatime
  expect(byKey('atime.relatime_vs_noatime')[0].value).toBeGreaterThan(1.2);

  expect(report.machine).toMatchObject({
    nproc: expect.any(Number),
    kernel: expect.any(String),
    memoryMiB: expect.any(Number),
  });
  const table = formatTable(report);
  const json = JSON.parse(toJson(report));
  for (const f of json.figures) expect(table).toContain(f.label);

  // nothing left behind
  expect(execInTarget(['id', BENCH_USER]).status).not.toBe(0);
  expect(execInTarget(['test', '-e', '/etc/sudoers.d/zz-btrbk-bench']).status).not.toBe(0);
  expect(execInTarget(['test', '-e', `${MOUNT_POINT}/bench-rsync`]).status).not.toBe(0);
  expect(execInTarget(['test', '-e', `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/${report.runId}`]).status).not.toBe(0);
  expect(benchDevices()).toEqual(devicesBefore);
});
