// `backup.mjs list`: this machine's backups on the target (through the gate), per subvolume, with their times; with
// --sizes, the data each holds. The host cannot say (a subvolume's own size needs btrfs quotas, which the host does
// not enable, and the user data has no room for another host program), but a backup is a receive of the local
// snapshot of the same name, byte for byte: its size is measured there (`btrfs filesystem du -s`, extent metadata
// only), for the backups whose snapshot this machine still keeps.
import fs from 'node:fs';
import path from 'node:path';
import { parseFilesystemDu } from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { run as runDefault, type Run } from '../core/process.js';
import { humanBytes } from '../core/units.js';
import type { Manifest } from './install.js';
import { targetFor } from './layout.js';
import { listingError } from './device-key.js';
import { datedFor, targetBackups } from './target.js';

export interface BackupListing {
  targetDir: string;
  /** `bytes` (with --sizes): the data the backup holds, measured on its local snapshot; null when there is none. */
  subvolumes: {
    name: string;
    backups: {
      name: string;
      path: string;
      time: string;
      bytes?: number | null;
      /** With --sizes, when bytes is null: why it could not be measured. */
      unmeasured?: string;
    }[];
  }[];
  /** Subvolumes a broken transfer left (no received UUID): not backups, never restored. */
  incomplete: string[];
  /** With --sizes: how many were measured, and why the others could not be. */
  sizes?: { measured: number; unmeasured: number; why: string | null };
}

/** The backup names below a target directory, grouped by subvolume name (the part before the timestamp). */
export function groupBackups(
  entries: { name: string; path: string; complete: boolean }[],
  only?: string,
): BackupListing['subvolumes'] {
  const bases = [
    ...new Set(entries.map((e) => /^(.*)\.\d{8}T\d{4}/.exec(e.name)?.[1]).filter((b): b is string => Boolean(b))),
  ].sort();
  return bases
    .filter((b) => !only || b === only)
    .map((b) => ({
      name: b,
      backups: datedFor(
        entries.filter((e) => e.complete),
        b,
      ).map((d) => ({ name: d.name, path: d.path, time: d.time.toISOString() })),
    }));
}

export async function listTargetBackups({
  conn,
  manifest,
  subvolume,
  device,
  sizes = false,
  run,
}: {
  conn: Connection;
  manifest: Manifest | null;
  subvolume?: string;
  /** --device: another device's backups (with a device's connection: that device's file and key). */
  device?: string;
  sizes?: boolean;
  run?: Run;
}): Promise<BackupListing> {
  const t = targetFor(conn, device, manifest);
  const targetDir = t.targetDir;
  const l = await targetBackups(conn, targetDir, { run });
  if (!l.reachable) throw await listingError(conn, t.device, l, { run, verb: 'list' });
  const listing: BackupListing = {
    targetDir,
    subvolumes: groupBackups(l.entries, subvolume ? path.posix.basename(subvolume) : undefined),
    incomplete: l.entries.filter((e) => !e.complete).map((e) => e.path),
  };
  if (!sizes) return listing;
  const sources = manifest && targetDir !== manifest.targetDir ? [] : (manifest?.sources ?? []);
  return {
    ...listing,
    ...(await sizeBackups(listing, sources, {
      run,
      why: sources.length
        ? null
        : "another machine's backups (or nothing installed here): no local snapshots to measure",
    })),
  };
}

/**
 * Sizes each backup on the local snapshot of the same name (one `btrfs filesystem du -s --raw` for all of them),
 * looked for in every snapshot directory the install knows (subvolumes often share one). A backup that cannot be
 * sized gets null and its own reason (`unmeasured`): no local snapshot of that name, du failing, or du giving no
 * figure for it; `why` sums them up.
 */
