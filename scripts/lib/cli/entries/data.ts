// roundtrip (the end-to-end proof) and bench (the transfer benchmark on the local target): both move test data
// through SSH and the gate and report figures.
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../core/connection.js';
import { OperatorError } from '../../core/errors.js';
import {
  formatTable,
  ITEMS,
  reportJson,
  resultsFileName,
  SCALES,
  summarize,
  targetSpaceNeededMiB,
  toJson,
  type ScaleName,
} from '../../bench/bench.js';
import { bool, num, str, verb, type EntryPoint } from '../command.js';

const roundtripCommand = verb({
  name: 'roundtrip',
  summary:
    'the end-to-end proof: varied data in a btrfs subvolume here, sent full and incrementally through SSH and the gate, received back, and verified file by file (content and metadata); closes with "N passed, M failed", exit status 1 when anything failed',
  root: 'loop devices and btrfs receive',
  options: [
    { name: 'size-mb', type: 'number', valueName: 'N', default: 64, help: 'MiB of test data (1 to 65536)' },
    { name: 'keep', type: 'boolean', help: 'leave the local and remote subvolumes in place' },
    {
      name: 'source-dir',
      type: 'string',
      valueName: 'DIR',
      help: 'an existing btrfs directory to work in instead of two scratch filesystems',
    },
    { name: 'compress', type: 'string', choices: ['zstd'], help: 'compress the streams on the wire' },
  ],
  connection: {
    default: 'aws',
    required: true,
    help: 'the connection file (default: BTRBK_ENV_FILE, else aws_connection.env)',
  },
  async run(ctx) {
    const { runRoundtrip } = await import('../../data/roundtrip.js');
    const { roundtripEventLine, roundtripHeading } = await import('../../data/roundtrip-report.js');
    const { progressLine } = await import('../../remote/transfer.js');
    const sizeMb = num(ctx.args, 'size-mb')!;
    if (!Number.isInteger(sizeMb) || sizeMb < 1 || sizeMb > 65536)
      throw new OperatorError(`--size-mb ${sizeMb} is not a whole number of MiB from 1 to 65536`, {
        next: `${ctx.prog} --help`,
      });
    const compress = str(ctx.args, 'compress') ?? null;
    const conn = ctx.connection();
    // not a terminal: one line per report (throttled by the pipeline to every 0.5 s) once bytes moved, plus the last
    const line = progressLine({ indent: '    ', afterMs: 1 });
    if (!ctx.json) ctx.say(roundtripHeading(conn, sizeMb, compress, ctx.paint));
    return runRoundtrip(conn, {
      sizeMb,
      keep: bool(ctx.args, 'keep'),
      sourceDir: str(ctx.args, 'source-dir') || null,
      compress: compress as 'zstd' | null,
      onEvent: (e) => {
        if (ctx.json) return;
        if (e.type === 'progress') return line.show(e.transfer, e, { final: e.done });
        line.clear();
        const text = roundtripEventLine(e, ctx.paint, ctx.color);
        if (text !== undefined) ctx.say(text);
      },
    });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await import('../../data/roundtrip-report.js')).formatRoundtripSummary(r, paint),
  exit: (r) => (r.ok ? 0 : 1),
});

export const ROUNDTRIP: EntryPoint = {
  name: 'roundtrip',
  summary: roundtripCommand.summary,
  command: roundtripCommand,
};

const benchCommand = verb({
  name: 'bench',
  summary:
    'the transfer benchmark on the local target (docs/PERFORMANCE.md): every figure is a ratio of two things measured side by side in this run; prints a table and writes the same figures to bench-results/<time>.json',
  options: [
    {
      name: 'scale',
      type: 'string',
      choices: Object.keys(SCALES),
      default: 'full',
      help: 'the data sizes (small: a quick look)',
    },
    {
      name: 'items',
      type: 'string',
      valueName: ITEMS.join(','),
      help: 'the measurements to run, comma-separated (default: all)',
    },
    {
      name: 'out',
      type: 'string',
      valueName: 'DIR',
      help: 'where the results file is written (default: bench-results in the repository)',
    },
  ],
  connection: {
    default: 'local',
    required: true,
    help: "the local target's connection file (default: local_connection.env)",
  },
  async run(ctx) {
    const { runBench } = await import('../../bench/bench-measure.js');
    const { setupTimings } = await import('../../bench/setup-timings.js');
    const { progressLine } = await import('../../remote/transfer.js');
    const lt = await import('../../local-target/local-target.js');
    const { isLocalTarget } = await import('../../core/connection.js');
    const scale = str(ctx.args, 'scale') as ScaleName;
    const itemsArg = str(ctx.args, 'items');
    const given = itemsArg ? itemsArg.split(',').map((x) => x.trim()) : [...ITEMS];
    const isItem = (i: string): i is (typeof ITEMS)[number] => (ITEMS as readonly string[]).includes(i);
    const items = given.filter(isItem);
    const unknown = given.filter((i) => !isItem(i));
    if (unknown.length)
      throw new OperatorError(`unknown --items ${unknown.join(',')}`, { next: `use any of: ${ITEMS.join(',')}` });
    const conn = ctx.connection();
    if (!isLocalTarget(conn))
      throw new OperatorError('the benchmark runs on the local target only', {
        cause:
          'it adds a temporary bench-only SSH user (no gate) to compare against; that must never happen on a real backup host',
        next: 'npx zx scripts/local-target.mjs up, then npm run bench',
      });
    // the log is stderr's in both modes: stdout holds the table (or the JSON) alone
    const { palette, useColor } = await import('../../core/report.js');
    const dim = palette(useColor(process.stderr)).dim;
    const log = (l: string): void => void process.stderr.write(`${dim(l)}\n`);
    // not on a terminal: a log line every 5 s
    const line = progressLine({ indent: '   ', everyMs: 5000, afterMs: 2000 });
    log(
      `bench: scale ${scale} (${JSON.stringify(SCALES[scale])}); the target's volume needs about ${targetSpaceNeededMiB(scale)} MiB free at the peak`,
    );
    const report = await runBench({
      conn,
      exec: (a, o) => lt.execInTarget(a, o),
      scale,
      items,
      log,
      progress: (label, p) => (p.done ? line.clear() : line.show(label, p)),
      setupTimings: () => setupTimings({ up: () => lt.up({}) }),
      target: {
        groupCpuSeconds: () => lt.groupCpuSeconds(lt.localTargetPaths().name),
        setLimits: (type) => lt.setLimits({ limits: type }),
      },
    });
    const outDir = path.resolve(str(ctx.args, 'out') ?? path.join(REPO_ROOT, 'bench-results'));
    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, resultsFileName(new Date(report.startedAt)));
    fs.writeFileSync(file, toJson(report));
    return { report, file };
  },
  json: ({ report }) => reportJson(report),
  text: ({ report, file }, { paint }) =>
    `${formatTable(report)}\n${paint.dim(`figures also in ${path.relative(process.cwd(), file) || file}`)}`,
  exit: ({ report }) => {
    const s = summarize(report);
    return s.error ? 2 : s.fail ? 1 : 0;
  },
});

export const BENCH: EntryPoint = { name: 'bench', summary: benchCommand.summary, command: benchCommand };
