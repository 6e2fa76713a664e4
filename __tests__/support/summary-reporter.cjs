// Jest reporter: records each run's counts and wall time in .test-results/<name>.json so that `npm test` can close
// with one plain line over all its jest runs (scripts/test-summary.mjs): "tests: N passed, N failed"; and the
// seconds each test file took (basename -> s), which `node scripts/run-tests.mjs --update-durations` folds into
// __tests__/integration/durations.json (what the integration lanes are balanced by).
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig, options = {}) {
    this.dir = path.join(globalConfig.rootDir, '.test-results');
    this.name = options.name || process.env.BTRBK_TEST_RUN_NAME || 'jest';
  }

  onRunComplete(_contexts, results) {
    fs.mkdirSync(this.dir, { recursive: true });
    const files = {};
    for (const r of results.testResults)
      if (r.perfStats && r.perfStats.end)
        files[path.basename(r.testFilePath)] = Math.round((r.perfStats.end - r.perfStats.start) / 1000);
    const counts = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
      suitesFailed: results.numFailedTestSuites,
      seconds: Math.round((Date.now() - results.startTime) / 1000),
      files,
    };
    fs.writeFileSync(path.join(this.dir, `${this.name}.json`), `${JSON.stringify(counts)}\n`);
    console.log(`${this.name}: ${counts.passed} passed, ${counts.failed} failed`);
  }
}

module.exports = SummaryReporter;
