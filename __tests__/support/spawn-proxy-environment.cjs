// The jest environment of both projects: node's, with child_process.spawnSync carried out by a small server process
// (spawn-server.cjs) instead of by the jest process itself. A jest process holds 200-500 MB, and every fork copies
// its page tables and write-protects its pages (the parent then faults on each page it writes): 200 runs of the gate
// cost 12.2 CPU s from a 400 MB process, 8.2 s through the server, 6.7 s from an empty one (measured). The tests
// fork thousands of children (the gate, nsenter, ssh, btrbk, the prune), mostly through spawnSync.
//
// What a test sees is spawnSync's own result: the server calls the real spawnSync with the same file, arguments
// and options (the caller's environment and directory made explicit) and sends back status, signal, pid, the
// output slots as strings or Buffers, and the error with its fields (spawn-proxy.test.ts compares both ways). A call
// whose options cannot be sent (stdio of streams or descriptors, Infinity) runs as before, in this process.
// This module changes the outer child_process module once per jest process, before any test file imports it
// (jest's `node:child_process` of an ES module is read from that object when a test file first imports it).
const cp = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { TestEnvironment } = require('jest-environment-node');
const { readFrame, writeFrames } = require('./spawn-frames.cjs');

const SERVER = path.join(__dirname, 'spawn-server.cjs');
const realSpawnSync = cp.spawnSync;
const SIMPLE_STDIO = new Set(['pipe', 'ignore', 'inherit', 'overlapped', null, undefined]);

/** Options the server can be given as they are: JSON, with stdio of names only. */
function sendable(options) {
  // (JSON has no Infinity: a maxBuffer or timeout of Infinity would arrive as null, which spawnSync reads as unset)
  if (Object.values(options).some((v) => typeof v === 'number' && !Number.isFinite(v))) return false;
  const { stdio } = options;
  if (Array.isArray(stdio)) return stdio.every((s) => SIMPLE_STDIO.has(s));
  return SIMPLE_STDIO.has(stdio);
}

let server; // { wfd, rfd } once started; null when it could not be started (then every call runs here)

function start() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jest-spawn-'));
  const requests = path.join(dir, 'requests');
  const answers = path.join(dir, 'answers');
  const made = realSpawnSync('mkfifo', ['-m', '600', requests, answers], { stdio: 'ignore' });
  const up =
    made.status === 0 &&
    realSpawnSync(process.execPath, [SERVER, requests, answers, '--start'], { stdio: 'inherit', timeout: 60_000 })
      .status === 0;
  if (!up) {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  const wfd = fs.openSync(requests, 'w');
  const rfd = fs.openSync(answers, 'r');
  fs.rmSync(dir, { recursive: true, force: true }); // both ends are open: the names are not needed any more
  return { wfd, rfd };
}

const serverEnded = () => {
  throw new Error('the spawn server (__tests__/support/spawn-server.cjs) ended during a call');
};

function proxiedSpawnSync(file, args, options) {
  if (!Array.isArray(args)) {
    options = args;
    args = [];
  }
  options = options ?? {};
  if (typeof file !== 'string' || !sendable(options)) return realSpawnSync.apply(this, arguments);
  if (server === undefined) server = start();
  if (server === null) return realSpawnSync.apply(this, arguments);

  // spawnSync ignores an AbortSignal (it cannot act while this thread waits); zx's sync mode passes one
  const { input, signal: _ignored, ...rest } = options;
  const sent = { cwd: process.cwd(), env: process.env, ...rest };
  let kind = 'none';
  let bytes;
  if (typeof input === 'string') {
    kind = 'string';
    bytes = Buffer.from(input, 'utf8');
  } else if (ArrayBuffer.isView(input)) {
    kind = 'bytes';
    bytes = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  } else if (input !== undefined && input !== null) {
    return realSpawnSync.apply(this, arguments);
  }
  const head = Buffer.from(JSON.stringify({ file, args: args.map(String), options: sent, input: kind }));
  writeFrames(server.wfd, bytes ? [head, bytes] : [head]);

  const answer = JSON.parse(readFrame(server.rfd, serverEnded).toString('utf8'));
  const output =
    answer.output &&
    answer.output.map((k) => {
      if (k === null) return null;
      const b = readFrame(server.rfd, serverEnded);
      return k === 'string' ? b.toString('utf8') : b;
    });
  const result = {
    status: answer.status,
    signal: answer.signal,
    output,
    pid: answer.pid,
    stdout: output ? output[1] : null,
    stderr: output ? output[2] : null,
  };
  if (answer.error) {
    const { message, ...fields } = answer.error;
    result.error = Object.assign(new Error(message), fields);
  }
  return result;
}

if (!cp.spawnSync.viaSpawnServer) {
  proxiedSpawnSync.viaSpawnServer = true;
  proxiedSpawnSync.real = realSpawnSync;
  cp.spawnSync = proxiedSpawnSync;
}

module.exports = TestEnvironment;
