#!/usr/bin/env zx
// One command from nothing to a verified backup target: npx zx scripts/setup.mjs [--target aws|local] [--yes] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/setup.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { SETUP } = await import('./lib/cli/entries/setup.ts');
await main(SETUP, import.meta.url);
