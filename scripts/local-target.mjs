#!/usr/bin/env zx
// The local target and the laptop container: npx zx scripts/local-target.mjs up|down|status|limits|instance-types, laptop up|down|status|exec|network|demo
// Its verbs and options are a table (scripts/lib/cli/entries/local-target.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { LOCAL_TARGET }] = await importLibrary(
  'scripts/lib/cli/runner.ts',
  'scripts/lib/cli/entries/local-target.ts',
);
await main(LOCAL_TARGET, import.meta.url);
