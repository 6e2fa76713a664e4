// The real entry points as a person runs them (`npx zx scripts/NAME.mjs ...`, and the `btrbk-aws` bin), as child
// processes in an empty directory with no connection file and no BTRBK_ENV_FILE, and not as root (as root, the
// test drops to nobody): every level's --help exits 0 and prints what the table generates (each script once, every
// level through the same runner in one child process); an unknown option is a readable refusal, no stack trace;
// --json leaves stdout to the JSON document.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ENTRY_POINTS } from '../../scripts/lib/cli/entries/index.js';
import { resolve, scriptProg } from '../../scripts/lib/cli/runner.js';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { label, levels, type Level } from './walk.js';

const ZX = path.join(REPO_ROOT, 'node_modules', 'zx', 'build', 'cli.js');
const asRoot = process.getuid?.() === 0;
let cwd: string;

beforeAll(() => {
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-scripts-'));
  if (asRoot) fs.chmodSync(cwd, 0o777);
});
afterAll(() => fs.rmSync(cwd, { recursive: true, force: true }));

interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}
const run = async (argv: string[]): Promise<Ran> => {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: cwd, NO_COLOR: '1' };
  delete env.BTRBK_ENV_FILE;
  try {
    const r = await promisify(execFile)(process.execPath, argv, {
      cwd,
      env,
      encoding: 'utf8',
      timeout: 60_000,
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    return { status: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return { status: e.code, stdout: e.stdout, stderr: e.stderr };
  }
};
const script = (name: string, args: string[]) => run([ZX, path.join(REPO_ROOT, 'scripts', `${name}.mjs`), ...args]);

const ALL = levels(ENTRY_POINTS);
const want = (l: Level): Ran => {
  const r = resolve(l.entry, [...l.path, '--help'], scriptProg(l.entry.name));
  if (!('help' in r)) throw new Error(`${label(l)} --help: no help`);
  return { status: 0, stdout: `${r.help}\n`, stderr: '' };
};

// Each entry point's script runs once as a person runs it: its deepest verb's --help (the script's imports are the
// same at every level: a verb loads its modules when it runs, not for --help).
const DEEPEST = ENTRY_POINTS.map((e) =>
  ALL.filter((l) => l.entry === e).reduce((a, b) => (b.path.length > a.path.length ? b : a)),
);
const scripts = new Map<string, Ran>();
test.each(DEEPEST.map((l) => [label(l), l] as const))(
  "%s --help, the script itself: exit 0, the table's help, no connection file, not root",
  (name, l) => {
    expect(scripts.get(name)).toEqual(want(l));
    expect(fs.readdirSync(cwd)).toEqual([]);
  },
);

// Every level, answered by the same runner (runEntry) in one child process that has what the scripts have: no
// connection file, no BTRBK_ENV_FILE, an empty directory, not root. A --help that read a connection file or needed
// root fails here.
const helps = new Map<string, Ran>();
beforeAll(async () => {
  const url = (p: string) => pathToFileURL(p).href;
  const code = `
import { PassThrough } from 'node:stream';
const { importLibrary } = await import(${JSON.stringify(url(path.join(REPO_ROOT, 'scripts', 'load-library.mjs')))});
const [{ runEntry, scriptProg }, { ENTRY_POINTS }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/index.ts');
const levels = JSON.parse(process.argv[1]);
const out = [];
for (const [name, words] of levels) {
  const text = { stdout: '', stderr: '' };
  const io = {};
  for (const k of ['stdout', 'stderr']) {
    io[k] = new PassThrough();
    io[k].on('data', (d) => (text[k] += d));
  }
  let status;
  try {
    status = await runEntry(ENTRY_POINTS.find((e) => e.name === name), words, scriptProg(name), io);
  } catch (err) {
    status = 'threw';
    text.stderr += String(err?.stack ?? err);
  }
  out.push({ status, ...text });
}
process.stdout.write(JSON.stringify(out));
`;
  const all = async (): Promise<void> => {
    const argv = JSON.stringify(ALL.map((l) => [l.entry.name, [...l.path, '--help']]));
    const r = await run(['--input-type=module', '-e', code, argv]);
    if (r.status !== 0) throw new Error(`the help child process failed (${r.status}): ${r.stderr}`);
    (JSON.parse(r.stdout) as Ran[]).forEach((x, i) => helps.set(label(ALL[i]), x));
  };
  const each = DEEPEST.map((l) => async () => {
    scripts.set(label(l), await script(l.entry.name, [...l.path, '--help']));
  });
  // two at a time (the machine's cores), all before the tests look at them
  const queue = [all, ...each];
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) await job();
  };
  await Promise.all([worker(), worker()]);
}, 240_000);

test.each(ALL.map((l) => [label(l), l] as const))(
  "%s --help: exit 0, the table's help, no connection file, not root",
  (name, l) => {
    expect(helps.get(name)).toEqual(want(l));
    expect(fs.readdirSync(cwd)).toEqual([]);
  },
);

test("btrbk-aws (the bin): its own --help, and an entry point's verb help, the same as the script's", async () => {
  const bin = path.join(REPO_ROOT, 'scripts', 'btrbk-aws.mjs');
  const top = await run([bin, '--help']);
  expect(top.status).toBe(0);
  for (const e of ENTRY_POINTS) expect(top.stdout).toMatch(new RegExp(`^ {2}${e.name} +\\S`, 'm'));
  const verbHelp = await run([bin, 'backup', 'status', '--help']);
  const want = resolve(
    ENTRY_POINTS.find((e) => e.name === 'backup')!,
    ['status', '--help'],
    'btrbk-aws backup',
  );
  expect(verbHelp).toEqual({ status: 0, stdout: `${'help' in want ? want.help : ''}\n`, stderr: '' });
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8'));
  expect(pkg.bin).toEqual({ 'btrbk-aws': 'scripts/btrbk-aws.mjs' });
}, 60_000);

test('an unknown option: the exit status of a refused command line, the valid options, no stack trace', async () => {
  const setup = await script('setup', ['--target', 'local', '--allow-data-volume-replace']);
  expect(setup.status).toBe(1);
  expect(setup.stderr).toMatch(/^✗ unknown option --allow-data-volume-replace\n {2}next: {2}valid options: --target, /);
  expect(setup.stderr).not.toMatch(/\n\s+at /);
  const backup = await script('backup', ['status', '--frobnicate']);
  expect(backup.status).toBe(2);
  expect(backup.stderr).toMatch(/^✗ unknown option --frobnicate\n/);
  expect(backup.stdout).toBe('');
}, 60_000);

test('bench and troubleshoot without a connection file say so (after --help was not asked)', async () => {
  const r = await script('bench', ['--scale', 'small']);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/^✗ no connection file at .*local_connection\.env\n {2}cause: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  const t = await script('troubleshoot', ['check-all', '--env', 'nowhere.env']);
  expect(t.status).toBe(1);
  expect(t.stderr).toContain(`✗ no connection file at ${path.join(cwd, 'nowhere.env')}`);
  expect(t.stderr).not.toMatch(/\n\s+at /);
}, 60_000);

test('--json: stdout is the JSON document alone (prereqs --target local)', async () => {
  const r = await script('prereqs', ['--target', 'local', '--json']);
  const report = JSON.parse(r.stdout);
  expect(report).toMatchObject({ target: 'local', checks: expect.any(Array) });
  expect(r.status).toBe(report.ok ? 0 : 1);
}, 60_000);