export async function sizeBackups(
  listing: BackupListing,
  sources: { subvolume: string; snapshotDir: string }[],
  { run = runDefault, why = null }: { run?: Run; why?: string | null } = {},
): Promise<Pick<BackupListing, 'subvolumes' | 'sizes'>> {
  const dirs = [...new Set(sources.map((s) => s.snapshotDir))];
  const twin = new Map<string, string>();
  const reason = new Map<string, string>();
  for (const s of listing.subvolumes) {
    const src = sources.find((x) => path.posix.basename(x.subvolume) === s.name);
    // its own snapshot directory first, then the others
    const look = src ? [src.snapshotDir, ...dirs.filter((d) => d !== src.snapshotDir)] : dirs;
    for (const b of s.backups) {
      const p = look.map((d) => path.join(d, b.name)).find((x) => fs.existsSync(x));
      if (p) twin.set(b.path, p);
      else if (why) reason.set(b.path, why);
      else
        reason.set(
          b.path,
          src
            ? `no local snapshot of that name in ${src.snapshotDir} (local retention keeps fewer than the host)`
            : `${s.name} is not protected by this install and no snapshot of that name is in ${dirs.join(', ') || 'a snapshot directory it knows'}`,
        );
    }
  }
  let total = new Map<string, number>();
  if (twin.size) {
    const r = await run('btrfs', ['filesystem', 'du', '-s', '--raw', ...twin.values()]);
    const parsed = parseFilesystemDu(r.stdout);
    total = new Map(parsed.map((d) => [d.path, d.total]));
    const failed =
      r.status !== 0 ? `btrfs filesystem du failed: ${(r.error?.message ?? r.stderr).trim().split('\n')[0]}` : null;
    for (const [backup, snap] of twin)
      if (!total.has(snap)) reason.set(backup, failed ?? 'btrfs filesystem du gave no figure for its local snapshot');
  }
  const subvolumes = listing.subvolumes.map((s) => ({
    ...s,
    backups: s.backups.map((b) => {
      const bytes = total.get(twin.get(b.path) ?? '') ?? null;
      return { ...b, bytes, ...(bytes === null ? { unmeasured: reason.get(b.path) ?? 'not measured' } : {}) };
    }),
  }));
  const all = subvolumes.flatMap((s) => s.backups);
  const measured = all.filter((b) => b.bytes !== null).length;
  // the reasons, each with how many it holds (most first)
  const counts = new Map<string, number>();
  for (const b of all) if (b.bytes === null) counts.set(b.unmeasured!, (counts.get(b.unmeasured!) ?? 0) + 1);
  const summary = [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([r, n]) => (counts.size > 1 ? `${n}: ${r}` : r))
    .join('; ');
  return {
    subvolumes,
    sizes: { measured, unmeasured: all.length - measured, why: measured < all.length ? summary : null },
  };
}

export function formatList(l: BackupListing): string {
  const lines = [`backups in ${l.targetDir} on the target:`];
  if (!l.subvolumes.length) lines.push('  none yet');
  for (const s of l.subvolumes) {
    lines.push(`  ${s.name}: ${s.backups.length} backup(s)`);
    for (const b of s.backups)
      lines.push(
        `    ${b.name}   ${b.time}${l.sizes ? `   ${b.bytes === null || b.bytes === undefined ? '-' : humanBytes(b.bytes)}` : ''}`,
      );
  }
  for (const i of l.incomplete) lines.push(`  incomplete (not a backup, never restored): ${i}`);
  if (l.sizes) {
    lines.push(
      `sizes: the data each backup holds, measured on the local snapshot it was sent from (btrfs filesystem du: file data in extents, not the few bytes of files small enough to sit in metadata; the host keeps no quotas)${l.sizes.unmeasured ? `; ${l.sizes.unmeasured} not measured (-): ${l.sizes.why}` : ''}`,
    );
  } else if (l.subvolumes.some((s) => s.backups.length)) {
    lines.push("sizes: --sizes measures them on the local snapshots (reads every file's extents: slow for many files)");
  }
  return lines.join('\n');
}
