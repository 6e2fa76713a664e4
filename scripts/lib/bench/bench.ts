// The transfer benchmark (scripts/bench.mjs): every figure is a ratio of two things measured side by side in the
// same run, because absolute times on a shared machine are noise. This file holds the figures' definitions and
// targets, the maths, the table/JSON formatting and the data generators (all unit-tested); the measurements
// that need btrfs and the local target are in bench-measure.ts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GiB, humanBytes } from '../core/units.js';
import { baselineCores, networkBaselineMBps, requireInstanceFacts } from '../core/instance-types.js';

// ------------------------------------------------------------------------------------------------ definitions

/** The sizes of one benchmark run. */
export interface Scale {
  /** The random (incompressible) dataset of the incremental and path measurements. */
  datasetMiB: number;
  /** How much of the dataset each incremental round changes. */
  changesMiB: readonly number[];
  /** The log-like text of the compression measurement. */
  compressibleMiB: number;
  /** File counts of the small-file trees of the rsync comparison (small, large). */
  trees: readonly number[];
  /** Files changed per round in a tree. */
  changedFiles: number;
  /** Files read in the atime measurement. */
  atimeFiles: number;
  /** Runs per variant (the median is reported). */
  repeats: number;
  /** The limits item: how many of its quota candidates (the default first) are also measured under the CPU quota,
   * each a full send of both datasets at 10 % of a core (default: all). */
  quotaCandidates?: number;
}

export type ScaleName = 'small' | 'full';

/** Dataset sizes. `full` is the issue's; `small` proves the harness in tests (seconds, not minutes). */
/** The measurements, in the order they run; 'setup' is the deps' setupTimings. */
export const ITEMS = Object.freeze([
  'incremental',
  'path',
  'compression',
  'rsync',
  'atime',
  'limits',
  'setup',
] as const);
export type BenchItem = (typeof ITEMS)[number];

export const SCALES: Readonly<Record<ScaleName, Readonly<Scale>>> = Object.freeze({
  small: Object.freeze({
    datasetMiB: 64,
    changesMiB: Object.freeze([1, 8]),
    compressibleMiB: 64,
    trees: Object.freeze([2000, 8000]),
    changedFiles: 100,
    atimeFiles: 2000,
    repeats: 2,
  }),
  full: Object.freeze({
    datasetMiB: 1024,
    changesMiB: Object.freeze([1, 64]),
    compressibleMiB: 1024,
    trees: Object.freeze([50000, 200000]),
    changedFiles: 100,
    atimeFiles: 100000,
    repeats: 3,
  }),
});

/**
 * Target volume space a scale needs at its peak (MiB): the bench keeps one received copy of one dataset at a
 * time, or the large tree twice (btrfs and rsync, ~2.5 KiB per file with metadata), plus slack.
 */
export function targetSpaceNeededMiB(scale: ScaleName | Scale): number {
  const s = typeof scale === 'string' ? SCALES[scale] : scale;
  const treeMiB = Math.ceil((s.trees[s.trees.length - 1] * 2 * 2.5) / 1024);
  return Math.max(s.datasetMiB, s.compressibleMiB, treeMiB) + 256;
}

/** kind 'max': the figure must be at most `value`; 'min': at least. */
export interface Target {
  kind: 'max' | 'min';
  value: number;
}

/** Targets from the issue. Figures without a target are reported only. */
export const TARGETS: Readonly<Record<string, Target>> = Object.freeze({
  'incremental.wire_per_changed': { kind: 'max', value: 1.05 },
  'path.gate_vs_local': { kind: 'min', value: 0.8 },
  'path.gate_vs_plain_ssh': { kind: 'min', value: 0.95 },
  'rsync.btrfs_growth': { kind: 'max', value: 1.3 },
  'rsync.speedup_large': { kind: 'min', value: 3 },
});

