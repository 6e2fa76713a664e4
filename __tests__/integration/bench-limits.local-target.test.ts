// The local target under an instance type's limits (issue 12), on the test run's own target: `limits` puts the
// container's processes into a cgroup with t3a.nano's CPU quota and memory limit and lifts them again, and the
// bench's `limits` item measures every candidate's receive-side CPU (a tiny scale: it proves the harness; the
// figures in docs/PERFORMANCE.md come from `npm run bench -- --items limits`).
import { jest } from '@jest/globals';
import fs from 'node:fs';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import {
  execInTarget,
  groupCpuSeconds,
  localTargetPaths,
  setLimits,
  status,
} from '../../scripts/lib/local-target/local-target.js';
import { detectCgroups, groupDirs } from '../../scripts/lib/local-target/limits.js';
import { DEFAULT_LIMITS_CANDIDATE, LIMITS_CANDIDATES, runBench } from '../../scripts/lib/bench/bench-measure.js';
import { formatTable, toJson } from '../../scripts/lib/bench/bench.js';
import { SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';

jest.setTimeout(20 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
const name = () => localTargetPaths().name;

afterAll(() => setLimits({ limits: null }));

test("limits t3a.nano: the container's sshd runs in a cgroup with 10 % of one core and 512 MiB; none lifts them", async () => {
  setLimits({ limits: 't3a.nano' });
  const s = await status();
  expect(s.limits).toEqual({ type: 't3a.nano', cpuQuotaUs: 10000, cpuPeriodUs: 100000, memoryBytes: 512 * 2 ** 20 });
  // sshd (its listener) is in the group: what it forks for a session (the gate, btrfs receive) stays there
  const layout = detectCgroups()!;
  const procs = fs
    .readFileSync(`${groupDirs(layout, name()).cpu}/cgroup.procs`, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map(Number);
  const comms = procs.map((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
  expect(comms).toEqual(expect.arrayContaining(['systemd', 'sshd']));
  expect(s.healthy).toBe(true);
  setLimits({ limits: null });
  expect((await status()).limits).toEqual({ type: null, cpuQuotaUs: null, cpuPeriodUs: 100000, memoryBytes: null });
});

test("the bench's limits item: CPU per GiB and the baseline rate for every candidate, quota runs, nothing left behind", async () => {
  const report = await runBench({
    conn,
    exec: (argv, opts) => execInTarget(argv, opts),
    // 2 MiB datasets; under the quota only the default candidate: a send there takes ~8 s whatever its size, the
    // session's fixed ~0.7 CPU s in the container (sshd, the gate, btrbk-receive's checks) at 10 % of a core
    scale: {
      datasetMiB: 2,
      changesMiB: [1],
      compressibleMiB: 2,
      trees: [10, 20],
      changedFiles: 1,
      atimeFiles: 10,
      repeats: 1,
      quotaCandidates: 1,
    },
    items: ['limits'],
    target: { groupCpuSeconds: () => groupCpuSeconds(name()), setLimits: (type) => setLimits({ limits: type }) },
  });
  expect(report.figures.filter((f) => f.error)).toEqual([]);
  const lr = report.limits!;
  expect(lr).toMatchObject({ instanceType: 't3a.nano', baselineCores: 0.1, networkBaselineMBps: 4 });
  expect(lr.rows).toHaveLength(LIMITS_CANDIDATES.length * 2);
  for (const r of lr.rows) {
    // the receive side did work in the container's cgroup, and the baseline rate follows from it
    expect(r.groupCpuSeconds).toBeGreaterThan(0);
    expect(r.baselineReceiveMBps).toBeGreaterThan(0);
    expect(r.wireBytes).toBeGreaterThan(0);
  }
  // zstd shrinks the text on the wire; random data does not shrink
  const row = (c: string, d: string) => lr.rows.find((r) => r.candidate === c && r.dataset === d)!;
  expect(row('aes128-gcm zstd-3', 'text').wireBytes / row('aes128-gcm zstd-3', 'text').dataBytes).toBeLessThan(0.5);
  expect(row('aes128-gcm none', 'random').wireBytes / row('aes128-gcm none', 'random').dataBytes).toBeGreaterThan(0.99);
  // under the quota: the default candidate on both datasets, and no other
  const quota = lr.rows.filter((r) => r.quotaReceiveMBps !== undefined);
  expect(quota.map((r) => [r.candidate, r.dataset])).toEqual([
    [DEFAULT_LIMITS_CANDIDATE, 'random'],
    [DEFAULT_LIMITS_CANDIDATE, 'text'],
  ]);
  for (const r of quota) {
    expect(r.quotaReceiveMBps).toBeGreaterThan(0);
    expect(r.quotaDataMBps).toBeGreaterThan(0);
  }
  const json = JSON.parse(toJson(report));
  expect(json.limits.rows[0].baselineReceiveMBps).toEqual(expect.any(Number));
  expect(formatTable(report)).toContain("receive side at t3a.nano's limits");
  // the quota is lifted, the run's directory (and what was received into it) is gone, and the target's volume is
  // mounted as the boot script mounts it
  expect((await status()).limits?.cpuQuotaUs ?? null).toBeNull();
  expect(execInTarget(['test', '-e', `${conn.backupRoot}/${SELFTEST_DIR_NAME}/${report.runId}`]).status).toBe(1);
  expect(execInTarget(['findmnt', '-no', 'OPTIONS', '/backup_volume']).stdout).toContain('compress=zstd:1');
});
