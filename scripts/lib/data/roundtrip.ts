// The end-to-end proof: varied data in a btrfs subvolume on this machine, sent full and then incrementally to
// the backup host through SSH and the gate, received back onto a second filesystem (a stand-in for a new
// laptop), and verified file by file: content (sha256) and metadata (mode, owner, mtime, symlink target,
// hard-link identity, sparseness, xattrs). Every step is a named pass/fail result; local and remote
// subvolumes are removed at the end, also when a step failed (unless --keep).
//
// Remote commands come from the gate's command table (remote/gate-commands.ts): exactly the form a btrbk 0.32
// client with backend btrfs-progs-sudo sends, paths quoted like btrbk's quoteshell(), so the gate accepts them.
// The test data comes from dataset.ts, the verification from manifest.ts.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { createScratchBtrfs, createSubvolume, snapshotReadOnly, subvolumeInfo } from './btrfs-scratch.js';
import { changeDataset, makeDataset } from './dataset.js';
import { compareManifests, describeDiffs, manifest, manifestSummary, splitDiffs, type Manifest } from './manifest.js';
import { parseSubvolumeShow } from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { SELFTEST_DIR_NAME } from '../../../user-data/host-layout.js';
import { runChecked, runSync } from '../core/process.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { runRemote, sshArgs, sshParams } from '../remote/ssh.js';
import { runPipeline, type PipelineProgress, type PipelineStage } from '../remote/transfer.js';
import { MiB } from '../core/units.js';

/** Compression on the wire: zstd on both ends of the SSH link, or none. */
export type Compression = 'zstd' | null;

/** The directory under the backup root that round trips receive into (created with mkdir -p, kept). */
export const REMOTE_DIR_NAME = `${SELFTEST_DIR_NAME}/roundtrip-test`;

/** The lines the round trip sends through the gate, written from its command table (paths quoted as btrbk does). */
export const REMOTE = Object.freeze({
  mkdir: (dir: string) => gateLine(GATE_COMMANDS.mkdir(dir)),
  receive: (dir: string, compress?: Compression) => gateLine(GATE_COMMANDS.receive(dir, { decompress: !!compress })),
  send: (src: string, parent?: string | null, compress?: Compression) =>
    gateLine(GATE_COMMANDS.send(src, { parent, compress: !!compress })),
  show: (p: string) => gateLine(GATE_COMMANDS.subvolumeShow(p)),
  delete: (p: string) => gateLine(GATE_COMMANDS.subvolumeDelete(p)),
});

// ------------------------------------------------------------------------------------------- local commands

/** True when `dir` is on btrfs. */
export function isBtrfs(dir: string): boolean {
  const r = runSync('stat', ['-f', '-c', '%T', dir]);
  return r.status === 0 && r.stdout.trim() === 'btrfs';
}

// --------------------------------------------------------------------------------------------- the round trip

/** One step of the round trip, passed or failed (a failed one carries its cause and the next thing to try). */
export interface Step {
  name: string;
  ok: boolean;
  detail: string;
  cause: string;
  next: string;
  ms: number;
}

/** One btrfs send stream and what it took: stream bytes are btrfs's, wire bytes what went over SSH. */
export interface Transfer {
  name: string;
  /** push: to the target; pull: back from it. */
  direction: 'push' | 'pull';
  streamBytes: number;
  wireBytes: number;
  durationMs: number;
  /** Stream bytes per second. */
  rate: number;
}

/** What runRoundtrip reports while it runs (the entry point prints these). */
export type RoundtripEvent =
  | { type: 'start'; runId: string; remoteDir: string; snapshots: string[] }
  | { type: 'step'; step: Step; error?: unknown }
  | ({ type: 'progress'; transfer: string } & PipelineProgress)
  | { type: 'transfer'; transfer: Transfer }
  | { type: 'kept'; local: string[]; remote: string[] };

export interface RoundtripOptions {
  /** Roughly the MiB of test data (default 64). */
  sizeMb?: number;
  /** Leave the local and remote subvolumes in place (default false). */
  keep?: boolean;
  /** An existing btrfs directory to work in instead of two scratch filesystems. */
  sourceDir?: string | null;
  compress?: Compression;
  /** Parent of the scratch filesystems' temp directories (default os.tmpdir()). */
  workDir?: string;
  onEvent?: (e: RoundtripEvent) => void;
}

export interface RoundtripResult {
  runId: string;
  /** The directory on the target the snapshots were received into. */
  remoteDir: string;
  steps: Step[];
  transfers: Transfer[];
  /** Incremental / full bytes on the wire, when both sends ran. */
  ratio: number | null;
  passed: number;
  failed: number;
  ok: boolean;
}

