#!/usr/bin/env zx
// The end-to-end proof (as root): sudo npx zx scripts/roundtrip.mjs [--env FILE] [--size-mb N] [--json] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/data.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { ROUNDTRIP }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/data.ts');
await main(ROUNDTRIP, import.meta.url);
