#!/usr/bin/env zx
// The transfer benchmark on the local target: npm run bench -- [--scale small|full] [--items ...] [--json] (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/data.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { BENCH } = await import('./lib/cli/entries/data.ts');
await main(BENCH, import.meta.url);
