#!/usr/bin/env zx
// The end-to-end proof: varied data in a btrfs subvolume here, sent full and incrementally through SSH and the
// gate, received back, and verified file by file (content and metadata). Closes with "N passed, M failed";
// exit status 1 when anything failed. Needs root (loop devices, btrfs receive).
//   sudo npx zx scripts/roundtrip.mjs [--env FILE] [--size-mb N] [--keep] [--source-dir DIR] [--compress zstd] [--json]
import { minimist } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { readConnection, resolveEnvFile } = await import('./lib/core/connection.ts');
const { OperatorError, runMain } = await import('./lib/core/errors.ts');
const { formatResult, palette, useColor } = await import('./lib/core/report.ts');
const { runRoundtrip } = await import('./lib/data/roundtrip.ts');
const { humanBytes, humanRate, progressLine } = await import('./lib/remote/transfer.ts');

const USAGE =
  'usage: sudo npx zx scripts/roundtrip.mjs [--env FILE] [--size-mb N] [--keep] [--source-dir DIR] [--compress zstd] [--json]';

await runMain(async () => {
  const args = minimist(
    process.argv.slice(2).filter((a) => !/roundtrip\.mjs$/.test(a)),
    {
      boolean: ['json', 'keep', 'help'],
      string: ['env', 'size-mb', 'source-dir', 'compress'],
      unknown: (a) => {
        throw new OperatorError(`unknown argument ${a}`, { next: USAGE });
      },
    },
  );
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const sizeMb = args['size-mb'] === undefined ? 64 : Number(args['size-mb']);
  if (!Number.isInteger(sizeMb) || sizeMb < 1 || sizeMb > 65536)
    throw new OperatorError(`--size-mb ${args['size-mb']} is not a whole number of MiB from 1 to 65536`, {
      next: USAGE,
    });
  if (args.compress && args.compress !== 'zstd')
    throw new OperatorError(`--compress ${args.compress}: only zstd is supported`, { next: USAGE });
  const conn = readConnection(resolveEnvFile(args.env));

  const color = !args.json && useColor(process.stdout);
  const c = palette(color);
  // not a terminal: one line per report (throttled by the pipeline to every 0.5 s) once bytes moved, plus the last one
  const line = progressLine({ indent: '    ', afterMs: 1 });
  const onEvent = (e) => {
    if (args.json) return;
    if (e.type === 'progress') {
      line.show(e.transfer, e, { final: e.done });
      return;
    }
    line.clear();
    if (e.type === 'step') console.log(formatResult(e.step, { color }));
    if (e.type === 'kept')
      console.log(
        c.yellow(`  kept (--keep): local ${e.local.join(', ') || '-'}; remote ${e.remote.join(', ') || '-'}`),
      );
  };

  if (!args.json)
    console.log(
      c.bold(
        `Round trip to ${conn.BTRBK_AWS_USER}@${conn.BTRBK_AWS_HOST}:${conn.BTRBK_AWS_SSH_PORT} (${sizeMb} MiB of test data${args.compress ? ', zstd' : ''})`,
      ),
    );
  const r = await runRoundtrip(conn, {
    sizeMb,
    keep: args.keep,
    sourceDir: args['source-dir'] || null,
    compress: args.compress || null,
    onEvent,
  });

  if (args.json) {
    console.log(JSON.stringify(r, null, 2));
  } else {
    if (r.transfers.length) {
      console.log(c.bold('\nTransfers'));
      for (const t of r.transfers) {
        console.log(
          `  ${t.name.padEnd(20)} ${humanBytes(t.wireBytes).padStart(10)} on the wire  ${humanBytes(t.streamBytes).padStart(10)} stream  ${(t.durationMs / 1000).toFixed(2).padStart(6)} s  ${humanRate(t.rate)}`,
        );
      }
      if (r.ratio !== null) console.log(`  incremental/full ratio: ${r.ratio.toFixed(4)}`);
    }
    const line = `${r.passed} passed, ${r.failed} failed`;
    console.log(`\n${r.failed ? c.red(line) : c.green(line)}`);
  }
  return r.ok ? 0 : 1;
});
