// The one way the operator library runs a program on this machine: run (async) and runSync, built on zx's $, with
// one result shape (RunResult) and no exception for how the program ended, so each caller words its own errors;
// runChecked is run for a program that must work (an OperatorError when it does not).
//
// How zx's $ is used: the argv is interpolated as an array (zx quotes every argument), with no prefix, so bash runs
// one simple command and execs the program itself. Two things zx does not do, done here:
//  - a program that is not on PATH: through bash it would be exit 127; run and runSync look it up first (zx's
//    which) and report node's error (`spawn tofu ENOENT`), so callers keep telling "cannot start" from "failed";
//  - runSync's timeout and output limit: zx's sync mode hands spawnSync neither, so runSync gives zx a spawnSync
//    with both bound (zx's `spawnSync` option).
// Two kinds of child stay with node's spawn, below: one that must outlive this process (startDetached), and the
// stages of a data pipeline that the caller links stream to stream (startStage). zx's $ is a promise of a
// finished program, not a handle to a running one.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import process from 'node:process';
import { StringDecoder } from 'node:string_decoder';
import { $, which, type Options as ZxOptions, type ProcessOutput } from 'zx';
import { OperatorError } from './errors.js';

/** How a program ended and what it printed. */
export interface RunResult {
  /** The exit status; null when a signal ended the program, or when it did not run (see `error`). */
  status: number | null;
  /** The signal that ended it (a timeout sends SIGTERM), else null. */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, in the order they came (runSync: stdout, then stderr). */
  output: string;
  /**
   * Why it did not run to its own end, as node says it: it could not start (`spawn tofu ENOENT`), or runSync's
   * timeout or output limit stopped it (`spawnSync tofu ETIMEDOUT`). null when it ran and exited (or was killed).
   */
  error: Error | null;
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. Without it stdin is /dev/null (runSync: an empty pipe). */
  input?: string | Buffer;
  /** The program gets SIGTERM after this many milliseconds. */
  timeoutMs?: number;
  /** Called with each line of stdout and of stderr as it arrives (a last line without a newline too). */
  onLine?: (line: string) => void;
  /** 'inherit': the program uses this process's stdin, stdout and stderr (a terminal); nothing is captured. */
  stdio?: 'inherit';
  /** Called with the program's pid once it runs (bash execs it: the pid is the program's own). */
  onStart?: (pid: number) => void;
}

export type RunSyncOptions = Omit<RunOptions, 'onLine'>;

/** The type of run, for modules that take it injected (tests pass fakes built with runResult). */
export type Run = (cmd: string, args: string[], opts?: RunOptions) => Promise<RunResult>;
/** The type of runSync, for modules that take it injected. */
export type RunSync = (cmd: string, args: string[], opts?: RunSyncOptions) => RunResult;

/** The most output runSync keeps of each stream; more stops the program (error ENOBUFS). */
export const MAX_SYNC_OUTPUT = 64 * 1024 * 1024;

/** A RunResult from the parts given, the rest empty (`output` defaults to stdout then stderr). For fakes in tests. */
export function runResult({
  status = null,
  signal = null,
  stdout = '',
  stderr = '',
  output,
  error = null,
}: Partial<RunResult> = {}): RunResult {
  return { status, signal, stdout, stderr, output: output ?? `${stdout}${stderr}`, error };
}

/** Runs `cmd args` to its end. Resolves whatever the exit; never rejects (a program that cannot start: `error`). */
export async function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const missing = notStartable(cmd, opts, 'spawn');
  if (missing) return runResult({ error: missing });
  // zx feeds stdin from a stream of its own unless there is input: without input, stdin is /dev/null
  const input = opts.input?.length ? opts.input : undefined;
  const stdio: ZxOptions['stdio'] =
    opts.stdio === 'inherit' ? 'inherit' : [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'];
  const p = $({ ...zxOptions(opts), stdio, input, timeout: opts.timeoutMs })`${[cmd, ...args]}`;
  // The bytes are kept here and decoded once (zx decodes chunk by chunk, which can split a UTF-8 character).
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const all: Buffer[] = [];
  const lines = [lineSplitter(opts.onLine), lineSplitter(opts.onLine)];
  p.stdout?.on('data', (d: Buffer) => {
    out.push(d);
    all.push(d);
    lines[0].write(d);
  });
  p.stderr?.on('data', (d: Buffer) => {
    err.push(d);
    all.push(d);
    lines[1].write(d);
  });
  if (opts.onStart) {
    p.run();
    if (p.pid) opts.onStart(p.pid);
  }
  const o = await p;
  for (const l of lines) l.end();
  return {
    status: o.exitCode,
    signal: o.signal,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(err).toString('utf8'),
    output: Buffer.concat(all).toString('utf8'),
    error: startError(o, cmd, 'spawn'),
  };
}