/** An error's message, or the thrown value as text. */
const messageOf = (err: unknown): string =>
  String((typeof err === 'object' && err !== null && 'message' in err ? err.message : undefined) ?? err);

/** Runs the whole round trip. Never throws for a failed step: every step becomes a result, and cleanup runs. */
export async function runRoundtrip(conn: Connection, opts: RoundtripOptions = {}): Promise<RoundtripResult> {
  const {
    sizeMb = 64,
    keep = false,
    sourceDir = null,
    compress = null,
    workDir = os.tmpdir(),
    onEvent = () => {},
  } = opts;
  const steps: Step[] = [];
  const transfers: Transfer[] = [];
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '')}-${randomBytes(3).toString('hex')}`;
  const { backupRoot } = sshParams(conn);
  const remoteDir = `${backupRoot}/${REMOTE_DIR_NAME}`;
  const snapName = (n: number) => `roundtrip.${runId}.${n}`;
  const remotePath = (n: number) => `${remoteDir}/${snapName(n)}`;
  const cleanups: (() => unknown)[] = [];
  const remoteCreated: string[] = [];

  const step = async (name: string, fn: () => string | Promise<string>): Promise<boolean> => {
    const t0 = Date.now();
    try {
      const detail = (await fn()) ?? '';
      const r: Step = { name, ok: true, detail, cause: '', next: '', ms: Date.now() - t0 };
      steps.push(r);
      onEvent({ type: 'step', step: r });
      return true;
    } catch (err) {
      const op = err instanceof OperatorError;
      const r: Step = {
        name,
        ok: false,
        detail: op && err.details ? err.details : '',
        cause: op ? `${err.what}${err.likelyCause ? `: ${err.likelyCause}` : ''}` : messageOf(err),
        next: op ? err.next : 're-run with BTRBK_AWS_DEBUG=1 and report it as a bug',
        ms: Date.now() - t0,
      };
      steps.push(r);
      onEvent({ type: 'step', step: r, error: err });
      return false;
    }
  };

  const remote = async (command: string, what: string) => {
    const r = await runRemote(conn, command);
    if (r.status !== 0) {
      throw new OperatorError(`${what} failed on the backup host (exit ${r.status ?? 128})`, {
        details: `command: ${command}`,
        cause: r.stderr.trim() || 'no error text',
        next: /rejected:/.test(r.stderr)
          ? 'the gate refused it: see docs/SSH-GATE.md; run troubleshoot check-ssh'
          : 'run `npx zx scripts/troubleshoot.mjs check-all`',
      });
    }
    return r.stdout;
  };

  const transfer = async (
    name: string,
    direction: Transfer['direction'],
    stages: PipelineStage[],
    total: number | null,
  ) => {
    const res = await runPipeline(stages, {
      total,
      progressLink: 0,
      onProgress: (p) => onEvent({ type: 'progress', transfer: name, ...p }),
    });
    // push: btrfs send → [zstd] → ssh; pull: ssh → [zstd -d] → btrfs receive
    const first = res.links[0];
    const last = res.links[res.links.length - 1];
    const raw = direction === 'push' ? first.bytes : last.bytes;
    const wire = direction === 'push' ? last.bytes : first.bytes;
    const t: Transfer = {
      name,
      direction,
      streamBytes: raw,
      wireBytes: wire,
      durationMs: res.durationMs,
      rate: res.durationMs ? (raw * 1000) / res.durationMs : 0,
    };
    transfers.push(t);
    onEvent({ type: 'transfer', transfer: t });
    return t;
  };

  let src = ''; // directory holding the live subvolume and its snapshots ('' until the first step made it)
  let dst = ''; // directory receiving the restore
  let dataBytes = 0;
  let changedBytes = 0;
  const manifests: Record<number, Manifest> = {};
  const ssh: [string, string[]] = ['ssh', sshArgs(conn)];
  const pushStages = (snap: string, parent?: string): PipelineStage[] => [
    { label: 'btrfs send', cmd: 'btrfs', args: ['send', ...(parent ? ['-p', parent] : []), snap] },
    ...(compress ? [{ label: 'zstd', cmd: 'zstd', args: ['-c', '-q', '-T0'] }] : []),
    { label: 'ssh → btrfs receive', cmd: ssh[0], args: [...ssh[1], REMOTE.receive(remoteDir, compress)] },
  ];
  const pullStages = (n: number, parentN?: number): PipelineStage[] => [
    {
      label: 'ssh → btrfs send',
      cmd: ssh[0],
      args: [...ssh[1], REMOTE.send(remotePath(n), parentN ? remotePath(parentN) : null, compress)],
    },
    ...(compress ? [{ label: 'zstd -d', cmd: 'zstd', args: ['-d', '-c', '-q'] }] : []),
    { label: 'btrfs receive', cmd: 'btrfs', args: ['receive', dst] },
  ];

  onEvent({ type: 'start', runId, remoteDir, snapshots: [remotePath(1), remotePath(2)] });
  try {
    const okLocal = await step(
      sourceDir ? `source directory ${sourceDir} is btrfs` : 'scratch btrfs filesystems on loop devices',
      async () => {
        if (typeof process.geteuid === 'function' && process.geteuid() !== 0) {
          throw new OperatorError('the round trip needs root on this machine', {
            cause: 'it creates btrfs subvolumes, mounts loop devices and runs btrfs receive',
            next: 'run it with sudo: sudo npx zx scripts/roundtrip.mjs',
          });
        }
        if (sourceDir) {
          if (!isBtrfs(sourceDir))
            throw new OperatorError(`${sourceDir} is not on btrfs`, {
              next: 'pass a directory on a btrfs filesystem, or leave out --source-dir to use a scratch filesystem',
            });
          src = path.join(sourceDir, `btrbk-roundtrip.${runId}`);
          fs.mkdirSync(src);
          cleanups.push(() => fs.rmSync(src, { recursive: true, force: true }));
          dst = path.join(src, 'restore');
          fs.mkdirSync(dst);
          return `${src} (restore into ${dst})`;
        }
        const sizeMiB = Math.max(1024, sizeMb * 12);
        const a = await createScratchBtrfs({ sizeMiB, label: 'rt-source', parentDir: workDir });
        cleanups.push(() => a.destroy());
        const b = await createScratchBtrfs({ sizeMiB, label: 'rt-restore', parentDir: workDir });
        cleanups.push(() => b.destroy());
        src = a.mountpoint;
        dst = b.mountpoint;
        return `source ${a.mountpoint}, restore ${b.mountpoint} (sparse ${sizeMiB} MiB images)`;
      },
    );
    if (!okLocal) return finish();

    const live = () => path.join(src, 'data');
    const localSnap = (n: number) => path.join(src, snapName(n));
    const restored = (n: number) => path.join(dst, snapName(n));
    const localSubvols = [restored(2), restored(1), localSnap(2), localSnap(1), live()];
    cleanups.push(async () => {
      for (const s of localSubvols)
        if (fs.existsSync(s)) await runChecked('btrfs', ['subvolume', 'delete', s], { check: false });
    });

    let ok =
      (await step('test subvolume with varied data', async () => {
        await createSubvolume(live());
        const d = await makeDataset(live(), { sizeMb });
        dataBytes = d.bytes;
        return `${d.files} files, ${(d.bytes / MiB).toFixed(1)} MiB of data (a large file, many small files, a sparse file, symlinks, hard links, xattrs, modes, owners, mtimes)`;
      })) &&
      (await step('read-only snapshot 1', async () => {
        await snapshotReadOnly(live(), localSnap(1));
        manifests[1] = manifest(localSnap(1));
        return snapName(1);
      })) &&
      (await step(`remote directory ${remoteDir} (mkdir -p through the gate)`, async () => {
        await remote(REMOTE.mkdir(remoteDir), 'mkdir -p');
        return '';
      }));

    const fmt = (t: Transfer) =>
      `${(t.streamBytes / MiB).toFixed(2)} MiB stream, ${(t.wireBytes / MiB).toFixed(2)} MiB on the wire, ${(t.rate / MiB).toFixed(1)} MiB/s`;
    ok =
      ok &&
      (await step('full send to the target', async () => {
        remoteCreated.push(remotePath(1));
        return fmt(await transfer('full send', 'push', pushStages(localSnap(1)), dataBytes));
      }));
    ok =
      ok &&
      (await step('change the data, read-only snapshot 2', async () => {
        const n = await changeDataset(live());
        changedBytes = n;
        await snapshotReadOnly(live(), localSnap(2));
        manifests[2] = manifest(localSnap(2));
        return `${(n / MiB).toFixed(1)} MiB new data, renames, deletes, mode/xattr/symlink/hard-link changes`;
      }));
    ok =
      ok &&
      (await step('incremental send to the target (-p snapshot 1)', async () => {
        remoteCreated.push(remotePath(2));
        return fmt(await transfer('incremental send', 'push', pushStages(localSnap(2), localSnap(1)), null));
      }));
    ok =
      ok &&
      (await step('target holds both snapshots read-only, received from the originals', async () => {
        for (const n of [1, 2]) {
          const t = parseSubvolumeShow(await remote(REMOTE.show(remotePath(n)), 'btrfs subvolume show'));
          const l = await subvolumeInfo(localSnap(n));
          if (!t.readonly)
            throw new OperatorError(`${remotePath(n)} is not read-only on the target`, {
              next: 'a received snapshot should be read-only; report this as a bug',
            });
          if (t.receivedUuid !== l.uuid)
            throw new OperatorError(`${remotePath(n)} has received UUID ${t.receivedUuid}, expected ${l.uuid}`, {
              next: 'the receive did not complete; delete it and run again',
            });
        }
        return 'received UUIDs match, readonly';
      }));
    ok =
      ok &&
      (await step('full receive back from the target', async () =>
        fmt(await transfer('full receive', 'pull', pullStages(1), null)),
      ));
    ok =
      ok &&
      (await step('incremental receive back from the target (-p snapshot 1)', async () =>
        fmt(await transfer('incremental receive', 'pull', pullStages(2, 1), null)),
      ));

    if (ok) {
      for (const n of [1, 2]) {
        const m = manifest(restored(n));
        const { content, metadata } = splitDiffs(compareManifests(manifests[n], m));
        const s = manifestSummary(manifests[n]);
        await step(`snapshot ${n} restored: content identical (sha256 of ${s.files} files)`, () => {
          if (content.length)
            throw new OperatorError(`${content.length} content difference(s)`, {
              cause: describeDiffs(content),
              next: 'the data did not survive the round trip: do not trust this target until this is explained; run troubleshoot check-volume',
            });
          return '';
        });
        await step(`snapshot ${n} restored: metadata identical`, () => {
          if (metadata.length)
            throw new OperatorError(`${metadata.length} metadata difference(s)`, {
              cause: describeDiffs(metadata),
              next: 'report this with the output of --json',
            });
          return `modes, owners, mtimes, ${s.symlinks} symlinks, ${s.hardlinked} hard-linked names, ${s.xattrs} xattrs, ${s.sparse} sparse file(s) still sparse`;
        });
      }
      const full = transfers.find((t) => t.name === 'full send');
      const incr = transfers.find((t) => t.name === 'incremental send');
      await step('incremental send carries only the change', () => {
        if (!full || !incr) throw new Error('no full or incremental send was recorded');
        // the parent was used when the incremental stream is about the size of what changed, not of everything
        const limit = changedBytes * 1.25 + MiB;
        if (incr.streamBytes > limit || incr.streamBytes >= full.streamBytes) {
          throw new OperatorError(
            `the incremental send was ${(incr.streamBytes / MiB).toFixed(2)} MiB for ${(changedBytes / MiB).toFixed(2)} MiB changed (full: ${(full.streamBytes / MiB).toFixed(2)} MiB)`,
            {
              cause:
                'the parent snapshot was not used (btrfs send -p), or far more changed than the round trip changed',
              next: 'report this with the output of --json',
            },
          );
        }
        return `${(incr.streamBytes / MiB).toFixed(2)} MiB for ${(changedBytes / MiB).toFixed(2)} MiB changed; incremental/full ratio ${(incr.wireBytes / full.wireBytes).toFixed(3)}`;
      });
    }
  } finally {
    if (!keep) {
      if (remoteCreated.length) {
        await step('remove the round trip’s snapshots from the target', async () => {
          const errs: string[] = [];
          for (const p of [...remoteCreated].reverse()) {
            const r = await runRemote(conn, REMOTE.delete(p));
            if (r.status !== 0 && !/No such file|does not exist|not a subvolume|cannot find/i.test(r.stderr))
              errs.push(`${p}: ${r.stderr.trim()}`);
          }
          if (errs.length)
            throw new OperatorError('some snapshots could not be deleted on the target', {
              cause: errs.join('; '),
              next: `delete them with: ssh … '${gateLine(GATE_COMMANDS.subvolumeDelete('PATH'))}' (${REMOTE_DIR_NAME} under the backup root)`,
            });
          return `${remoteCreated.length} deleted`;
        });
      }
      await step('remove local subvolumes and scratch filesystems', async () => {
        for (const c of cleanups.reverse()) await c();
        return '';
      });
    } else {
      onEvent({ type: 'kept', local: src ? [src, dst] : [], remote: remoteCreated });
    }
  }
  return finish();

  function finish(): RoundtripResult {
    const full = transfers.find((t) => t.name === 'full send');
    const incr = transfers.find((t) => t.name === 'incremental send');
    const passed = steps.filter((s) => s.ok).length;
    const failed = steps.length - passed;
    return {
      runId,
      remoteDir,
      steps,
      transfers,
      ratio: full && incr ? incr.wireBytes / full.wireBytes : null,
      passed,
      failed,
      ok: failed === 0,
    };
  }
}
