#!/usr/bin/env zx
// Checks what setup needs on this machine: npx zx scripts/prereqs.mjs [--target aws|local] [--json] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/checks.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { PREREQS } = await import('./lib/cli/entries/checks.ts');
await main(PREREQS, import.meta.url);
