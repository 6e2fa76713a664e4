// The bench's `setup` item: how long `local-target up` (warm rootfs cache) and a warm `cdktf synth` take. Reported
// as they are, not as ratios; a step that fails is reported with its error, never ends the benchmark.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { runChecked } from '../core/process.js';
import type { Timing } from './bench.js';

export interface SetupTimingDeps {
  /** Brings the local target up (local-target.ts up); says whether it was already up. */
  up: () => Promise<{ alreadyUp: boolean }>;
  /** One `cdktf synth` into outDir (default: npx --no-install cdktf synth --output outDir). */
  synth?: (outDir: string) => Promise<unknown>;
  now?: () => number;
  tmpDir?: string;
}

const messageOf = (err: unknown): string => {
  const e = (err ?? {}) as { what?: unknown; message?: unknown };
  return String(e.what ?? e.message ?? err);
};

export async function setupTimings({
  up,
  synth = (outDir) =>
    runChecked('npx', ['--no-install', 'cdktf', 'synth', '--output', outDir], { what: 'cdktf synth failed' }),
  now = () => performance.now(),
  tmpDir = process.env.TMPDIR || os.tmpdir(),
}: SetupTimingDeps): Promise<Timing[]> {
  const out: (Timing & { alreadyUp?: boolean })[] = [];
  const t0 = now();
  try {
    const r = await up();
    out.push({
      label: `local-target up (warm rootfs cache; ${r.alreadyUp ? 'target already running: the idempotent re-run' : 'fresh instance'})`,
      seconds: (now() - t0) / 1000,
      alreadyUp: r.alreadyUp,
    });
  } catch (err) {
    out.push({ label: 'local-target up', error: messageOf(err) });
  }
  const outDir = fs.mkdtempSync(path.join(tmpDir, 'bench-synth-'));
  try {
    await synth(outDir); // warms caches (ts compile, provider bindings)
    const t1 = now();
    await synth(outDir);
    out.push({ label: 'cdktf synth (warm, second run)', seconds: (now() - t1) / 1000 });
  } catch (err) {
    out.push({ label: 'cdktf synth', error: messageOf(err) });
  } finally {
    fs.rmSync(outDir, { recursive: true, force: true });
  }
  return out;
}
