#!/usr/bin/env node
// Checks (and, as root, installs) the Debian packages the demo or the tests need.
// Usage: node scripts/ensure-deps.mjs [demo|test]
import process from 'node:process';
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ runMain, OperatorError }, { ensurePackages }] = await importLibrary(
  'scripts/lib/core/errors.ts',
  'scripts/lib/core/system-deps.ts',
);

await runMain(async () => {
  const purpose = process.argv[2] ?? 'test';
  if (!['demo', 'test'].includes(purpose))
    throw new OperatorError(`unknown purpose ${purpose}`, { next: 'use demo or test' });
  const { installed } = ensurePackages(purpose);
  console.log(installed.length ? `✓ installed ${installed.join(' ')}` : `✓ Debian packages for ${purpose} are present`);
});
