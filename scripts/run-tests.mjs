#!/usr/bin/env node
// `npm test`'s checks, side by side: the lint (`npm run lint`: tsc, Prettier's check, shellcheck), the unit project,
// and the integration project in LANES lanes (jest `--shard=I/N`, split by __tests__/support/lane-sequencer.cjs by the
// time each file takes), each lane a jest run of its own with a local target of its own. The rootfs images the
// targets and laptops boot from are built first, once, so that no two lanes build one at the same time. The unit
// project runs at a lower CPU priority (nice 5) and the lint at the lowest (nice 19: it has no timeouts to miss): the
// lanes wait on containers, ssh and btrfs between their bursts, and those gaps are the lint's and the unit project's,
// so neither holds up the longest lane. Every line a
// run prints is prefixed with its name; each run's time is printed as it ends; the exit status is 1 when any run
// failed.
//   node scripts/run-tests.mjs [--lanes N] [--only lint|unit|integration] [--update-durations] [--help]
// --update-durations: fold the seconds each integration file took in this run into __tests__/integration/durations.json
// (the mean of the recorded seconds and this run's: one run's seconds move by up to 30 % on a loaded machine).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ REPO_ROOT }] = await importLibrary('scripts/lib/core/connection.ts');

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        lanes: { type: 'string', default: '3' },
        only: { type: 'string' },
        'update-durations': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    console.error(`run-tests: ${err.message} (see --help)`);
    process.exit(2);
  }
})();
const opts = parsed.values;
if (opts.help) {
  // the header comment above is the help: print it
  const text = fs.readFileSync(new URL(import.meta.url), 'utf8');
  console.log(
    text
      .split('\n')
      .slice(
        1,
        text.split('\n').findIndex((l, i) => i > 0 && !l.startsWith('//')),
      )
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(0);
}
const lanes = Number(opts.lanes);
if (!Number.isInteger(lanes) || lanes < 1 || lanes > 4) {
  console.error(`run-tests: --lanes ${opts.lanes} is not a whole number from 1 to 4`);
  process.exit(2);
}
if (opts.only && !['lint', 'unit', 'integration'].includes(opts.only)) {
  console.error(`run-tests: --only ${opts.only}: use lint, unit or integration`);
  process.exit(2);
}

const JEST = [
  '--experimental-vm-modules',
  '--no-warnings=ExperimentalWarning',
  path.join(REPO_ROOT, 'node_modules/jest/bin/jest.js'),
];
// the lanes' priority is the default; the unit project's is lower, the lint's the lowest (see the header)
const BACKGROUND_NICE = 5;
const LINT_NICE = 19;
const runs = [];
const want = (what) => !opts.only || opts.only === what;
if (want('lint'))
  runs.push({ name: 'lint', command: 'npm', args: ['run', '--silent', 'lint'], nice: LINT_NICE, jest: false });
if (want('unit')) runs.push({ name: 'unit', args: ['--selectProjects=unit', '--maxWorkers=2'], nice: BACKGROUND_NICE });
if (want('integration')) {
  for (let i = 1; i <= lanes; i++)
    runs.push({
      name: lanes === 1 ? 'integration' : `integration-${i}`,
      lane: true,
      args: ['--selectProjects=integration', '--runInBand', ...(lanes === 1 ? [] : [`--shard=${i}/${lanes}`])],
      // The targets the tests boot are preloaded (the boot script's packages already in the image: its packages step
      // runs no apt), but for the first lane's shared target and the Debian 13 one, on which the boot script
      // installs its packages as on EC2.
      env: { BTRBK_LOCAL_TARGET_PRELOADED: '1', ...(i === 1 ? { BTRBK_TEST_TARGET_PLAIN_ROOTFS: '1' } : {}) },
    });
}

const t0 = Date.now();
const log = (line) => process.stdout.write(`[run-tests] ${line}\n`);
const pending = [];

// the lint and the unit project need no image: they start at once
for (const r of runs.filter((x) => !x.lane)) pending.push(start(r));
if (want('integration')) {
  // the images the integration tests boot: built once here, not by two lanes at once
  const [
    { ensureRootfs, TARGET_RELEASES, targetRootfsSpec },
    { localTargetPaths },
    { laptopPaths, LAPTOP_ROOTFS },
    { ensurePackages },
  ] = await importLibrary(
    'scripts/lib/local-target/rootfs.ts',
    'scripts/lib/local-target/paths.ts',
    'scripts/lib/local-target/laptop.ts',
    'scripts/lib/core/system-deps.ts',
  );
  ensurePackages('test', { log });
  const images = [
    ...Object.entries(TARGET_RELEASES).map(([release, spec]) => ({
      paths: localTargetPaths({
        ...process.env,
        BTRBK_LOCAL_TARGET_RELEASE: release,
        BTRBK_LOCAL_TARGET_PRELOADED: '',
      }),
      spec,
    })),
    {
      paths: localTargetPaths({ ...process.env, BTRBK_LOCAL_TARGET_RELEASE: '12', BTRBK_LOCAL_TARGET_PRELOADED: '1' }),
      spec: targetRootfsSpec('12', true),
    },
    { paths: laptopPaths(), spec: LAPTOP_ROOTFS },
  ];
  for (const { paths, spec } of images) {
    const r = await ensureRootfs({ paths, spec, onProgress: log });
    log(`${spec.release} rootfs ${r.built ? `built in ${r.seconds.toFixed(0)} s` : 'cached'}: ${paths.rootfs}`);
  }
}

function start({ name, command = process.execPath, args, env = {}, nice = 0, jest = true }) {
  if (!pending.length) log(`${runs.map((r) => r.name).join(', ')}${runs.length > 1 ? ' side by side' : ''}`);
  const started = Date.now();
  const child = spawn(command, jest ? [...JEST, ...args] : args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, BTRBK_TEST_RUN_NAME: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // before it starts its own children (jest's workers, tsc): they inherit it
  if (nice && child.pid) os.setPriority(child.pid, nice);
  const prefix = (stream, out) => {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) out.write(`[${name}] ${line}\n`);
    });
    stream.on('end', () => rest && out.write(`[${name}] ${rest}\n`));
  };
  prefix(child.stdout, process.stdout);
  prefix(child.stderr, process.stderr);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      const seconds = (Date.now() - started) / 1000;
      log(`${name}: ${code === 0 ? 'passed' : `FAILED (exit ${code ?? signal})`} in ${seconds.toFixed(0)} s`);
      resolve({ name, code, seconds });
    });
  });
}

for (const r of runs.filter((x) => x.lane)) pending.push(start(r));
const results = await Promise.all(pending);
log(
  `all runs: ${((Date.now() - t0) / 1000).toFixed(0)} s wall (${results.map((r) => `${r.name} ${r.seconds.toFixed(0)} s`).join(', ')})`,
);

if (opts['update-durations']) {
  const file = path.join(REPO_ROOT, '__tests__/integration/durations.json');
  const known = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const r of results.filter((x) => x.name.startsWith('integration'))) {
    const recorded = path.join(REPO_ROOT, '.test-results', `${r.name}.json`);
    if (!fs.existsSync(recorded)) continue;
    for (const [file, seconds] of Object.entries(JSON.parse(fs.readFileSync(recorded, 'utf8')).files ?? {}))
      known[file] = file in known ? Math.round((known[file] + seconds) / 2) : seconds;
  }
  const sorted = Object.fromEntries(Object.entries(known).sort(([, a], [, b]) => b - a));
  fs.writeFileSync(file, `${JSON.stringify(sorted, null, 2)}\n`);
  log(`durations written to ${path.relative(REPO_ROOT, file)}`);
}
process.exitCode = results.every((r) => r.code === 0) ? 0 : 1;
