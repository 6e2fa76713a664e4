// `backup.mjs list`: this machine's backups on the target (through the gate), per subvolume, with their times.
// Sizes are not shown: a subvolume's own size needs btrfs quotas, which the host does not enable.
import os from 'node:os';
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { Run } from '../core/process.js';
import type { Manifest } from './install.js';
import { machineName, targetDirFor } from './layout.js';
import { datedFor, targetBackups } from './target.js';

export interface BackupListing {
  targetDir: string;
  subvolumes: { name: string; backups: { name: string; path: string; time: string }[] }[];
  /** Subvolumes a broken transfer left (no received UUID): not backups, never restored. */
  incomplete: string[];
}

/** The backup names below a target directory, grouped by subvolume name (the part before the timestamp). */
export function groupBackups(entries: { name: string; path: string; complete: boolean }[], only?: string): BackupListing['subvolumes'] {
  const bases = [...new Set(entries.map((e) => /^(.*)\.\d{8}T\d{4}/.exec(e.name)?.[1]).filter((b): b is string => Boolean(b)))].sort();
  return bases
    .filter((b) => !only || b === only)
    .map((b) => ({ name: b, backups: datedFor(entries.filter((e) => e.complete), b).map((d) => ({ name: d.name, path: d.path, time: d.time.toISOString() })) }));
}

export async function listTargetBackups({ conn, manifest, subvolume, machine, run }: { conn: Connection; manifest: Manifest | null; subvolume?: string; machine?: string; run?: Run }): Promise<BackupListing> {
  const targetDir = machine || !manifest ? targetDirFor(conn.BTRBK_AWS_PATH, machine ?? machineName(os.hostname())) : manifest.targetDir;
  const l = await targetBackups(conn, targetDir, { run });
  if (!l.reachable) throw new OperatorError('cannot list the backups on the target', { cause: l.reason, next: 'npx zx scripts/troubleshoot.mjs check-ssh' });
  return {
    targetDir,
    subvolumes: groupBackups(l.entries, subvolume ? path.posix.basename(subvolume) : undefined),
    incomplete: l.entries.filter((e) => !e.complete).map((e) => e.path),
  };
}

export function formatList(l: BackupListing): string {
  const lines = [`backups in ${l.targetDir} on the target:`];
  if (!l.subvolumes.length) lines.push('  none yet');
  for (const s of l.subvolumes) {
    lines.push(`  ${s.name}: ${s.backups.length} backup(s)`);
    for (const b of s.backups) lines.push(`    ${b.name}   ${b.time}`);
  }
  for (const i of l.incomplete) lines.push(`  incomplete (not a backup, never restored): ${i}`);
  return lines.join('\n');
}
