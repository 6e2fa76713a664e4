// Restore and backup hygiene through the SSH gate, with the backup key only (docs/RESTORE.md):
//   - listBackups / findIncompleteBackups: the subvolumes under a backup directory, and those a broken transfer
//     left behind (btrfs has no resume: a receive that did not finish leaves a writable subvolume without a
//     received UUID; it is not a backup and must not be mistaken for one);
//   - restoreBackup: btrfs send on the target | btrfs receive here, checked (read-only, received UUID set);
//   - makeLive: a writable snapshot of the restored one, the subvolume a person then works in. Its later
//     snapshots share the restored one's history, so the next backup is incremental, not a full resend.
import fs from 'node:fs';
import path from 'node:path';
import { parseSubvolumeListR, type BackupEntry, type SubvolumeInfo } from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { RunResult } from '../core/process.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { runRemote as runRemoteDefault, sshArgs } from '../remote/ssh.js';
import { runPipeline, type PipelineProgress } from '../remote/transfer.js';
import { which } from '../deploy/engine.js';
import { deleteSubvolumes, snapshotWritable, subvolumeInfo } from './btrfs-scratch.js';

/** Runs one command on the target through the gate (ssh.ts runRemote; tests pass a fake). */
export type RemoteRun = (conn: Connection, command: string) => Promise<RunResult>;

export interface RemoteRunOptions {
  runRemote?: RemoteRun;
}

/** The subvolumes directly below `dir` on the target (through the gate). */
export async function listBackups(
  conn: Connection,
  dir: string,
  { runRemote = runRemoteDefault }: RemoteRunOptions = {},
): Promise<BackupEntry[]> {
  const r = await runRemote(conn, gateLine(GATE_COMMANDS.subvolumeListBelow(dir)));
  if (r.status !== 0) {
    throw new OperatorError(`cannot list the backups in ${dir} on the target`, {
      details: r.stderr,
      cause: /rejected:/.test(r.stderr)
        ? 'the SSH gate refused the command'
        : 'the directory does not exist, or SSH failed',
      next: 'npx zx scripts/troubleshoot.mjs check-volume',
    });
  }
  return parseSubvolumeListR(r.stdout).filter((b) => path.posix.dirname(b.path) === dir.replace(/\/+$/, ''));
}

/**
 * Backups a broken transfer left half-received (no received UUID). Not to be trusted or restored; `btrbk clean`
 * (or deleteIncompleteBackups) removes them. Do not call while a backup into `dir` is running: a receive in
 * progress looks the same.
 */
export async function findIncompleteBackups(
  conn: Connection,
  dir: string,
  opts: RemoteRunOptions = {},
): Promise<BackupEntry[]> {
  return (await listBackups(conn, dir, opts)).filter((b) => !b.complete);
}

/** Deletes the incomplete backups below dir (through the gate); returns their paths. */
export async function deleteIncompleteBackups(
  conn: Connection,
  dir: string,
  { runRemote = runRemoteDefault }: RemoteRunOptions = {},
): Promise<string[]> {
  const bad = await findIncompleteBackups(conn, dir, { runRemote });
  for (const b of bad) {
    const r = await runRemote(conn, gateLine(GATE_COMMANDS.subvolumeDelete(b.path, { commitAfter: true })));
    if (r.status !== 0)
      throw new OperatorError(`cannot delete the incomplete backup ${b.path}`, {
        details: r.stderr,
        next: 'btrbk clean, or delete it by hand on the host',
      });
  }
  return bad.map((b) => b.path);
}

export interface RestoreOptions {
  /** A backup already restored here, to send incrementally against (btrfs send -p). */
  parent?: string | null;
  onProgress?: (p: PipelineProgress) => void;
  /** The expected stream size, for the progress ETA. */
  total?: number | null;
  /**
   * Compression on the wire, as a backup has it (btrbk.conf's stream_compress zstd, level 1): the host compresses
   * (`btrfs send | zstd -c -1`), this machine decompresses before btrfs receive. Default zstd when zstd is installed
   * here, else none.
   */
  compress?: 'zstd' | null;
}

/** A restored backup: the local subvolume and what its transfer took. */
export interface RestoredBackup {
  path: string;
  /** The stream's bytes (what btrfs receive read). */
  bytes: number;
  /** The bytes that came over ssh: compressed with `compress`, else the stream's. */
  wireBytes: number;
  compress: 'zstd' | null;
  durationMs: number;
  receivedUuid: string;
}

/**
 * Restores one backup: ssh (gate) `sudo -n btrfs send BACKUP` | btrfs receive LOCAL_DIR. The received subvolume
 * is checked (read-only, with a received UUID); a broken one is deleted and the error explains it.
 */
export async function restoreBackup(
  conn: Connection,
  backupPath: string,
  localDir: string,
  { parent = null, onProgress, total = null, compress = which('zstd') ? 'zstd' : null }: RestoreOptions = {},
): Promise<RestoredBackup> {
  const name = path.posix.basename(backupPath);
  const dest = path.join(localDir, name);
  if (fs.existsSync(dest)) {
    throw new OperatorError(`${dest} already exists`, {
      cause: 'restored before, or a name clash',
      next: 'restore into another directory, or delete that subvolume first',
    });
  }
  const send = gateLine(GATE_COMMANDS.send(backupPath, { parent, compress: compress === 'zstd', level: 1 }));
  let result;
  try {
    result = await runPipeline(
      [
        { label: 'ssh (btrfs send on the target)', cmd: 'ssh', args: [...sshArgs(conn), send] },
        ...(compress ? [{ label: 'zstd -d (decompress)', cmd: 'zstd', args: ['-d', '-c', '-q'] }] : []),
        { label: 'btrfs receive', cmd: 'btrfs', args: ['receive', localDir] },
      ],
      { onProgress, total },
    );
  } catch (err) {
    if (fs.existsSync(dest)) await deleteSubvolumes([dest]).catch(() => {});
    throw err;
  }
  const info = await subvolumeInfo(dest);
  if (!info.readonly || !info.receivedUuid || info.receivedUuid === '-') {
    await deleteSubvolumes([dest]).catch(() => {});
    throw new OperatorError(`the restored ${name} is incomplete and was deleted`, {
      cause: 'the stream ended early',
      next: 'run the restore again',
    });
  }
  return {
    path: dest,
    bytes: result.bytes,
    wireBytes: result.links[0].bytes,
    compress,
    durationMs: result.durationMs,
    receivedUuid: info.receivedUuid,
  };
}

/**
 * Makes a restored (read-only) snapshot the live, writable subvolume at `livePath`. Refuses to replace
 * anything: a person's data at livePath is never touched.
 */
export async function makeLive(restoredSnapshot: string, livePath: string): Promise<SubvolumeInfo> {
  if (fs.existsSync(livePath)) {
    throw new OperatorError(`${livePath} already exists; not replacing it`, {
      cause: 'there is a subvolume or directory with data at that path',
      next: `move it aside first (mv ${livePath} ${livePath}.old), then run this again`,
    });
  }
  await snapshotWritable(restoredSnapshot, livePath);
  return subvolumeInfo(livePath);
}
