#!/usr/bin/env zx
// Diagnoses the backup target: npx zx scripts/troubleshoot.mjs check-ssh|check-volume|check-aws|check-logs|check-all [--env FILE] [--json]
// Its verbs and options are a table (scripts/lib/cli/entries/checks.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { TROUBLESHOOT }] = await importLibrary(
  'scripts/lib/cli/runner.ts',
  'scripts/lib/cli/entries/checks.ts',
);
await main(TROUBLESHOOT, import.meta.url);
