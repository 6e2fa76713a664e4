#!/usr/bin/env zx
// Checks what setup needs on this machine: npx zx scripts/prereqs.mjs [--target aws|local] [--json] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/checks.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { PREREQS }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/checks.ts');
await main(PREREQS, import.meta.url);
