#!/usr/bin/env zx
// The local target and the laptop container: npx zx scripts/local-target.mjs up|down|status|limits|instance-types, laptop up|down|status|exec|network|demo
// Its verbs and options are a table (scripts/lib/cli/entries/local-target.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { LOCAL_TARGET } = await import('./lib/cli/entries/local-target.ts');
await main(LOCAL_TARGET, import.meta.url);