/** a / b, or null when either is missing or b is zero. Rounded to 4 significant digits for the report. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined) return null;
  const x = Number(a);
  const y = Number(b);
  if (!Number.isFinite(x) || !Number.isFinite(y) || y === 0) return null;
  return round4(x / y);
}

export function round4(x: number | null): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  if (x === 0) return 0;
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(x))));
  return Number(x.toFixed(Math.min(digits, 8)));
}

/** The median of numbers (the middle of an odd count, the mean of the two middles of an even one). */
export function median(values: readonly number[]): number | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export type TargetStatus = 'pass' | 'fail';

/** null: no target for this figure, or no value. */
export function checkTarget(
  key: string,
  value: number | null | undefined,
  targets: Readonly<Record<string, Target>> = TARGETS,
): TargetStatus | null {
  const t = targets[key];
  if (!t || value === null || value === undefined) return null;
  return (t.kind === 'max' ? value <= t.value : value >= t.value) ? 'pass' : 'fail';
}

function targetText(key: string, targets: Readonly<Record<string, Target>> = TARGETS): string {
  const t = targets[key];
  if (!t) return '';
  return `${t.kind === 'max' ? '≤' : '≥'} ${t.value}`;
}

/** One measured thing; unit 'B', 'B/s' and 's' are formatted as bytes, rates and seconds. */
export interface Measured {
  label: string;
  value: number | null;
  unit?: string;
}

/**
 * A figure: one row of the report. `value` is the ratio; `a` and `b` are the two measured things it divides,
 * so a reader can see what it is made of.
 */
export interface MeasuredFigure {
  key: string;
  label: string;
  value: number | null;
  a: Measured;
  b: Measured;
  target: Target | null;
  status: TargetStatus | null;
  error?: undefined;
}

/** The row of a measurement that failed: `error` says why, in one line. */
export interface FailedFigure {
  key: string;
  label: string;
  value: null;
  a?: undefined;
  b?: undefined;
  status: null;
  error: string;
}

export type Figure = MeasuredFigure | FailedFigure;

export function figure(key: string, label: string, a: Measured, b: Measured): MeasuredFigure {
  const value = ratio(a.value, b.value);
  return { key, label, value, a, b, target: TARGETS[key] ?? null, status: checkTarget(key, value) };
}

/** A time reported as it is (not a ratio), or the error that kept it from being measured. */
export interface Timing {
  label: string;
  seconds?: number;
  error?: string;
}

/** What the figures were measured on, and the versions of the tools involved (btrfsProgs, btrbk, ...). */
export interface MachineInfo {
  nproc: number;
  cpu: string;
  kernel: string;
  memoryMiB: number;
  loadavgAtStart: number[];
  os: string;
  note: string;
  [tool: string]: string | number | number[];
}

/** The parts of node:os that machineInfo reads. */
export interface MachineOs {
  availableParallelism?: () => number;
  cpus(): Array<{ model?: string }>;
  release(): string;
  totalmem(): number;
  loadavg(): number[];
}

export interface Report {
  /** 'small', 'full' or 'custom'. */
  scale?: string;
  machine?: MachineInfo;
  figures: Figure[];
  timings?: Timing[];
  /** The `limits` item's table (receive-side CPU per candidate default). */
  limits?: LimitsReport;
}

// ------------------------------------------------------------------------------------------------ limits item

/** One candidate default of the receive path. */
export interface LimitsCandidate {
  name: string;
  cipher: string;
  /** zstd level of stream_compress, or null for none. */
  zstdLevel: number | null;
  mbuffer: boolean;
  /** The target's mount option compress= during the run ('zstd:1' is the boot script's). */
  targetCompress: string;
}

