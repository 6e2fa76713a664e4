// The backups of this machine on the target, asked through the gate with the backup key (data/restore.ts
// listBackups), told apart: reachable with backups, reachable with none yet, or not reachable (and why).
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { RunResult, Run } from '../core/process.js';
import { listBackups } from '../data/restore.js';
import { runRemote } from '../remote/ssh.js';
import { parseSnapshotName } from './layout.js';
import { scriptCommand } from './system.js';

/** A snapshot here or a backup there, by name and the time its name says. */
export interface Dated {
  name: string;
  path: string;
  time: Date;
  timestamp: string;
}

/** The dated entries of one subvolume (by its basename) among names, oldest first. */
export function datedFor(names: { name: string; path: string }[], basename: string): Dated[] {
  const out: Dated[] = [];
  for (const n of names) {
    const p = parseSnapshotName(n.name, basename);
    if (p) out.push({ name: n.name, path: n.path, time: p.time, timestamp: p.timestamp });
  }
  return out.sort((a, b) => a.time.getTime() - b.time.getTime() || a.name.localeCompare(b.name));
}

/** Why ssh failed, in a person's words, from its exit status and stderr; `where` (user@host port N) names the target. */
export function sshFailureReason(r: RunResult, where?: string): string {
  const text = (r.error?.message ?? r.stderr).trim();
  const last = text.split('\n').filter(Boolean).slice(-1)[0] ?? '';
  const check = scriptCommand('troubleshoot.mjs', 'check-ssh', { root: false });
  const at = where ? ` at ${where}` : '';
  if (r.status === null && !r.error)
    return `the target${at} did not answer in time (a timeout: the host stopped, or a firewall drops the packets): ${check}`;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION/i.test(text))
    return `the host key is not the pinned one (${last}): ${check}; if setup (or local-target up) pinned a new key after a replacement, run backup.mjs install again to copy it`;
  if (/Connection refused/i.test(text))
    return `the target${at} refused the connection (${last}): nothing listens there; is the host running? ${check}`;
  if (/timed out/i.test(text))
    return `the target${at} did not answer (${last}): the host is stopped, or a firewall drops the packets; check the network, then ${check}`;
  if (/No route|unreachable|Could not resolve/i.test(text))
    return `the target${at} is not reachable (${last}): check the network (and the address), then ${check}`;
  if (/Permission denied/i.test(text)) return `the target refused the backup key (${last})`;
  return `ssh failed (exit ${r.status}): ${last}`;
}

/** The complete backups in `dir` on the target (every subvolume), or why the target could not be asked. */
export async function targetBackups(
  conn: Connection,
  dir: string,
  { run }: { run?: Run } = {},
): Promise<
  | { reachable: true; entries: { name: string; path: string; complete: boolean }[] }
  | { reachable: false; reason: string; refused: boolean }
> {
  let last: RunResult | null = null;
  const rr = async (c: Connection, cmd: string): Promise<RunResult> =>
    (last = await runRemote(c, cmd, { timeoutMs: 60000, ...(run ? { run } : {}) }));
  try {
    const list = await listBackups(conn, dir, { runRemote: rr });
    return {
      reachable: true,
      entries: list.map((b) => ({ name: path.posix.basename(b.path), path: b.path, complete: b.complete })),
    };
  } catch (err) {
    const r = last as RunResult | null;
    if (!r) throw err;
    if (r.status === 255 || r.status === null || r.error) {
      if (/rejected:/.test(r.stderr))
        return { reachable: false, reason: `the SSH gate refused the listing: ${r.stderr.trim()}`, refused: true };
      const reason = sshFailureReason(r);
      return { reachable: false, reason, refused: /Permission denied/i.test(r.error?.message ?? r.stderr) };
    }
    // the gate ran btrfs: the directory is not there yet (install makes it; nothing was ever sent)
    if (/No such file|cannot access|can't access|not found/i.test(r.stderr)) return { reachable: true, entries: [] };
    if (err instanceof OperatorError)
      return { reachable: false, reason: `${err.what}: ${r.stderr.trim()}`, refused: /rejected:/.test(r.stderr) };
    throw err;
  }
}

/** The local snapshots of a subvolume in its snapshot directory, oldest first. */
export function localSnapshots(snapshotDir: string, basename: string): Dated[] {
  if (!fs.existsSync(snapshotDir)) return [];
  return datedFor(
    fs.readdirSync(snapshotDir).map((name) => ({ name, path: path.join(snapshotDir, name) })),
    basename,
  );
}
