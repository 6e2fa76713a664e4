#!/usr/bin/env zx
// The end-to-end proof (as root): sudo npx zx scripts/roundtrip.mjs [--env FILE] [--size-mb N] [--json] ... (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/data.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { ROUNDTRIP } = await import('./lib/cli/entries/data.ts');
await main(ROUNDTRIP, import.meta.url);