/** What one candidate cost on one dataset: CPU seconds on the receive side, split by where they were counted. */
export interface LimitsSample {
  candidate: string;
  dataset: 'random' | 'text';
  dataBytes: number;
  wireBytes: number;
  seconds: number;
  /** CPU of the container's cgroup: sshd, the gate's stages, btrfs receive. */
  groupCpuSeconds: number;
  /** CPU of kernel threads (btrfs workers, kworkers) during the run: no container's cgroup holds them. */
  kernelCpuSeconds: number;
  /** What the kernel threads use while idle over the same time, already taken off kernelCpuSeconds. */
  kernelIdleCpuSeconds?: number;
  /** This process and its children: btrfs send, zstd, ssh (the laptop's side). */
  clientCpuSeconds: number;
  /** Machine-wide busy CPU minus the three above: softirqs, and other load on this shared machine. */
  otherCpuSeconds: number;
}

export interface LimitsRow extends LimitsSample {
  /** Receive-side CPU seconds (group + kernel threads) per GiB of wire bytes. */
  cpuSecondsPerGiB: number | null;
  /** The rate (MB/s, 10^6 bytes of wire) the instance's baseline CPU sustains for this candidate. */
  baselineReceiveMBps: number | null;
  /** The same as data (MB/s of the dataset's bytes). */
  baselineDataMBps: number | null;
  /** Measured directly with the container under the instance's CPU quota (wire MB/s), when it was. */
  quotaReceiveMBps?: number | null;
  quotaDataMBps?: number | null;
}

export interface LimitsReport {
  instanceType: string;
  baselineCores: number;
  networkBaselineMBps: number;
  candidates: LimitsCandidate[];
  rows: LimitsRow[];
  /** The candidate that matches the generated btrbk.conf and the boot script. */
  defaultCandidate: string;
}

/** A sample's figures at an instance type's baseline. */
export function limitsRow(sample: LimitsSample, instanceType = 't3a.nano'): LimitsRow {
  const cores = baselineCores(requireInstanceFacts(instanceType));
  const cpu = sample.groupCpuSeconds + Math.max(0, sample.kernelCpuSeconds);
  const perGiB = sample.wireBytes > 0 ? cpu / (sample.wireBytes / GiB) : null;
  // cores / (cpu seconds per byte) = bytes per second the baseline sustains
  const wireRate = cpu > 0 && sample.wireBytes > 0 ? (cores * sample.wireBytes) / cpu / 1e6 : null;
  const dataRate = wireRate === null ? null : (wireRate * sample.dataBytes) / sample.wireBytes;
  return {
    ...sample,
    cpuSecondsPerGiB: round4(perGiB),
    baselineReceiveMBps: round4(wireRate),
    baselineDataMBps: round4(dataRate),
  };
}

/**
 * The targets of issue 12 for the default candidate: incompressible data (wire = data) received at >= 3x the
 * type's network baseline, compressible data at >= 2x it in data rate (its wire bytes are fewer: what counts is
 * how fast the data gets there).
 */
export const LIMITS_TARGETS = Object.freeze({ wireVsNetwork: 3, compressibleDataVsNetwork: 2 });

/** The `limits` figures for the report's ratio table: the default's baseline rates over the network baseline. */
export function limitsFigures(lr: LimitsReport): Figure[] {
  const targets: Record<string, Target> = {
    'limits.default_wire_vs_network': { kind: 'min', value: LIMITS_TARGETS.wireVsNetwork },
    'limits.default_text_data_vs_network': { kind: 'min', value: LIMITS_TARGETS.compressibleDataVsNetwork },
  };
  const net: Measured = {
    label: `${lr.instanceType} network baseline`,
    value: lr.networkBaselineMBps * 1e6,
    unit: 'B/s',
  };
  const row = (dataset: string) => lr.rows.find((r) => r.candidate === lr.defaultCandidate && r.dataset === dataset);
  const mb = (x: number | null | undefined): number | null => (x === null || x === undefined ? null : x * 1e6);
  const mk = (key: string, label: string, a: Measured): MeasuredFigure => {
    const value = ratio(a.value, net.value);
    return { key, label, value, a, b: net, target: targets[key], status: checkTarget(key, value, targets) };
  };
  return [
    mk(
      'limits.default_wire_vs_network',
      `${lr.defaultCandidate}: random data, wire rate at ${lr.instanceType} CPU baseline / its network baseline`,
      { label: 'baseline receive', value: mb(row('random')?.baselineReceiveMBps), unit: 'B/s' },
    ),
    mk(
      'limits.default_text_data_vs_network',
      `${lr.defaultCandidate}: compressible data rate at ${lr.instanceType} CPU baseline / its network baseline`,
      { label: 'baseline data', value: mb(row('text')?.baselineDataMBps), unit: 'B/s' },
    ),
  ];
}

