// Data pipelines between processes (btrfs send | [zstd] | ssh ... receive, and back), with the bytes counted
// in this process: every link between two stages runs through a Node stream, so the byte counts are exact and
// progress (bytes, rate, ETA when the size is known) can be shown while a transfer runs. Used by the round
// trip, restore and the benchmark.
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import process from 'node:process';
import { Transform, pipeline, type TransformCallback } from 'node:stream';
import { OperatorError } from '../core/errors.js';
import { MOUNT_POINT } from '../../../user-data/host-layout.js';
import { startStage } from '../core/process.js';
import { humanBytes, humanDuration, humanRate } from '../core/units.js';

/** Progress of one stream of bytes at a moment. */
export interface ProgressSnapshot {
  bytes: number;
  /** Expected bytes, when known. */
  total: number | null;
  elapsedMs: number;
  /** Bytes per second over the sliding window. */
  rate: number;
  /** Bytes per second since the start. */
  averageRate: number;
  /** Seconds left at the current rate; null without a total or while nothing moves. */
  eta: number | null;
  /** bytes / total (at most 1); null without a total. */
  fraction: number | null;
}

/** What runPipeline reports: the watched link's progress; `done` on the last report, when all stages ended. */
export interface PipelineProgress extends ProgressSnapshot {
  /** Index of the link (0: first stage -> second stage). */
  link: number;
  done: boolean;
}

/** One process of a pipeline; `label` names it in progress and errors (e.g. "ssh → btrfs receive"). */
export interface PipelineStage {
  label: string;
  cmd: string;
  args: string[];
}

/** Bytes that went from one stage to the next. */
export interface LinkCount {
  from: string;
  to: string;
  bytes: number;
}

/** How one stage ended: exit code or signal, its stderr (trimmed; the last 32-64 KiB), or why it did not start. */
export interface StageOutcome {
  label: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  spawnError: string | null;
}

export interface PipelineResult {
  /** Every stage started and exited 0. */
  ok: boolean;
  links: LinkCount[];
  /** Bytes on the watched link (see PipelineOptions.progressLink). */
  bytes: number;
  durationMs: number;
  /** bytes per second over the whole run. */
  rate: number;
  stages: StageOutcome[];
}

/** The OperatorError a failed pipeline rejects with; `result` has every stage's outcome. */
export type PipelineError = OperatorError & { result: PipelineResult };

/** Starts one stage (core/process.ts startStage; injectable for tests). */
export type SpawnFn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

export interface PipelineOptions {
  /** Called at most every `progressIntervalMs` while bytes move, and once at the end (`done`). */
  onProgress?: (p: PipelineProgress) => void;
  progressIntervalMs?: number;
  /** The link to report and count in `bytes`; default the last (what goes onto the wire / into the receiver). */
  progressLink?: number;
  /** Expected bytes on that link (for the ETA). */
  total?: number | null;
  spawnFn?: SpawnFn;
  /** Aborting stops every stage; the pipeline then rejects with "the transfer was interrupted". */
  signal?: AbortSignal;
  now?: () => number;
}

// the byte and time formats moved to core/units.ts; re-exported for the progress code's callers
export { humanBytes, humanDuration, humanRate };

/**
 * Tracks bytes over time. The rate is an average over a sliding window (default 3 s) so it follows changes;
 * the ETA is computed from it when `total` is known.
 */
export class ProgressTracker {
  readonly total: number | null;
  /** Bytes counted so far. */
  bytes: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly start: number;
  private readonly samples: { t: number; bytes: number }[];

  constructor({
    total = null,
    windowMs = 3000,
    now = () => Date.now(),
  }: { total?: number | null; windowMs?: number; now?: () => number } = {}) {
    this.total = total;
    this.windowMs = windowMs;
    this.now = now;
    this.start = now();
    this.bytes = 0;
    this.samples = [{ t: this.start, bytes: 0 }];
  }

  add(n: number): void {
    this.bytes += n;
    const t = this.now();
    this.samples.push({ t, bytes: this.bytes });
    while (this.samples.length > 2 && t - this.samples[1].t >= this.windowMs) this.samples.shift();
  }

  snapshot(): ProgressSnapshot {
    const t = this.now();
    const elapsedMs = t - this.start;
    const first = this.samples[0];
    const spanMs = t - first.t;
    const rate = spanMs > 0 ? ((this.bytes - first.bytes) * 1000) / spanMs : 0;
    const averageRate = elapsedMs > 0 ? (this.bytes * 1000) / elapsedMs : 0;
    let eta: number | null = null;
    if (this.total && rate > 0) eta = Math.max(0, (this.total - this.bytes) / rate);
    const fraction = this.total ? Math.min(1, this.bytes / this.total) : null;
    return { bytes: this.bytes, total: this.total, elapsedMs, rate, averageRate, eta, fraction };
  }
}

