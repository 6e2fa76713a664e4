#!/usr/bin/env node
// `btrbk-aws NAME ...` (package.json "bin"): every entry point as one command, through the same table and runner as
// scripts/NAME.mjs: btrbk-aws setup|prereqs|troubleshoot|roundtrip|bench|local-target|backup ... (--help).
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { argsAfterScript, runSuite } = await import('./lib/cli/runner.ts');
const { runMain } = await import('./lib/core/errors.ts');
const { BTRBK_AWS_SUMMARY, ENTRY_POINTS } = await import('./lib/cli/entries/index.ts');
await runMain(() => runSuite(ENTRY_POINTS, BTRBK_AWS_SUMMARY, argsAfterScript(import.meta.url), 'btrbk-aws'));
