// This machine as the local target sees it: files that may be absent, processes that may have ended, mount points,
// and a command that must work. Small helpers the other local-target modules share.
import path from 'node:path';
import process from 'node:process';
import { parseMountinfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { readText } from '../core/files.js';
import { runSync, type RunResult } from '../core/process.js';

/** runSync, and an OperatorError when the command cannot start or exits non-zero. */
export function runOrThrow(cmd: string, args: string[]): RunResult {
  const r = runSync(cmd, args);
  if (r.error)
    throw new OperatorError(`cannot run ${cmd}`, {
      cause: r.error.message,
      next: 'check the prerequisites: npx zx scripts/local-target.mjs status',
    });
  if (r.status !== 0)
    throw new OperatorError(`${cmd} ${args.join(' ')} failed (exit ${r.status})`, {
      details: `${r.stderr || r.stdout}`.slice(-2000),
    });
  return r;
}

/** A command's output for a log, with why it did not run to its end when it did not. */
export const logOf = (r: RunResult): string => (r.error ? `${r.output}${r.error.message}\n` : r.output);

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it gives a truthy value (returned) or timeoutMs has passed (null). */
export async function waitFor<T>(
  fn: () => T | null | Promise<T | null>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) return null;
    await sleep(intervalMs);
  }
}

export function pidAlive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export { readText };

export function isMountPoint(dir: string): boolean {
  const target = path.resolve(dir);
  return parseMountinfo(readText('/proc/self/mountinfo') ?? '').some((m) => m.mountPoint === target);
}