/** One progress line: "12.0 MiB  4.0 MiB/s" or "12.0 MiB of 48.0 MiB (25%)  4.0 MiB/s  ETA 0:09". */
export function formatProgress(p: Pick<ProgressSnapshot, 'bytes' | 'rate'> & Partial<ProgressSnapshot>): string {
  const parts = [];
  if (p.total) parts.push(`${humanBytes(p.bytes)} of ${humanBytes(p.total)} (${Math.floor((p.fraction ?? 0) * 100)}%)`);
  else parts.push(humanBytes(p.bytes));
  parts.push(humanRate(p.rate));
  if (p.eta !== null && p.eta !== undefined) parts.push(`ETA ${humanDuration(p.eta)}`);
  return parts.join('  ');
}

/** Where a progress line goes and how often (see progressLine). */
export interface ProgressLineOptions {
  /** Default process.stderr. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Redraw one line in place (default: the stream is a terminal); otherwise write a line per report. */
  tty?: boolean;
  /** Put before the label (the lines sit under the caller's own output). */
  indent?: string;
  /** Not on a terminal: at most one line per this many ms (default 0: every report). */
  everyMs?: number;
  /** Not on a terminal: no line before the transfer has run this many ms (default 0). */
  afterMs?: number;
  now?: () => number;
}

/** A transfer's live progress line ("<indent><label>: <formatProgress>"). */
export interface ProgressLine {
  /** Shows the progress; `final` (the last report) is written even when it is not time for a line yet. */
  show(
    label: string,
    p: Pick<ProgressSnapshot, 'bytes' | 'rate' | 'elapsedMs'> & Partial<ProgressSnapshot>,
    opts?: { final?: boolean },
  ): void;
  /** Clears a line drawn in place, before other output (nothing to do when it is not on a terminal). */
  clear(): void;
}

/**
 * The one progress line of the tools: on a terminal one line redrawn in place, otherwise plain lines (a log file
 * gets one every `everyMs`).
 */
