#!/usr/bin/env zx
// Diagnoses the backup target: npx zx scripts/troubleshoot.mjs check-ssh|check-volume|check-aws|check-logs|check-all [--env FILE] [--json]
// Its verbs and options are a table (scripts/lib/cli/entries/checks.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { TROUBLESHOOT } = await import('./lib/cli/entries/checks.ts');
await main(TROUBLESHOOT, import.meta.url);
