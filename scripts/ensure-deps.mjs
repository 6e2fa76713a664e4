#!/usr/bin/env node
// Checks (and, as root, installs) the Debian packages the demo or the tests need.
// Usage: node scripts/ensure-deps.mjs [demo|test]
import process from 'node:process';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { runMain, OperatorError } = await import('./lib/core/errors.ts');
const { ensurePackages } = await import('./lib/core/system-deps.ts');

await runMain(async () => {
  const purpose = process.argv[2] ?? 'test';
  if (!['demo', 'test'].includes(purpose))
    throw new OperatorError(`unknown purpose ${purpose}`, { next: 'use demo or test' });
  const { installed } = ensurePackages(purpose);
  console.log(installed.length ? `✓ installed ${installed.join(' ')}` : `✓ Debian packages for ${purpose} are present`);
});
