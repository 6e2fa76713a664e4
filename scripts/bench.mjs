#!/usr/bin/env zx
// The transfer benchmark on the local target: npm run bench -- [--scale small|full] [--items ...] [--json] (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/data.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { BENCH }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/data.ts');
await main(BENCH, import.meta.url);
