#!/usr/bin/env node
// `btrbk-aws NAME ...` (package.json "bin"): every entry point as one command, through the same table and runner as
// scripts/NAME.mjs: btrbk-aws setup|prereqs|troubleshoot|roundtrip|bench|local-target|backup ... (--help).
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ argsAfterScript, runSuite }, { runMain }, { BTRBK_AWS_SUMMARY, ENTRY_POINTS }] = await importLibrary(
  'scripts/lib/cli/runner.ts',
  'scripts/lib/core/errors.ts',
  'scripts/lib/cli/entries/index.ts',
);
await runMain(() => runSuite(ENTRY_POINTS, BTRBK_AWS_SUMMARY, argsAfterScript(import.meta.url), 'btrbk-aws'));
