// npm test's closing summary (__tests__/support/summary-reporter.cjs records each jest run, scripts/test-summary.mjs
// reads the records): a failed test is named, with its file and the first lines of its error, after the counts; CI
// keeps only the tail of a run's output, and a count alone did not say which test failed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';

const require = createRequire(import.meta.url);
const SummaryReporter = require('./summary-reporter.cjs') as new (
  globalConfig: { rootDir: string },
  options?: { name?: string },
) => { onRunComplete: (contexts: unknown, results: unknown) => void };

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'summary-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const fileResult = (name: string, tests: Array<{ fullName: string; status: string; failureMessages?: string[] }>) => ({
  testFilePath: path.join(root, '__tests__', name),
  perfStats: { start: 1_000, end: 4_000 },
  testResults: tests,
});

function record(name: string, testResults: unknown[], failed: number, passed: number) {
  const reporter = new SummaryReporter({ rootDir: root }, { name });
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    reporter.onRunComplete(new Set(), {
      testResults,
      numPassedTests: passed,
      numFailedTests: failed,
      numRuntimeErrorTestSuites: 0,
      numPendingTests: 0,
      numTodoTests: 0,
      numFailedTestSuites: failed ? 1 : 0,
      startTime: Date.now() - 5_000,
    });
  } finally {
    log.mockRestore();
  }
}

const summary = () =>
  spawnSync(process.execPath, ['scripts/test-summary.mjs', path.join(root, '.test-results')], { encoding: 'utf8' });

test('a failed test is recorded and named in the summary, after the counts, with the first lines of its error', () => {
  const error = `\u001b[1mError: expect(received).toMatchObject(expected)\u001b[22m\n\n- Expected\n+ Received\n${'x'.repeat(300)}\n    at line 5`;
  record(
    'integration-3',
    [
      fileResult('integration/confinement.local-target.test.ts', [
        { fullName: 'a receive that stalls ends fast', status: 'failed', failureMessages: [error] },
        { fullName: 'another', status: 'passed' },
      ]),
    ],
    1,
    1,
  );
  record('unit', [fileResult('unit.test.ts', [{ fullName: 'fine', status: 'passed' }])], 0, 1);
  const saved = JSON.parse(fs.readFileSync(path.join(root, '.test-results', 'integration-3.json'), 'utf8'));
  expect(saved.failures).toEqual([
    {
      file: '__tests__/integration/confinement.local-target.test.ts',
      test: 'a receive that stalls ends fast',
      error: ['Error: expect(received).toMatchObject(expected)', '- Expected', '+ Received'],
    },
  ]);
  expect(saved.files).toEqual({ 'confinement.local-target.test.ts': 3 });
  const r = summary();
  expect(r.status).toBe(1);
  const lines = r.stdout.trimEnd().split('\n');
  expect(lines.slice(-5)).toEqual([
    '  FAILED __tests__/integration/confinement.local-target.test.ts: a receive that stalls ends fast',
    '      Error: expect(received).toMatchObject(expected)',
    '      - Expected',
    '      + Received',
    'tests: 2 passed, 1 failed',
  ]);
  expect(lines[0]).toMatch(/^ {2}integration-3: 1 passed, 1 failed in \d+ s$/);
});

test('a file that did not run is named too; all passing prints no FAILED line and exits 0', () => {
  record('unit', [fileResult('unit.test.ts', [{ fullName: 'fine', status: 'passed' }])], 0, 1);
  expect(summary()).toMatchObject({ status: 0, stdout: expect.not.stringContaining('FAILED') });
  record(
    'integration-1',
    [{ ...fileResult('integration/boot.local-target.test.ts', []), testExecError: { message: 'SyntaxError: x' } }],
    1,
    0,
  );
  const r = summary();
  expect(r.stdout).toContain('  FAILED __tests__/integration/boot.local-target.test.ts: (the file did not run)\n');
  expect(r.stdout).toContain('      SyntaxError: x\n');
});
