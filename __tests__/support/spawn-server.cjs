// The spawn server of spawn-proxy-environment.cjs: a small node process that runs the spawnSync calls of one jest
// process for it, so that each child is forked from about 40 MB instead of the 200-500 MB a jest process holds (a
// fork copies the parent's page tables and write-protects its pages: about 20 ms of CPU more per child from 400 MB,
// measured). Reads requests from the FIFO argv[2], answers on the FIFO argv[3], one at a time, until the request
// FIFO closes (its jest process ended).
//
// A request: u32 length, JSON { file, args, options, input: 'none' | 'string' | 'bytes' }, then, for a string or
// bytes input, u32 length and the bytes (a string input goes back to spawnSync as the same string, UTF-8 on the
// wire). An answer: u32 length, JSON { status, signal, pid, error, output: [kinds] }, then for each output slot
// that holds something, u32 length and its bytes (kind 'string': a string in the options' encoding, sent as
// UTF-8; 'buffer': bytes).
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { readFrame, writeFrames } = require('./spawn-frames.cjs');

const [requests, answers, mode] = process.argv.slice(2);
if (mode === '--start') {
  // started by the jest process with spawnSync: starts the server on its own and returns once the server is up (exit
  // 0), or when it failed (exit 1), so the jest process never waits on a FIFO that no one will open
  const { spawn } = require('node:child_process');
  const server = spawn(process.execPath, [__filename, requests, answers], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
  });
  const failed = setTimeout(() => process.exit(1), 30_000);
  server.on('exit', () => process.exit(1));
  server.stdio[3].once('data', () => {
    clearTimeout(failed);
    process.exit(0);
  });
  return;
}
fs.writeSync(3, 'up\n');
fs.closeSync(3);
const rfd = fs.openSync(requests, 'r');
const wfd = fs.openSync(answers, 'w');

// the jest process is gone
const gone = () => process.exit(0);

for (;;) {
  const req = JSON.parse(readFrame(rfd, gone).toString('utf8'));
  const options = { ...req.options };
  if (req.input !== 'none') {
    const bytes = readFrame(rfd, gone);
    options.input = req.input === 'string' ? bytes.toString('utf8') : bytes;
  }
  const r = spawnSync(req.file, req.args, options);
  const parts = [];
  const output =
    r.output &&
    r.output.map((x) => {
      if (x === null || x === undefined) return null;
      parts.push(typeof x === 'string' ? Buffer.from(x, 'utf8') : x);
      return typeof x === 'string' ? 'string' : 'buffer';
    });
  const error = r.error && {
    message: r.error.message,
    ...Object.fromEntries(['errno', 'code', 'syscall', 'path', 'spawnargs'].map((k) => [k, r.error[k]])),
  };
  const head = Buffer.from(JSON.stringify({ status: r.status, signal: r.signal, pid: r.pid, error, output }));
  writeFrames(wfd, [head, ...parts]);
}
