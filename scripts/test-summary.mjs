#!/usr/bin/env node
// Closes `npm test` with one line over all its jest runs: "tests: N passed, N failed", after the time each run took
// and, by file and name, each test that failed with the first lines of its error.
// Usage: node scripts/test-summary.mjs --reset   (before the runs)   |   node scripts/test-summary.mjs
// (the records are in .test-results/; a directory given as the last argument is read instead)
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ REPO_ROOT }] = await importLibrary('scripts/lib/core/connection.ts');

const given = process.argv.slice(2).filter((a) => a !== '--reset');
const dir = given.length ? path.resolve(given[given.length - 1]) : path.join(REPO_ROOT, '.test-results');
if (process.argv.includes('--reset')) {
  fs.rmSync(dir, { recursive: true, force: true });
} else {
  const runs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
  const total = { passed: 0, failed: 0 };
  const failures = [];
  for (const f of runs.sort()) {
    const c = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    total.passed += c.passed;
    total.failed += c.failed;
    failures.push(...(c.failures ?? []));
    // the time each jest run took (the lanes of `npm test` run side by side: the slowest is the wall time)
    if (c.seconds !== undefined)
      console.log(`  ${f.replace(/\.json$/, '')}: ${c.passed} passed, ${c.failed} failed in ${c.seconds} s`);
  }
  if (!runs.length) {
    console.log('tests: 0 passed, 1 failed');
    console.error('no jest run recorded its results');
    process.exitCode = 1;
  } else {
    // what failed, by name, last: CI keeps a run's tail
    for (const failure of failures) {
      console.log(`  FAILED ${failure.file}: ${failure.test}`);
      for (const line of failure.error) console.log(`      ${line}`);
    }
    console.log(`tests: ${total.passed} passed, ${total.failed} failed`);
    if (total.failed) process.exitCode = 1;
  }
}
