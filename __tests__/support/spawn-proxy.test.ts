// spawn-proxy-environment.cjs: the tests' spawnSync runs in a small server process, and returns what node's own
// spawnSync returns, call for call (the real one is kept as spawnSync.real).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Spawn = typeof spawnSync;
const proxied = spawnSync as Spawn & { viaSpawnServer?: boolean; real: Spawn };

/** A result with what differs between any two runs (the pid, the error's stack) left out. */
function comparable(r: ReturnType<Spawn>) {
  const { pid, error, ...rest } = r;
  expect(typeof pid).toBe('number');
  const e = error as NodeJS.ErrnoException & { spawnargs?: string[] };
  return {
    ...rest,
    error: error && {
      message: e.message,
      code: e.code,
      errno: e.errno,
      syscall: e.syscall,
      path: e.path,
      spawnargs: e.spawnargs,
    },
    isError: error instanceof Error,
  };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spawn-proxy-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const CALLS: Array<[string, (s: Spawn) => ReturnType<Spawn>]> = [
  ['stdout, stderr and an exit status, as Buffers', (s) => s('sh', ['-c', 'echo out; echo err >&2; exit 3'])],
  ['utf8 strings', (s) => s('printf', ['h\u00e9llo \u2603'], { encoding: 'utf8' })],
  ['latin1 strings of every byte', (s) => s('cat', [], { input: bytes, encoding: 'latin1' })],
  ['a string input', (s) => s('cat', [], { input: 'h\u00e9llo\n\u2603', encoding: 'utf8' })],
  ['a Buffer input, binary', (s) => s('od', ['-An', '-tx1'], { input: bytes })],
  ['a Uint8Array view into a larger buffer', (s) => s('cat', [], { input: new Uint8Array(bytes.buffer, 10, 20) })],
  ['the caller environment by default', (s) => s('sh', ['-c', 'echo "$PATH $HOME"'], { encoding: 'utf8' })],
  ['an explicit environment and directory', (s) => s('sh', ['-c', 'pwd; env'], { env: { A: 'b c' }, cwd: tmp })],
  ['a shell with a pipeline', (s) => s('echo a b c | wc -w', { shell: true, encoding: 'utf8' })],
  ['options without arguments', (s) => s('pwd', { cwd: '/', encoding: 'utf8' })],
  ['no arguments, no options', (s) => s('true')],
  // spawnSync ignores an AbortSignal, even an aborted one (zx's sync mode passes one): it is not sent
  ['an aborted AbortSignal', (s) => s('echo', ['ran'], { signal: AbortSignal.abort(), encoding: 'utf8' })],
  ['a timeout that kills', (s) => s('sleep', ['5'], { timeout: 200 })],
  ['a program that does not exist', (s) => s(path.join(tmp, 'nope'), ['x'])],
  ['more output than maxBuffer', (s) => s('sh', ['-c', 'head -c 3000 /dev/zero; sleep 5'], { maxBuffer: 1000 })],
  ['a child killed by a signal', (s) => s('sh', ['-c', 'kill -9 $$'])],
  [
    'stdio ignored, all or in part',
    (s) => s('sh', ['-c', 'echo a; echo b >&2'], { stdio: ['ignore', 'pipe', 'ignore'] }),
  ],
  ['megabytes of output', (s) => s('head', ['-c', String(5 << 20), '/dev/urandom'], { maxBuffer: 8 << 20 })],
];

test('the environment has put the server in spawnSync', () => {
  expect(proxied.viaSpawnServer).toBe(true);
  expect(typeof proxied.real).toBe('function');
});

test.each(CALLS)('%s: the same result as node spawnSync in this process', (_name, call) => {
  const via = call(proxied);
  const here = call(proxied.real);
  if (_name.startsWith('megabytes')) {
    // random bytes: the same length, both Buffers
    expect([via.status, (via.stdout as Buffer).length]).toEqual([0, 5 << 20]);
    expect([here.status, (here.stdout as Buffer).length]).toEqual([0, 5 << 20]);
    return;
  }
  expect(comparable(via)).toEqual(comparable(here));
  expect(Buffer.isBuffer(via.stdout)).toBe(Buffer.isBuffer(here.stdout));
});

test('the children are the server’s, not this process’s; calls it cannot carry run here', () => {
  const ppid = (s: Spawn, opts = {}) => Number(s('sh', ['-c', 'echo $PPID'], { encoding: 'utf8', ...opts }).stdout);
  expect(ppid(proxied.real)).toBe(process.pid);
  const server = ppid(proxied);
  expect(server).not.toBe(process.pid);
  expect(fs.readFileSync(`/proc/${server}/cmdline`, 'utf8')).toContain('spawn-server.cjs');
  expect(ppid(proxied)).toBe(server); // one server for the process
  // an infinite maxBuffer and a descriptor in stdio cannot be sent: they run in this process
  expect(ppid(proxied, { maxBuffer: Infinity })).toBe(process.pid);
  expect(ppid(proxied, { stdio: ['ignore', 'pipe', 2] })).toBe(process.pid);
  expect(ppid(proxied, { signal: new AbortController().signal })).toBe(server);
});