/** run, synchronously (no onLine). At most MAX_SYNC_OUTPUT of each stream is kept. */
export function runSync(cmd: string, args: string[], opts: RunSyncOptions = {}): RunResult {
  const missing = notStartable(cmd, opts, 'spawnSync');
  if (missing) return runResult({ error: missing });
  const bounded = ((file: string, argv: string[], o: SpawnSyncOptions) =>
    spawnSync(file, argv, { ...o, timeout: opts.timeoutMs, maxBuffer: MAX_SYNC_OUTPUT })) as typeof spawnSync;
  const o = $.sync({
    ...zxOptions(opts),
    stdio: opts.stdio ?? 'pipe',
    input: opts.input,
    spawnSync: bounded,
  })`${[cmd, ...args]}`;
  return {
    status: o.exitCode,
    signal: o.signal,
    stdout: o.stdout,
    stderr: o.stderr,
    output: o.stdall,
    error: startError(o, cmd, 'spawnSync'),
  };
}

export interface RunCheckedOptions {
  /** Written to the program's stdin (which is then closed). */
  input?: string | Buffer;
  /** Reject when the program exits non-zero (default true). */
  check?: boolean;
  /** The error's headline when `check` rejects (default: the command line and its exit code). */
  what?: string;
}

/**
 * run, for a program that must work. Rejects with an OperatorError naming the command when it cannot start,
 * and with `check` (default) when it exits non-zero.
 */
export async function runChecked(
  cmd: string,
  args: string[],
  { input, check = true, what }: RunCheckedOptions = {},
): Promise<RunResult> {
  const r = await run(cmd, args, { input });
  if (r.error)
    throw new OperatorError(`cannot run ${cmd}`, {
      cause: r.error.message,
      next: `install the package that provides ${cmd} (see npm run demo's package check)`,
    });
  if (check && r.status !== 0) {
    throw new OperatorError(what ?? `${cmd} ${args.join(' ')} failed (exit ${r.status ?? 128})`, {
      details: (r.stderr || r.stdout).trim().split('\n').slice(-6).join('\n'),
      cause: 'see the command output above',
      next: 'run the command by hand to see the whole message',
    });
  }
  return r;
}

/**
 * Starts a program that outlives this process (systemd-nspawn for the local target): its own session, stdin
 * /dev/null, stdout and stderr into the open file `logFd`, not waited for. Returns its pid. node's spawn: zx's $
 * would hold it as a promise of its end, and this program keeps running after the CLI that started it exits.
 */
export function startDetached(cmd: string, args: string[], { logFd }: { logFd: number }): number | undefined {
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  child.unref();
  return child.pid;
}

/**
 * Starts one stage of a data pipeline (remote/transfer.ts runPipeline) and hands back the running child. node's
 * spawn: the pipeline links each stage's stdout to the next one's stdin through byte counters in this process,
 * stops the stages one by one when one fails, and reports a stage that cannot start by its own error; zx's $
 * feeds a child's stdin from a stream of its own and starts it through bash (a missing program is exit 127).
 */
export function startStage(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  return spawn(cmd, args, opts);
}

// ------------------------------------------------------------------------------------------------- internals

/** The zx options every run shares: output captured silently, no exception for an exit status, one simple command. */
function zxOptions(opts: RunSyncOptions): Partial<ZxOptions> {
  return {
    cwd: opts.cwd ?? process.cwd(),
    env: opts.env ?? process.env,
    nothrow: true,
    quiet: true,
    verbose: false,
    // zx's default prefix (`set -euo pipefail;`) would put a second command before the program; without it bash
    // execs the program, so the child (its pid, its signals) is the program itself
    prefix: '',
    postfix: '',
    preferLocal: false,
    detached: false,
  };
}

/** node's error for a program that is not there (ENOENT) or not executable (EACCES), before bash would say 127. */
function notStartable(cmd: string, opts: RunSyncOptions, syscall: 'spawn' | 'spawnSync'): Error | null {
  const env = opts.env ?? process.env;
  if (which.sync(cmd, { path: env.PATH ?? '', nothrow: true })) return null;
  const code = cmd.includes('/') && fs.existsSync(cmd) ? 'EACCES' : 'ENOENT';
  return Object.assign(new Error(`${syscall} ${cmd} ${code}`), { code });
}

/** zx's error (spawning bash failed, or spawnSync's timeout or output limit), told about the program, not bash. */
function startError(o: ProcessOutput, cmd: string, syscall: 'spawn' | 'spawnSync'): Error | null {
  const cause = o.cause as NodeJS.ErrnoException | null;
  if (!cause) return null;
  return cause.code ? Object.assign(new Error(`${syscall} ${cmd} ${cause.code}`), { code: cause.code }) : cause;
}

/** Splits a stream's bytes into lines for onLine (UTF-8 decoded across chunks); end() hands over the rest. */
function lineSplitter(onLine: ((line: string) => void) | undefined): { write(d: Buffer): void; end(): void } {
  if (!onLine) return { write: () => {}, end: () => {} };
  const decoder = new StringDecoder('utf8');
  let rest = '';
  return {
    write(d) {
      const parts = (rest + decoder.write(d)).split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) onLine(l);
    },
    end() {
      rest += decoder.end();
      if (rest) onLine(rest);
      rest = '';
    },
  };
}
