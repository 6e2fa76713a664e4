// Every entry point's table, in the order `btrbk-aws --help` lists them.
import type { EntryPoint } from '../command.js';
import { BACKUP } from './backup.js';
import { PREREQS, TROUBLESHOOT } from './checks.js';
import { BENCH, ROUNDTRIP } from './data.js';
import { LOCAL_TARGET } from './local-target.js';
import { SETUP } from './setup.js';

export const ENTRY_POINTS: readonly EntryPoint[] = [
  SETUP,
  PREREQS,
  TROUBLESHOOT,
  ROUNDTRIP,
  BENCH,
  LOCAL_TARGET,
  BACKUP,
];

/** What `btrbk-aws --help` says above the list of entry points. */
export const BTRBK_AWS_SUMMARY =
  'btrfs backups to a cloud target you own: deploy it (setup), check and diagnose it (prereqs, troubleshoot), prove it (roundtrip), measure it (bench), run one on this machine (local-target), and back up to it (backup)';
