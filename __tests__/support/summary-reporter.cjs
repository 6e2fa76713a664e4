// Jest reporter: records each run's counts in .test-results/<name>.json so that `npm test` can close with one
// plain line over all its jest runs (scripts/test-summary.mjs): "tests: N passed, N failed".
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig, options = {}) {
    this.dir = path.join(globalConfig.rootDir, '.test-results');
    this.name = options.name || process.env.BTRBK_TEST_RUN_NAME || 'jest';
  }

  onRunComplete(_contexts, results) {
    fs.mkdirSync(this.dir, { recursive: true });
    const counts = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + results.numRuntimeErrorTestSuites,
      skipped: results.numPendingTests + results.numTodoTests,
      suitesFailed: results.numFailedTestSuites,
    };
    fs.writeFileSync(path.join(this.dir, `${this.name}.json`), `${JSON.stringify(counts)}\n`);
    console.log(`${this.name}: ${counts.passed} passed, ${counts.failed} failed`);
  }
}

module.exports = SummaryReporter;
