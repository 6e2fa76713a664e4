// scripts/lib/core/process.ts: the one way the library runs a program (run, runSync, runChecked), with real programs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run, runChecked, runResult, runSync } from '../../scripts/lib/core/process.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';

describe('run', () => {
  test('hands over every output line as it comes (a last one without a newline too) and the exit status', async () => {
    const lines: string[] = [];
    const r = await run('sh', ['-c', 'echo one; echo two >&2; printf three; exit 3'], { onLine: (l) => lines.push(l) });
    expect(r.status).toBe(3);
    expect(r.signal).toBeNull();
    expect(r.error).toBeNull();
    expect(lines.sort()).toEqual(['one', 'three', 'two']);
    expect(r.stdout).toBe('one\nthree');
    expect(r.stderr).toBe('two\n');
    expect(r.output.length).toBe(r.stdout.length + r.stderr.length); // both, interleaved as they came
    expect(r.output).toContain('two\n');
  });

  test("a program that cannot start is not an exception: status null and node's error", async () => {
    const r = await run('/nonexistent/engine', []);
    expect(r).toMatchObject({ status: null, signal: null, stdout: '', stderr: '' });
    expect(r.error?.message).toBe('spawn /nonexistent/engine ENOENT');
    expect((await run('no-such-program-here', [])).error?.message).toBe('spawn no-such-program-here ENOENT');
  });

  test('passes every argument as it is (no shell word splitting or expansion), with input, cwd and env', async () => {
    const odd = ["it's", '$HOME', '`x`', 'a b', '', 'line\nbreak', '*'];
    const r = await run('printf', ['%s|', ...odd]);
    expect(r.stdout).toBe(`${odd.join('|')}|`);
    expect((await run('cat', [], { input: 'héllo\n' })).stdout).toBe('héllo\n');
    expect((await run('cat', [])).stdout).toBe(''); // no input: stdin is at its end at once
    expect((await run('pwd', [], { cwd: os.tmpdir() })).stdout.trim()).toBe(fs.realpathSync(os.tmpdir()));
    expect((await run('sh', ['-c', 'echo "$X"'], { env: { ...process.env, X: 'from env' } })).stdout).toBe(
      'from env\n',
    );
  });

  test('onStart gets the pid of the program itself (bash execs it), while it runs', async () => {
    const pids: number[] = [];
    const r = await run('sh', ['-c', 'echo $$; sleep 0.2'], { onStart: (pid) => pids.push(pid) });
    expect(r.status).toBe(0);
    expect(pids).toEqual([Number(r.stdout.trim())]);
  });

  test('the timeout ends the program with SIGTERM', async () => {
    const t0 = Date.now();
    const r = await run('sleep', ['30'], { timeoutMs: 200 });
    expect(r).toMatchObject({ status: null, signal: 'SIGTERM', error: null });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  test('output is decoded once, so a UTF-8 character split between two reads stays whole', async () => {
    const text = 'ä'.repeat(100_000); // 200 000 bytes: more than one pipe read
    const r = await run('cat', [], { input: text });
    expect(r.stdout).toBe(text);
  });
});

describe('runSync', () => {
  test('the same result shape: status, output, input, and what could not start', () => {
    const r = runSync('sh', ['-c', 'cat; echo err >&2; exit 2'], { input: 'in\n' });
    expect(r).toEqual({ status: 2, signal: null, stdout: 'in\n', stderr: 'err\n', output: 'in\nerr\n', error: null });
    expect(runSync('/nonexistent/engine', []).error?.message).toBe('spawnSync /nonexistent/engine ENOENT');
  });

  test('the timeout stops the program and says so', () => {
    const r = runSync('sleep', ['30'], { timeoutMs: 200 });
    expect(r).toMatchObject({ status: null, signal: 'SIGTERM' });
    expect(r.error?.message).toBe('spawnSync sleep ETIMEDOUT');
  });

  test("keeps more than node's default 1 MiB of output", () => {
    expect(runSync('head', ['-c', String(3 * 1024 * 1024), '/dev/zero']).stdout.length).toBe(3 * 1024 * 1024);
  });

  test('a file that is there but not executable cannot start either', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'process-test-'));
    try {
      fs.writeFileSync(path.join(dir, 'plain'), '#!/bin/sh\n', { mode: 0o644 });
      expect(runSync(path.join(dir, 'plain'), []).error?.message).toBe(`spawnSync ${path.join(dir, 'plain')} EACCES`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('runChecked', () => {
  test('rejects a non-zero exit with the command and its last lines, or the headline given', async () => {
    const err = await runChecked('sh', ['-c', 'echo bad >&2; exit 4']).catch((e: OperatorError) => e);
    expect(err).toBeInstanceOf(OperatorError);
    expect(err).toMatchObject({ what: 'sh -c echo bad >&2; exit 4 failed (exit 4)', details: 'bad' });
    await expect(runChecked('false', [], { what: 'false failed, as it does' })).rejects.toMatchObject({
      what: 'false failed, as it does',
    });
    expect((await runChecked('false', [], { check: false })).status).toBe(1);
  });

  test('a program that cannot start is an OperatorError even without check', async () => {
    await expect(runChecked('/nonexistent/tool', [], { check: false })).rejects.toMatchObject({
      what: 'cannot run /nonexistent/tool',
      next: expect.stringMatching(/install the package/),
    });
  });
});

test('runResult fills what a fake leaves out', () => {
  expect(runResult({ status: 0, stdout: 'a', stderr: 'b' })).toEqual({
    status: 0,
    signal: null,
    stdout: 'a',
    stderr: 'b',
    output: 'ab',
    error: null,
  });
});
