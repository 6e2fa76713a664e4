#!/usr/bin/env zx
// Backups that happen by themselves, on this machine: npx zx scripts/backup.mjs install|uninstall|run|status|list|restore|verify|ls|find|diff (--help)
// Its verbs and options are a table (scripts/lib/cli/entries/backup.ts) that one runner parses, explains (--help) and runs.
// the operator library is TypeScript: compiled once into .build/ and imported from there (scripts/load-library.mjs)
import { importLibrary } from './load-library.mjs';

const [{ main }, { BACKUP }] = await importLibrary('scripts/lib/cli/runner.ts', 'scripts/lib/cli/entries/backup.ts');
await main(BACKUP, import.meta.url);
