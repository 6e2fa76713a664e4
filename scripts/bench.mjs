#!/usr/bin/env zx
// The transfer benchmark on the local target (docs/PERFORMANCE.md): every figure is a ratio of two things
// measured side by side in this run. Prints a table and writes the same figures to bench-results/<time>.json.
//   npm run bench -- [--scale small|full] [--items incremental,path,compression,rsync,atime,limits,setup] [--json]
//                    [--env local_connection.env] [--out DIR]
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { argv } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { runMain, OperatorError } = await import('./lib/core/errors.ts');
const { LOCAL_ENV_FILE, REPO_ROOT, isLocalTarget, readConnection } = await import('./lib/core/connection.ts');
const { SCALES, formatTable, resultsFileName, summarize, toJson, targetSpaceNeededMiB } =
  await import('./lib/bench/bench.ts');
const { ITEMS, runBench } = await import('./lib/bench/bench-measure.ts');
const { progressLine } = await import('./lib/remote/transfer.ts');
const { palette, useColor } = await import('./lib/core/report.ts');
const { execInTarget, up, setLimits, groupCpuSeconds, localTargetPaths } =
  await import('./lib/local-target/local-target.ts');
const { runChecked } = await import('./lib/core/process.ts');

await runMain(async () => {
  const scale = String(argv.scale ?? 'full');
  if (!SCALES[scale])
    throw new OperatorError(`unknown --scale ${scale}`, { next: `use one of: ${Object.keys(SCALES).join(', ')}` });
  const items = argv.items
    ? String(argv.items)
        .split(',')
        .map((x) => x.trim())
    : [...ITEMS];
  const unknown = items.filter((i) => !ITEMS.includes(i));
  if (unknown.length)
    throw new OperatorError(`unknown --items ${unknown.join(',')}`, { next: `use any of: ${ITEMS.join(',')}` });
  const envFile = path.resolve(argv.env ?? LOCAL_ENV_FILE);
  const conn = readConnection(envFile);
  if (!isLocalTarget(conn)) {
    throw new OperatorError('the benchmark runs on the local target only', {
      cause:
        'it adds a temporary bench-only SSH user (no gate) to compare against; that must never happen on a real backup host',
      next: 'npx zx scripts/local-target.mjs up, then npm run bench',
    });
  }
  const c = palette(useColor(process.stderr));
  const log = (line) => console.error(c.dim(line));
  // not on a terminal: a log line every 5 s
  const line = progressLine({ indent: '   ', everyMs: 5000, afterMs: 2000 });
  const progress = (label, p) => (p.done ? line.clear() : line.show(label, p));
  log(
    `bench: scale ${scale} (${JSON.stringify(SCALES[scale])}); the target's volume needs about ${targetSpaceNeededMiB(scale)} MiB free at the peak`,
  );

  const setupTimings = async () => {
    const out = [];
    const t0 = performance.now();
    try {
      const r = await up({});
      out.push({
        label: `local-target up (warm rootfs cache; ${r.alreadyUp ? 'target already running: the idempotent re-run' : 'fresh instance'})`,
        seconds: (performance.now() - t0) / 1000,
        alreadyUp: r.alreadyUp,
      });
    } catch (err) {
      out.push({ label: 'local-target up', error: err.what ?? err.message });
    }
    const outDir = fs.mkdtempSync(path.join(process.env.TMPDIR || '/tmp', 'bench-synth-'));
    try {
      const synth = () =>
        runChecked('npx', ['--no-install', 'cdktf', 'synth', '--output', outDir], { what: 'cdktf synth failed' });
      await synth(); // warms caches (ts compile, provider bindings)
      const t1 = performance.now();
      await synth();
      out.push({ label: 'cdktf synth (warm, second run)', seconds: (performance.now() - t1) / 1000 });
    } catch (err) {
      out.push({ label: 'cdktf synth', error: err.what ?? err.message });
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
    return out;
  };

  const report = await runBench({
    conn,
    exec: (a, o) => execInTarget(a, o),
    scale,
    items,
    log,
    progress,
    setupTimings,
    target: {
      groupCpuSeconds: () => groupCpuSeconds(localTargetPaths().name),
      setLimits: (type) => setLimits({ limits: type }),
    },
  });
  const outDir = path.resolve(argv.out ?? path.join(REPO_ROOT, 'bench-results'));
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, resultsFileName(new Date(report.startedAt)));
  fs.writeFileSync(file, toJson(report));
  if (argv.json) console.log(toJson(report).trimEnd());
  else {
    console.log(formatTable(report));
    console.log(palette(useColor(process.stdout)).dim(`figures also in ${path.relative(process.cwd(), file) || file}`));
  }
  const s = summarize(report);
  return s.error ? 2 : s.fail ? 1 : 0;
});
