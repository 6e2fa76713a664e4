// The real entry points as a person runs them (`npx zx scripts/NAME.mjs ...`, and the `btrbk-aws` bin), as child
// processes in an empty directory with no connection file and no BTRBK_ENV_FILE, and not as root (as root, the
// test drops to nobody): every level's --help exits 0 and prints what the table generates; an unknown option is
// a readable refusal, no stack trace; --json leaves stdout to the JSON document.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { promisify } from 'node:util';
import { ENTRY_POINTS } from '../../scripts/lib/cli/entries/index.js';
import { resolve, scriptProg } from '../../scripts/lib/cli/runner.js';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { label, levels } from './walk.js';

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
// two at a time (the machine's cores), all before the tests look at them
const helps = new Map<string, Ran>();
beforeAll(async () => {
  const queue = [...ALL];
  const worker = async (): Promise<void> => {
    for (let l = queue.shift(); l; l = queue.shift())
      helps.set(label(l), await script(l.entry.name, [...l.path, '--help']));
  };
  await Promise.all([worker(), worker()]);
}, 240_000);

test.each(ALL.map((l) => [label(l), l] as const))(
  "%s --help: exit 0, the table's help, no connection file, not root",
  (name, l) => {
    const want = resolve(l.entry, [...l.path, '--help'], scriptProg(l.entry.name));
    if (!('help' in want)) throw new Error('no help');
    expect(helps.get(name)).toEqual({ status: 0, stdout: `${want.help}\n`, stderr: '' });
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
  const t = await script('troubleshoot', ['check-all', '--env', 'nowhere.env']);
  expect(t.stderr).toContain(`✗ no connection file at ${path.join(cwd, 'nowhere.env')}`);
}, 60_000);

test('--json: stdout is the JSON document alone (prereqs --target local)', async () => {
  const r = await script('prereqs', ['--target', 'local', '--json']);
  const report = JSON.parse(r.stdout);
  expect(report).toMatchObject({ target: 'local', checks: expect.any(Array) });
  expect(r.status).toBe(report.ok ? 0 : 1);
}, 60_000);