export function progressLine({
  stream = process.stderr,
  tty = Boolean(stream.isTTY),
  indent = '',
  everyMs = 0,
  afterMs = 0,
  now = () => Date.now(),
}: ProgressLineOptions = {}): ProgressLine {
  let shown = false;
  let last = -Infinity;
  return {
    show(label, p, { final = false } = {}) {
      const line = `${indent}${label}: ${formatProgress(p)}`;
      if (tty) {
        stream.write(`\r\x1b[K${line}`);
        shown = true;
        return;
      }
      const t = now();
      if (!final && (t - last < everyMs || p.elapsedMs < afterMs)) return;
      last = t;
      stream.write(`${line}\n`);
    },
    clear() {
      if (!shown) return;
      stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

/** A pass-through stream that counts the bytes going through it. */
export function byteCounter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

function tail(text: string, lines = 8): string {
  return String(text).trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs stages (at least two) as processes connected stdout -> stdin through byte counters in this process; the
 * first stage's stdin is /dev/null. When one stage fails the others are stopped. Rejects with a PipelineError
 * (see pipelineError) when any stage fails or cannot start.
 */
export function runPipeline(
  stages: PipelineStage[],
  {
    onProgress,
    progressIntervalMs = 500,
    progressLink,
    total = null,
    spawnFn = startStage,
    signal,
    now = () => Date.now(),
  }: PipelineOptions = {},
): Promise<PipelineResult> {
  if (stages.length < 2) throw new Error('a pipeline needs at least two stages');
  const watched = progressLink ?? stages.length - 2;
  return new Promise((resolve, reject) => {
    const start = now();
    const trackers = stages.slice(1).map((_, i) => new ProgressTracker({ total: i === watched ? total : null, now }));
    const procs = stages.map((s, i) =>
      spawnFn(s.cmd, s.args, {
        stdio: [i === 0 ? 'ignore' : 'pipe', i === stages.length - 1 ? 'pipe' : 'pipe', 'pipe'],
      }),
    );
    const info = stages.map((s): StageOutcome => ({
      label: s.label,
      code: null,
      signal: null,
      stderr: '',
      spawnError: null,
    }));
    let lastReport = 0;
    let finished = 0;
    const report = (force: boolean) => {
      if (!onProgress) return;
      const t = now();
      if (!force && t - lastReport < progressIntervalMs) return;
      lastReport = t;
      onProgress({ ...trackers[watched].snapshot(), link: watched, done: Boolean(force) });
    };
    const killAll = () => procs.forEach((p) => p.exitCode === null && p.signalCode === null && p.kill('SIGTERM'));
    if (signal) {
      if (signal.aborted) killAll();
      else signal.addEventListener('abort', killAll, { once: true });
    }

    // every stdio stream but the first stage's stdin is a pipe, so the streams used below are there
    procs.forEach((p, i) => {
      p.stderr!.on('data', (d: Buffer) => {
        info[i].stderr += d.toString('utf8');
        if (info[i].stderr.length > 64 * 1024) info[i].stderr = info[i].stderr.slice(-32 * 1024);
      });
      // the last stage's stdout is drained (receive prints "At subvol ..." on stderr, little on stdout)
      if (i === procs.length - 1) p.stdout!.on('data', () => {});
      p.on('error', (err) => {
        info[i].spawnError = err.message;
      });
      p.on('close', (code, sig) => {
        info[i].code = code;
        info[i].signal = sig;
        // a stage that fails makes the whole pipeline fail: stop the others rather than wait on them
        if (code !== 0) killAll();
        finished += 1;
        if (finished === procs.length) settle();
      });
    });
    for (let i = 0; i < procs.length - 1; i += 1) {
      const counter = byteCounter((n) => {
        trackers[i].add(n);
        if (i === watched) report(false);
      });
      pipeline(procs[i].stdout!, counter, procs[i + 1].stdin!, () => {
        /* errors show as the stage's exit status; EPIPE when the reader died first */
      });
    }

    function settle() {
      report(true);
      const durationMs = now() - start;
      const links = trackers.map((t, i) => ({ from: stages[i].label, to: stages[i + 1].label, bytes: t.bytes }));
      const bytes = trackers[watched].bytes;
      const result: PipelineResult = {
        ok: info.every((s) => s.code === 0 && !s.spawnError),
        links,
        bytes,
        durationMs,
        rate: durationMs > 0 ? (bytes * 1000) / durationMs : 0,
        stages: info.map(({ label, code, signal: sig, stderr, spawnError }) => ({
          label,
          code,
          signal: sig,
          stderr: stderr.trim(),
          spawnError,
        })),
      };
      if (result.ok) {
        resolve(result);
        return;
      }
      reject(pipelineError(result, signal?.aborted));
    }
  });
}

/** stderr of a stage that failed only because its neighbour did (the reader went away, the input ended). */
const COLLATERAL =
  /broken pipe|EPIPE|SIGPIPE|Connection reset by peer|error writing|write error|unexpected EOF|short read/i;

/** Progress lines btrfs prints on stderr in normal operation ("At subvol X", "At snapshot X"). */
const NOISE = /^(At (subvol|snapshot) |Mode: )/;
const meaningful = (text: string): string =>
  String(text)
    .split('\n')
    .filter((l) => l.trim() && !NOISE.test(l))
    .join('\n');

/**
 * Explains a failed pipeline: the stage that failed for a reason of its own, not the ones it took along; a full
 * target and a command the SSH gate refused get their own cause and next step.
 */
export function pipelineError(result: PipelineResult, aborted = false): PipelineError {
  const failed = result.stages
    .filter((s) => s.code !== 0 || s.spawnError)
    .map((s) => ({ ...s, stderr: meaningful(s.stderr) }));
  const own =
    failed.find((s) => s.spawnError) ?? failed.find((s) => s.stderr && !COLLATERAL.test(s.stderr)) ?? failed[0];
  const details = failed
    .map(
      (s) =>
        `${s.label}: ${s.spawnError ? `cannot start (${s.spawnError})` : s.signal ? `killed by ${s.signal}` : `exit ${s.code}`}${s.stderr ? `\n  ${tail(s.stderr).split('\n').join('\n  ')}` : ''}`,
    )
    .join('\n');
  const rejected = /rejected:/.test(own?.stderr ?? '');
  const full = /No space left/i.test(own?.stderr ?? '');
  const what = aborted
    ? 'the transfer was interrupted'
    : `${full ? 'the backup target is full: ' : ''}the transfer failed at "${own?.label}"`;
  const err = new OperatorError(what, {
    details,
    cause: rejected
      ? 'the SSH gate refused the command (see "rejected:" above): its grammar and this client disagree'
      : own?.spawnError
        ? `a program is missing: ${own.spawnError}`
        : full
          ? 'the receiving filesystem is full'
          : tail(own?.stderr || 'no error text; see the exit statuses above', 2),
    next: rejected
      ? 'check the gate log on the host (journalctl -t btrbk-ssh-gate) and docs/SSH-GATE.md for the accepted forms'
      : full
        ? `free space: keep fewer backups (a shorter target_preserve, then \`btrbk run\`), or grow the data volume (ebs_volume_size, setup, then as admin \`btrfs filesystem resize max ${MOUNT_POINT}\`); see docs/TROUBLESHOOTING.md. Earlier backups are intact; the half-received one is removed on the next btrbk run`
        : 'run `npx zx scripts/troubleshoot.mjs check-all` to see whether SSH and the volume are healthy',
  });
  return Object.assign(err, { result });
}
