#!/usr/bin/env zx
// One command from nothing to a verified backup target: npx zx scripts/setup.mjs [--target aws|local] [--yes] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/setup.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { SETUP }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/setup.ts');
await main(SETUP, import.meta.url);
