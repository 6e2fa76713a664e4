// The benchmark's maths and formatting (scripts/lib/bench/bench.ts): ratios, medians, targets, the table and the
// JSON file, and the data makers (real files in a temp dir).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import {
  SCALES,
  TARGETS,
  changeTree,
  checkTarget,
  figure,
  formatTable,
  machineInfo,
  median,
  overwriteSpread,
  ratio,
  resultsFileName,
  summarize,
  targetSpaceNeededMiB,
  toJson,
  treeFilePath,
  writeCompressibleFile,
  writeRandomFile,
  writeTree,
  type Report,
} from '../../scripts/lib/bench/bench.js';

describe('ratio, median and targets', () => {
  test('ratio divides and rounds to 4 significant digits; missing or zero denominators give null', () => {
    expect(ratio(1, 3)).toBe(0.3333);
    expect(ratio(1049600, 1048576)).toBe(1.001);
    expect(ratio(1361, 480)).toBe(2.835);
    expect(ratio(5, 0)).toBeNull();
    expect(ratio(null, 2)).toBeNull();
    expect(ratio(2, undefined)).toBeNull();
    expect(ratio(0, 2)).toBe(0);
  });

  test('median of odd and even counts ignores non-numbers', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([Number.NaN, 7])).toBe(7);
    expect(median([])).toBeNull();
  });

  test('targets from the issue: max for the incremental ratio, min for path and rsync speedup', () => {
    expect(TARGETS['incremental.wire_per_changed']).toEqual({ kind: 'max', value: 1.05 });
    expect(checkTarget('incremental.wire_per_changed', 1.05)).toBe('pass');
    expect(checkTarget('incremental.wire_per_changed', 1.0501)).toBe('fail');
    expect(checkTarget('path.gate_vs_local', 0.79)).toBe('fail');
    expect(checkTarget('path.gate_vs_plain_ssh', 0.95)).toBe('pass');
    expect(checkTarget('rsync.speedup_large', 3.2)).toBe('pass');
    expect(checkTarget('rsync.btrfs_growth', 1.31)).toBe('fail');
    expect(checkTarget('compression.zstd_wire', 0.3)).toBeNull();
    expect(checkTarget('path.gate_vs_local', null)).toBeNull();
  });

  test('a figure carries both measured things, the ratio and its status', () => {
    const f = figure(
      'path.gate_vs_local',
      'rate',
      { label: 'gate', value: 90, unit: 'B/s' },
      { label: 'local', value: 100, unit: 'B/s' },
    );
    expect(f).toMatchObject({
      value: 0.9,
      status: 'pass',
      a: { label: 'gate', value: 90 },
      b: { label: 'local', value: 100 },
    });
  });

  test('the full scale has the issue sizes; the target space estimate covers the largest single dataset', () => {
    expect(SCALES.full).toMatchObject({
      datasetMiB: 1024,
      changesMiB: [1, 64],
      trees: [50000, 200000],
      changedFiles: 100,
    });
    expect(targetSpaceNeededMiB('full')).toBeGreaterThan(1024);
    expect(targetSpaceNeededMiB('small')).toBeLessThan(targetSpaceNeededMiB('full'));
  });
});

const machine = machineInfo({
  osmod: {
    availableParallelism: () => 2,
    cpus: () => [{ model: 'Test CPU ' }],
    release: () => '6.1.0-test',
    totalmem: () => 4 * 1024 ** 3,
    loadavg: () => [1.234, 0.5, 0.25],
  },
  readFile: () => 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
  versions: { btrfsProgs: '6.2' },
});

const report: Report = {
  scale: 'small',
  machine,
  figures: [
    figure(
      'incremental.wire_per_changed',
      'incremental: wire / changed (1 MiB)',
      { label: 'wire', value: 1050000, unit: 'B' },
      { label: 'changed', value: 1048576, unit: 'B' },
    ),
    figure(
      'path.gate_vs_local',
      'full send rate: ssh+gate / local',
      { label: 'ssh+gate', value: 50 * 2 ** 20, unit: 'B/s' },
      { label: 'local', value: 100 * 2 ** 20, unit: 'B/s' },
    ),
    figure(
      'rsync.rsync_growth',
      'rsync growth',
      { label: 'rsync 200000', value: 1.36, unit: 's' },
      { label: 'rsync 50000', value: 0.5, unit: 's' },
    ),
    { key: 'rsync.error', label: 'rsync (failed)', value: null, status: null, error: 'no rsync in the target' },
  ],
  timings: [
    { label: 'cdktf synth (warm)', seconds: 12.34 },
    { label: 'local-target up', error: 'boom' },
  ],
};

