// The limits item's maths: receive-side CPU per GiB, the rate t3a.nano's CPU baseline sustains at that cost,
// the two target figures against its network baseline, and the table; which candidates run under the quota, and
// the kernel threads' idle rate.
import {
  formatLimitsTable,
  limitsBasis,
  limitsFigures,
  limitsRow,
  type LimitsReport,
  type LimitsSample,
  SCALES,
} from '../../scripts/lib/bench/bench.js';
import {
  DEFAULT_LIMITS_CANDIDATE,
  kernelIdleRate,
  QUOTA_CANDIDATES,
  quotaCandidates,
} from '../../scripts/lib/bench/bench-measure.js';

const GiB = 1024 ** 3;
const sample = (over: Partial<LimitsSample> = {}): LimitsSample => ({
  candidate: 'aes128-gcm zstd-3',
  dataset: 'random',
  dataBytes: GiB,
  wireBytes: GiB,
  seconds: 10,
  groupCpuSeconds: 6,
  kernelCpuSeconds: 2,
  clientCpuSeconds: 9,
  otherCpuSeconds: 1,
  ...over,
});

test('8 CPU s per GiB received at 0.1 of a core sustains 1 GiB / 80 s = 13.4 MB/s of wire', () => {
  const r = limitsRow(sample());
  expect(r.cpuSecondsPerGiB).toBe(8);
  expect(r.baselineReceiveMBps).toBeCloseTo(GiB / 80 / 1e6, 2);
  expect(r.baselineDataMBps).toBeCloseTo(GiB / 80 / 1e6, 2);
});

test('compressed wire: the data rate is the wire rate times data/wire; a negative kernel residue counts as 0', () => {
  const r = limitsRow(sample({ dataset: 'text', wireBytes: GiB / 4, groupCpuSeconds: 4, kernelCpuSeconds: -0.5 }));
  expect(r.cpuSecondsPerGiB).toBe(16);
  expect(r.baselineDataMBps).toBeCloseTo(4 * r.baselineReceiveMBps!, 2);
  expect(limitsRow(sample({ groupCpuSeconds: 0, kernelCpuSeconds: 0 })).baselineReceiveMBps).toBeNull();
});

const report = (rows: LimitsSample[]): LimitsReport => ({
  ...limitsBasis('t3a.nano'),
  candidates: [],
  rows: rows.map((r) => limitsRow(r)),
  defaultCandidate: 'aes128-gcm zstd-3',
});

test("targets: the default's random-data wire rate >= 3x and its compressible data rate >= 2x the 4 MB/s network baseline", () => {
  // 5 s/GiB: 21.5 MB/s (5.4x); text at a quarter on the wire, 4 s per wire GiB: 26.8 MB/s of data (6.7x)
  const good = limitsFigures(
    report([
      sample({ groupCpuSeconds: 5, kernelCpuSeconds: 0 }),
      sample({ dataset: 'text', wireBytes: GiB / 4, groupCpuSeconds: 1, kernelCpuSeconds: 0 }),
    ]),
  );
  expect(good.map((f) => [f.key, f.status])).toEqual([
    ['limits.default_wire_vs_network', 'pass'],
    ['limits.default_text_data_vs_network', 'pass'],
  ]);
  expect(good[0].b).toMatchObject({ value: 4e6, unit: 'B/s' });
  // 10 s/GiB random: 10.7 MB/s (2.7x, missed); text 20+2 s per quarter GiB: 4.9 MB/s of data (1.2x, missed)
  const slow = limitsFigures(
    report([sample({ groupCpuSeconds: 8 }), sample({ dataset: 'text', wireBytes: GiB / 4, groupCpuSeconds: 20 })]),
  );
  expect(slow.map((f) => f.status)).toEqual(['fail', 'fail']);
  expect(slow[0].value).toBeCloseTo(2.68, 1);
});

test('the table has a row per candidate and dataset, the default marked, quota rates where measured', () => {
  const lr = report([sample(), sample({ candidate: 'chacha20 none', dataset: 'text' })]);
  lr.rows[0].quotaReceiveMBps = 11.3;
  const t = formatLimitsTable(lr);
  expect(t).toMatch(/network baseline 4 MB\/s/);
  expect(t).toMatch(/aes128-gcm zstd-3 \*\s+random .* 11\.3$/m);
  expect(t).toMatch(/chacha20 none\s+text .* -$/m);
});

test('the quota candidates of a scale: all three by default (the default first), or the first quotaCandidates', () => {
  expect(quotaCandidates(SCALES.full)).toEqual(QUOTA_CANDIDATES);
  expect(quotaCandidates(SCALES.small)).toHaveLength(3);
  expect(quotaCandidates({ ...SCALES.small, quotaCandidates: 1 })).toEqual([DEFAULT_LIMITS_CANDIDATE]);
  expect(quotaCandidates({ ...SCALES.small, quotaCandidates: 0 })).toEqual([DEFAULT_LIMITS_CANDIDATE]);
});

test('the kernel threads idle rate: their CPU seconds over the window, and 0 when a thread exited in it', async () => {
  const reads = (a: number, b: number) => {
    const v = [a, b];
    return () => v.shift()!;
  };
  // 0.02 s over at least 0.2 s (a loaded machine's timer fires late, never early)
  const rate = await kernelIdleRate(200, reads(10, 10.02));
  expect(rate).toBeGreaterThan(0);
  expect(rate).toBeLessThanOrEqual(0.02 / 0.199);
  // a kworker with 1 s of CPU exits between the two reads: the sum drops
  expect(await kernelIdleRate(50, reads(10, 9))).toBe(0);
});