/** The limits table: one row per candidate and dataset. */
export function formatLimitsTable(lr: LimitsReport): string {
  const f = (x: number | null | undefined, d = 1) => (x === null || x === undefined ? 'n/a' : x.toFixed(d));
  const rows: string[][] = [
    [
      'candidate',
      'data',
      'wire/data',
      'recv CPU s/GiB',
      '(cgroup+kernel)',
      'client s/GiB',
      `${lr.instanceType} wire MB/s`,
      'data MB/s',
      'under quota wire MB/s',
    ],
  ];
  for (const r of lr.rows) {
    const g = r.wireBytes / GiB;
    rows.push([
      `${r.candidate}${r.candidate === lr.defaultCandidate ? ' *' : ''}`,
      r.dataset,
      f(r.wireBytes / r.dataBytes, 3),
      f(r.cpuSecondsPerGiB, 2),
      `${f(r.groupCpuSeconds / g, 2)}+${f(Math.max(0, r.kernelCpuSeconds) / g, 2)}`,
      f(r.clientCpuSeconds / g, 2),
      f(r.baselineReceiveMBps),
      f(r.baselineDataMBps),
      r.quotaReceiveMBps === undefined ? '-' : f(r.quotaReceiveMBps),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    `receive side at ${lr.instanceType}'s limits: baseline CPU ${lr.baselineCores} of one core, network baseline ${lr.networkBaselineMBps} MB/s (* = the defaults)`,
    line(rows[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.slice(1).map(line),
  ].join('\n');
}

/** The instance facts the limits table is computed for. */
export function limitsBasis(
  instanceType = 't3a.nano',
): Pick<LimitsReport, 'instanceType' | 'baselineCores' | 'networkBaselineMBps'> {
  const facts = requireInstanceFacts(instanceType);
  return { instanceType, baselineCores: baselineCores(facts), networkBaselineMBps: networkBaselineMBps(facts) };
}

export interface Summary {
  pass: number;
  fail: number;
  error: number;
  reported: number;
}

// -------------------------------------------------------------------------------------------------- reporting

/** What the figures were measured on, stated with every report. */
export function machineInfo({
  osmod = os,
  readFile = fs.readFileSync,
  versions = {},
}: {
  osmod?: MachineOs;
  readFile?: (file: string, encoding: 'utf8') => string;
  versions?: Record<string, string>;
} = {}): MachineInfo {
  const loadavg = osmod.loadavg().map((x) => Number(x.toFixed(2)));
  return {
    nproc: osmod.availableParallelism ? osmod.availableParallelism() : osmod.cpus().length,
    cpu: osmod.cpus()[0]?.model?.trim() ?? 'unknown',
    kernel: osmod.release(),
    memoryMiB: Math.round(osmod.totalmem() / 1024 / 1024),
    loadavgAtStart: loadavg,
    os: readOsRelease(readFile),
    ...versions,
    note: 'other processes may load this machine; every figure is a ratio of two measurements taken side by side in the same run',
  };
}

function readOsRelease(readFile: (file: string, encoding: 'utf8') => string): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFile('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function fmtValue(v: number | string | null | undefined): string {
  if (v === null || v === undefined) return 'n/a';
  if (typeof v === 'number') return String(round4(v));
  return String(v);
}

function fmtMeasured(m: Measured): string {
  if (m.value === null || m.value === undefined) return 'n/a';
  if (m.unit === 'B') return humanBytes(m.value);
  if (m.unit === 'B/s') return `${humanBytes(Math.round(m.value))}/s`;
  if (m.unit === 's') return `${Number(m.value).toFixed(3)} s`;
  return `${fmtValue(m.value)}${m.unit ? ` ${m.unit}` : ''}`;
}

/** The report as a fixed-width table (one row per figure, then the reported-only timings). */
export function formatTable(report: Report): string {
  const rows: string[][] = [['figure', 'ratio', 'target', 'status', 'measured (a / b)']];
  for (const f of report.figures) {
    rows.push([
      f.label,
      fmtValue(f.value),
      targetText(f.key),
      f.status ?? (f.error ? 'error' : '-'),
      f.error !== undefined
        ? `error: ${f.error}`
        : `${f.a.label} ${fmtMeasured(f.a)} / ${f.b.label} ${fmtMeasured(f.b)}`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? String(c) : String(c).padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(rows[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
  if (report.limits) out.push('', formatLimitsTable(report.limits));
  if (report.timings?.length) {
    out.push('', 'reported, not ratios (seconds on this machine):');
    for (const t of report.timings)
      out.push(`  ${t.label}: ${t.error ? `error: ${t.error}` : `${Number(t.seconds).toFixed(1)} s`}`);
  }
  const m = report.machine;
  if (m) {
    out.push(
      '',
      `machine: ${m.nproc} CPUs (${m.cpu}), ${m.memoryMiB} MiB RAM, kernel ${m.kernel}, ${m.os}; load at start ${m.loadavgAtStart?.join(' ')}`,
      `note: ${m.note}`,
    );
  }
  const s = summarize(report);
  out.push(`${s.pass} targets met, ${s.fail} missed, ${s.error} errors, ${s.reported} reported only`);
  return out.join('\n');
}

export function summarize(report: Report): Summary {
  const s: Summary = { pass: 0, fail: 0, error: 0, reported: 0 };
  for (const f of report.figures) {
    if (f.error) s.error += 1;
    else if (f.status === 'pass') s.pass += 1;
    else if (f.status === 'fail') s.fail += 1;
    else s.reported += 1;
  }
  for (const t of report.timings ?? []) {
    if (t.error) s.error += 1;
    else s.reported += 1;
  }
  return s;
}

/** bench-results/2024-05-01T12-34-56Z.json (colons are not welcome in every file system). */
export function resultsFileName(date: Date = new Date()): string {
  return `${date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/:/g, '-')}.json`;
}

/** The JSON document: the same figures as the table, plus the machine and the scale. */
/** The results file's document: the schema, the report, its summary. */
export function reportJson(report: Report): { schema: string } & Report & { summary: Summary } {
  return { schema: 'btrbk-aws-target/bench@1', ...report, summary: summarize(report) };
}

export function toJson(report: Report): string {
  return `${JSON.stringify(reportJson(report), null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------- data makers

const CHUNK = 4 * 1024 * 1024;

/** Writes `bytes` of random (incompressible) data to `file`. */
export function writeRandomFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const buf = Buffer.allocUnsafe(Math.min(CHUNK, bytes));
    for (let done = 0; done < bytes;) {
      const n = Math.min(buf.length, bytes - done);
      crypto.randomFillSync(buf, 0, n);
      fs.writeSync(fd, buf, 0, n);
      done += n;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Overwrites `bytes` of `file` in place with new random data, in `pieces` ranges spread over the file (so the
 * change touches many extents, as edits do), without changing its size. Returns the bytes written.
 */
export function overwriteSpread(
  file: string,
  bytes: number,
  { pieces = 16, seedOffset = 0 }: { pieces?: number; seedOffset?: number } = {},
): number {
  const size = fs.statSync(file).size;
  const piece = Math.floor(bytes / pieces / 4096) * 4096 || 4096;
  const stride = Math.floor(size / pieces / 4096) * 4096;
  const fd = fs.openSync(file, 'r+');
  let written = 0;
  try {
    const buf = Buffer.allocUnsafe(piece);
    for (let i = 0; i < pieces && written < bytes; i += 1) {
      crypto.randomFillSync(buf);
      const off = (i * stride + seedOffset * 4096) % Math.max(4096, size - piece);
      fs.writeSync(fd, buf, 0, piece, off - (off % 4096));
      written += piece;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return written;
}

const WORDS =
  'alpha beta gamma delta request response user session cache miss hit GET POST PUT /api/v1/items /api/v1/users /static/app.js ok error timeout retry backend frontend worker queue job done started'.split(
    ' ',
  );
const LEVELS = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];

/**
 * Writes `bytes` of log-like text: unique lines (timestamps, ids, numbers) from a small vocabulary, so it
 * compresses the way logs and source trees do (zstd about 4-6x), not the way a repeated block would.
 */
export function writeCompressibleFile(file: string, bytes: number): void {
  const fd = fs.openSync(file, 'w');
  let t = Date.UTC(2024, 0, 1);
  try {
    for (let done = 0; done < bytes;) {
      const rnd = crypto.randomBytes(64 * 1024);
      const lines: string[] = [];
      let len = 0;
      for (let i = 0; i + 8 <= rnd.length && len < 256 * 1024; i += 8) {
        t += rnd[i] * 7;
        const line = `${new Date(t).toISOString()} ${LEVELS[rnd[i + 1] % LEVELS.length]} ${WORDS[rnd[i + 2] % WORDS.length]}-${rnd[i + 3] % 32} id=${rnd.readUInt32LE(i + 4).toString(16)} ${WORDS[rnd[i + 5] % WORDS.length]} ${WORDS[rnd[i + 6] % WORDS.length]} status=${200 + (rnd[i + 7] % 4) * 100} ms=${rnd[i + 7]}\n`;
        lines.push(line);
        len += line.length;
      }
      const chunk = Buffer.from(lines.join(''));
      const n = Math.min(chunk.length, bytes - done);
      fs.writeSync(fd, chunk, 0, n);
      done += n;
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Path of small file i in a tree: 1000 files per directory. */
export function treeFilePath(root: string, i: number): string {
  return path.join(
    root,
    `d${String(Math.floor(i / 1000)).padStart(4, '0')}`,
    `f${String(i % 1000).padStart(3, '0')}.txt`,
  );
}

/** Creates `count` small files (0.5-2.5 KiB of random bytes, hex-encoded) under `root`. */
export function writeTree(root: string, count: number): void {
  let dir = '';
  for (let i = 0; i < count; i += 1) {
    const f = treeFilePath(root, i);
    const d = path.dirname(f);
    if (d !== dir) {
      fs.mkdirSync(d, { recursive: true });
      dir = d;
    }
    fs.writeFileSync(f, crypto.randomBytes(256 + (i % 1024)).toString('hex'));
  }
}

/** Rewrites `changed` files of a tree of `count` files, spread evenly; `round` makes each round's content new. */
export function changeTree(root: string, count: number, changed: number, round: number): number {
  const stride = Math.max(1, Math.floor(count / changed));
  let bytes = 0;
  for (let k = 0; k < changed; k += 1) {
    const i = (k * stride + round) % count;
    const data = crypto.randomBytes(256 + (i % 1024)).toString('hex');
    fs.writeFileSync(treeFilePath(root, i), data);
    bytes += data.length;
  }
  return bytes;
}

/** Reads every file of a tree once (the "one read pass" of the atime measurement). */
export function readTree(root: string, count: number): void {
  for (let i = 0; i < count; i += 1) fs.readFileSync(treeFilePath(root, i));
}