describe('machine and report formatting', () => {
  test('machine info states CPUs, kernel, memory, OS and the shared-machine note', () => {
    expect(machine).toMatchObject({
      nproc: 2,
      cpu: 'Test CPU',
      kernel: '6.1.0-test',
      memoryMiB: 4096,
      os: 'Debian GNU/Linux 12 (bookworm)',
      btrfsProgs: '6.2',
    });
    expect(machine.loadavgAtStart).toEqual([1.23, 0.5, 0.25]);
    expect(machine.note).toMatch(/other processes may load/);
  });

  test('the table has one row per figure with ratio, target, status and both measurements', () => {
    const t = formatTable(report);
    const lines = t.split('\n');
    expect(lines[0]).toMatch(/^figure\s+ratio\s+target\s+status\s+measured/);
    expect(t).toMatch(
      /incremental: wire \/ changed \(1 MiB\)\s+1\.001\s+≤ 1\.05\s+pass\s+wire 1\.0 MiB \/ changed 1\.0 MiB/,
    );
    expect(t).toMatch(
      /full send rate: ssh\+gate \/ local\s+0\.5\s+≥ 0\.8\s+fail\s+ssh\+gate 50\.0 MiB\/s \/ local 100 MiB\/s/,
    );
    expect(t).toMatch(/rsync growth\s+2\.72\s+-\s+rsync 200000 1\.360 s \/ rsync 50000 0\.500 s/);
    expect(t).toMatch(/rsync \(failed\)\s+n\/a\s+error\s+error: no rsync in the target/);
    expect(t).toMatch(/cdktf synth \(warm\): 12\.3 s/);
    expect(t).toMatch(/local-target up: error: boom/);
    expect(t).toMatch(/machine: 2 CPUs \(Test CPU\), 4096 MiB RAM, kernel 6\.1\.0-test/);
    expect(lines[lines.length - 1]).toBe('1 targets met, 1 missed, 2 errors, 2 reported only');
  });

  test('summary counts pass, fail, errors and reported-only figures', () => {
    expect(summarize(report)).toEqual({ pass: 1, fail: 1, error: 2, reported: 2 });
  });

  test('the JSON has the same figures as the table, the machine and a schema tag', () => {
    const j = JSON.parse(toJson(report));
    expect(j.schema).toBe('btrbk-aws-target/bench@1');
    expect(j.figures.map((f: { value: number | null }) => f.value)).toEqual([1.001, 0.5, 2.72, null]);
    expect(j.machine.nproc).toBe(2);
    expect(j.summary).toEqual({ pass: 1, fail: 1, error: 2, reported: 2 });
  });

  test('results file names are timestamps without colons', () => {
    expect(resultsFileName(new Date('2024-05-01T12:34:56.789Z'))).toBe('2024-05-01T12-34-56Z.json');
  });
});

describe('data makers', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-test-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('random data does not compress; the overwrite changes exactly the bytes it reports, keeping the size', () => {
    const f = path.join(dir, 'r.bin');
    writeRandomFile(f, 1024 * 1024);
    const before = fs.readFileSync(f);
    expect(before.length).toBe(1024 * 1024);
    expect(zlib.deflateSync(before).length).toBeGreaterThan(before.length * 0.99);
    const written = overwriteSpread(f, 64 * 1024, { pieces: 4 });
    const after = fs.readFileSync(f);
    expect(after.length).toBe(before.length);
    expect(written).toBe(64 * 1024);
    let differing = 0;
    for (let i = 0; i < after.length; i += 4096)
      if (!after.subarray(i, i + 4096).equals(before.subarray(i, i + 4096))) differing += 1;
    expect(differing * 4096).toBe(written);
  });

  test('log-like text compresses well but is not one repeated block', () => {
    const f = path.join(dir, 't.txt');
    writeCompressibleFile(f, 2 * 1024 * 1024);
    const data = fs.readFileSync(f);
    expect(data.length).toBe(2 * 1024 * 1024);
    const ratioDeflate = zlib.deflateSync(data).length / data.length;
    expect(ratioDeflate).toBeLessThan(0.45);
    expect(ratioDeflate).toBeGreaterThan(0.1);
    const lines = data.toString('utf8').split('\n');
    expect(new Set(lines).size).toBeGreaterThan(lines.length * 0.99);
  });

  test('a tree has 1000 files per directory; changing it rewrites exactly the asked number of files', () => {
    writeTree(dir, 2500);
    expect(fs.readdirSync(dir).sort()).toEqual(['d0000', 'd0001', 'd0002']);
    expect(fs.readdirSync(path.join(dir, 'd0002'))).toHaveLength(500);
    const before = new Map<number, string>();
    for (let i = 0; i < 2500; i += 1) before.set(i, fs.readFileSync(treeFilePath(dir, i), 'utf8'));
    changeTree(dir, 2500, 100, 1);
    let changed = 0;
    for (let i = 0; i < 2500; i += 1) if (fs.readFileSync(treeFilePath(dir, i), 'utf8') !== before.get(i)) changed += 1;
    expect(changed).toBe(100);
  });
});
