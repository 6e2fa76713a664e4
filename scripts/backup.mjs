#!/usr/bin/env zx
// Backups that happen by themselves, on this machine: npx zx scripts/backup.mjs install|uninstall|run|status|list|restore|verify|ls|find|diff (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/backup.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./lib/cli/runner.ts');
const { BACKUP } = await import('./lib/cli/entries/backup.ts');
await main(BACKUP, import.meta.url);
