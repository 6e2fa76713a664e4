// Jest reporter: records each run's counts and wall time in .test-results/<name>.json so that `npm test` can close
// with one plain line over all its jest runs (scripts/test-summary.mjs): "tests: N passed, N failed"; and the
// seconds each test file took (basename -> s), which `node scripts/run-tests.mjs --update-durations` folds into
// __tests__/integration/durations.json (what the integration lanes are balanced by); and each failed test's file, name
// and the first lines of its error, so that the closing summary names what failed (CI shows only a run's tail).
const fs = require('node:fs');
const path = require('node:path');

const FIRST_LINES = 3;
// the first lines of an error message that say something (no colour codes, no blank lines), each cut to 200 characters
const firstLines = (text) =>
  String(text ?? '')
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(0, FIRST_LINES)
    .map((l) => (l.length > 200 ? `${l.slice(0, 199)}…` : l));

class SummaryReporter {
  constructor(globalConfig, options = {}) {
    this.rootDir = globalConfig.rootDir;
    this.dir = path.join(this.rootDir, '.test-results');
    this.name = options.name || process.env.BTRBK_TEST_RUN_NAME || 'jest';
  }

  onRunComplete(_contexts, results) {
    fs.mkdirSync(this.dir, { recursive: true });
    const files = {};
    const failures = [];
    for (const r of results.testResults) {
      if (r.perfStats && r.perfStats.end)
        files[path.basename(r.testFilePath)] = Math.round((r.perfStats.end - r.perfStats.start) / 1000);
      const file = path.relative(this.rootDir, r.testFilePath);
      if (r.testExecError)
        failures.push({ file, test: '(the file did not run)', error: firstLines(r.testExecError.message) });
      for (const t of r.testResults ?? [])
        if (t.status === 'failed')
          failures.push({ file, test: t.fullName, error: firstLines((t.failureMessages ?? []).join('\n')) });
    }
    const counts = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
      suitesFailed: results.numFailedTestSuites,
      seconds: Math.round((Date.now() - results.startTime) / 1000),
      files,
      failures,
    };
    fs.writeFileSync(path.join(this.dir, `${this.name}.json`), `${JSON.stringify(counts)}\n`);
    console.log(`${this.name}: ${counts.passed} passed, ${counts.failed} failed`);
  }
}

module.exports = SummaryReporter;
