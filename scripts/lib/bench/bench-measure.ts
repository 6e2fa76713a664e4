// The benchmark's measurements (scripts/bench.mjs). They need root, btrfs on this machine and the local target;
// the figures, maths and formatting they produce are in bench.ts.
//
// What is compared with what (docs/PERFORMANCE.md explains each):
//   - "gate": the product path, btrfs send | ssh btrbk@target (forced command: the SSH gate) sudo btrfs receive;
//   - "plain ssh": the same sshd, a bench-only user WITHOUT a forced command that may run `sudo btrfs` (and
//     rsync): created for the run through the local target's root helper and removed afterwards. The product's
//     users, keys and sudoers are not touched; this user never exists on an AWS host (the bench refuses
//     anything but the local target);
//   - "local": btrfs send | btrfs receive into a second scratch btrfs on this machine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseUsage } from '../core/btrfs-output.js';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { MOUNT_POINT, SELFTEST_DIR_NAME } from '../../../user-data/host-layout.js';
import { run, runChecked, type RunResult } from '../core/process.js';
import { shellWord } from '../../../user-data/shell.js';
import { kernelThreadCpuSeconds, selfAndChildrenCpuSeconds, systemBusySeconds } from '../local-target/limits.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { runRemote, sshArgs } from '../remote/ssh.js';
import { runPipeline, type PipelineStage, type ProgressSnapshot } from '../remote/transfer.js';
import {
  createScratchBtrfs,
  createSubvolume,
  deleteSubvolumes,
  snapshotReadOnly,
  syncFs,
  type ScratchBtrfs,
} from '../data/btrfs-scratch.js';
import {
  ITEMS,
  SCALES,
  type BenchItem,
  limitsBasis,
  limitsFigures,
  limitsRow,
  type LimitsCandidate,
  type LimitsRow,
  type LimitsSample,
  changeTree,
  targetSpaceNeededMiB,
  figure,
  machineInfo,
  median,
  overwriteSpread,
  readTree,
  writeCompressibleFile,
  writeRandomFile,
  writeTree,
  type Figure,
  type MachineInfo,
  type MeasuredFigure,
  type Measured,
  type Report,
  type Scale,
  type ScaleName,
  type Timing,
} from './bench.js';
import { MiB } from '../core/units.js';

export const BENCH_USER = 'btrbkbench';
const BENCH_SUDOERS = '/etc/sudoers.d/zz-btrbk-bench';
const BENCH_RSYNC_ROOT = `${MOUNT_POINT}/bench-rsync`;
/** The cipher btrbk's ssh_cipher_spec can choose; fast where the CPU has AES instructions. */
export const AES_CIPHER = 'aes128-gcm@openssh.com';

/** Runs argv as root inside the local target (local-target.ts execInTarget). */
export type TargetExec = (argv: string[], opts?: { input?: string; timeout?: number }) => RunResult;

/** A pipeline's progress, labelled with the measurement it belongs to. */
export type BenchProgress = (label: string, p: ProgressSnapshot & { link: number; done: boolean }) => void;

/** The options of one `btrfs send` through the gate (or another login). */
interface SendOptions {
  parent?: string;
  proto?: number;
  compressedData?: boolean;
  /** compress the stream with zstd (stream_compress) */
  zstd?: boolean;
  /** its level (stream_compress_level; zstd's default 3 when not given) */
  zstdLevel?: number;
  /** an mbuffer stage of this size (stream_buffer) */
  mbuffer?: string;
  /** the login to receive with (default: the gated one) */
  via?: Connection;
  sshExtra?: string[];
  /** the stream's expected size, for the progress */
  total?: number;
}

/** What a timed pipeline moved: bytes on its last link (the wire), seconds, bytes per second. */
interface Timed {
  bytes: number;
  seconds: number;
  rate: number;
}

// --------------------------------------------------------------------------------------------- pipelines

/** `btrfs send` as a pipeline stage. */
export function sendStage(
  snapshot: string,
  { parent, proto, compressedData = false }: Pick<SendOptions, 'parent' | 'proto' | 'compressedData'> = {},
): PipelineStage {
  const args = ['send', '-q'];
  if (parent) args.push('-p', parent);
  if (proto) args.push('--proto', String(proto));
  if (compressedData) args.push('--compressed-data');
  args.push(snapshot);
  return { label: 'btrfs send', cmd: 'btrfs', args };
}

/** ssh into the target running `[zstd -d -c |] sudo -n btrfs receive DIR/` (btrbk's own command shape). */
export function remoteReceiveStage(
  conn: Connection,
  dir: string,
  { decompress = false, sshExtra = [] }: { decompress?: boolean; sshExtra?: string[] } = {},
): PipelineStage {
  return {
    label: `ssh ${conn.user}`,
    cmd: 'ssh',
    args: [...sshArgs(conn, { extra: sshExtra }), gateLine(GATE_COMMANDS.receive(dir, { decompress }))],
  };
}

const zstdStage = (level?: number): PipelineStage => ({
  label: 'zstd',
  cmd: 'zstd',
  args: ['-c', '-q', ...(level ? [`-${level}`] : [])],
});
const mbufferStage = (size: string): PipelineStage => ({
  label: 'mbuffer',
  cmd: 'mbuffer',
  args: ['-v', '1', '-q', '-m', size],
});
const localReceiveStage = (dir: string): PipelineStage => ({
  label: 'btrfs receive',
  cmd: 'btrfs',
  args: ['receive', dir],
});

/** Runs a pipeline and times it. Progress to `progress`. */
async function timed(
  stages: PipelineStage[],
  { progress, label, total }: { progress?: BenchProgress; label: string; total?: number },
): Promise<Timed> {
  const t0 = performance.now();
  const r = await runPipeline(stages, {
    total,
    progressIntervalMs: 1000,
    onProgress: progress ? (p) => progress(label, p) : undefined,
  });
  const seconds = (performance.now() - t0) / 1000;
  return { bytes: r.bytes, seconds, rate: r.bytes / seconds };
}

/** Times an async function: seconds. */
async function stopwatch(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

// ------------------------------------------------------------------------------------------ target access

/**
 * The bench-only plain-SSH login on the local target: a user with a key and `sudo btrfs`, no forced command.
 * The key is written to `dir`. remove() deletes the user, its sudoers line and the rsync directory.
 */
export async function addBenchUser(
  conn: Connection,
  exec: TargetExec,
  { dir }: { dir: string },
): Promise<{ conn: Connection; remove(): void }> {
  const key = path.join(dir, 'bench_ed25519');
  await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'btrbk-bench (temporary)', '-f', key]);
  const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim();
  const script = `set -eu
id ${BENCH_USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/sh ${BENCH_USER}
usermod -p '*' ${BENCH_USER}
install -d -m 0700 -o ${BENCH_USER} -g ${BENCH_USER} /home/${BENCH_USER}/.ssh
cat > /home/${BENCH_USER}/.ssh/authorized_keys
chown ${BENCH_USER}: /home/${BENCH_USER}/.ssh/authorized_keys
chmod 0600 /home/${BENCH_USER}/.ssh/authorized_keys
printf '%s\\n' '${BENCH_USER} ALL=(root) NOPASSWD: /usr/bin/btrfs' > ${BENCH_SUDOERS}.tmp
chmod 0440 ${BENCH_SUDOERS}.tmp
visudo -cqf ${BENCH_SUDOERS}.tmp
mv ${BENCH_SUDOERS}.tmp ${BENCH_SUDOERS}
install -d -m 0755 -o ${BENCH_USER} -g ${BENCH_USER} ${BENCH_RSYNC_ROOT}
`;
  const r = exec(['/bin/bash', '-c', script], { input: `${pub}\n` });
  if (r.status !== 0) {
    throw new OperatorError('cannot create the bench-only SSH user on the local target', {
      details: r.stderr,
      next: 'check the local target: npx zx scripts/local-target.mjs status',
    });
  }
  const benchConn: Connection = { ...conn, user: BENCH_USER, keyFile: key };
  const remove = () => {
    const rr = exec([
      '/bin/bash',
      '-c',
      `rm -f ${BENCH_SUDOERS} ${BENCH_SUDOERS}.tmp; rm -rf --one-file-system ${BENCH_RSYNC_ROOT}; if id ${BENCH_USER} >/dev/null 2>&1; then pkill -KILL -u ${BENCH_USER} || true; userdel -r ${BENCH_USER} 2>/dev/null || userdel ${BENCH_USER}; fi; ! id ${BENCH_USER} >/dev/null 2>&1`,
    ]);
    if (rr.status !== 0)
      throw new OperatorError(`could not remove the bench-only user ${BENCH_USER} from the local target`, {
        details: rr.stderr,
        next: `remove it by hand: userdel -r ${BENCH_USER}; rm -f ${BENCH_SUDOERS}`,
      });
  };
  return { conn: benchConn, remove };
}

/** Makes sure rsync exists in the target (for the rsync comparison). Returns a function that undoes it. */
export function ensureRemoteRsync(exec: TargetExec): () => void {
  if (exec(['sh', '-c', 'command -v rsync']).status === 0) return () => {};
  const r = exec(
    [
      'sh',
      '-c',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rsync >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends rsync >/dev/null)',
    ],
    { timeout: 300000 },
  );
  if (r.status !== 0)
    throw new OperatorError('cannot install rsync in the local target (needed for the rsync comparison)', {
      details: r.stderr,
    });
  return () => {
    exec(['sh', '-c', 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q rsync >/dev/null 2>&1']);
  };
}

/** Deletes subvolumes on the target through the gate, one command each (the gate takes one path). */
export async function deleteRemote(conn: Connection, paths: string[]): Promise<void> {
  const failed: string[] = [];
  for (const p of paths) {
    const r = await runRemote(conn, gateLine(GATE_COMMANDS.subvolumeDelete(p, { commitAfter: true })));
    if (r.status !== 0 && !/No such file|not found|does not exist/i.test(r.stderr))
      failed.push(`${p}: ${r.stderr.trim()}`);
  }
  if (failed.length)
    throw new OperatorError('could not delete bench subvolumes on the target', { details: failed.join('\n') });
}

// ----------------------------------------------------------------------------------------------- the items

// ITEMS (the measurements, in the order they run) live in bench.ts, so that bench's --help lists them without
// loading the measurements
export { ITEMS, type BenchItem };

export interface BenchDeps {
  /** The local target's connection (the gated backup login). */
  conn: Connection;
  exec: TargetExec;
  scale?: ScaleName | Scale;
  /** A subset of ITEMS (default: all). */
  items?: readonly BenchItem[];
  log?: (line: string) => void;
  progress?: BenchProgress;
  /** Times the setup steps (reported as they are, not as ratios). */
  setupTimings?: () => Promise<Timing[]>;
  /** The local target's cgroup, for the `limits` item (local-target.ts groupCpuSeconds and setLimits). */
  target?: LimitsTarget;
}

/** What the `limits` item needs of the local target. */
export interface LimitsTarget {
  /** CPU seconds the container's cgroup used so far. */
  groupCpuSeconds(): number | null;
  /** Puts the container under an instance type's limits (null: in its cgroup, unlimited). */
  setLimits(type: string | null): void;
}

export interface BenchReport extends Report {
  scale: string;
  sizes: Scale;
  runId: string;
  startedAt: string;
  finishedAt?: string;
  machine: MachineInfo;
  timings: Timing[];
}

/** What the measurements share during a run. */
interface BenchContext {
  conn: Connection;
  exec: TargetExec;
  s: Scale;
  log: (line: string) => void;
  progress?: BenchProgress;
  /** The run's directory on the target (under the backup path's selftest directory). */
  remoteDir: string;
  /** Received subvolumes on the target not yet deleted. */
  remoteReceived: Set<string>;
  tmp: string;
  /** The bench-only plain-SSH login, when an item needs it. */
  plain: Connection | null;
  /** The source btrfs (the data sent). */
  src: ScratchBtrfs;
  /** The local receiving btrfs. */
  dst: ScratchBtrfs;
  /** The random dataset's first snapshot, once made. */
  bigSnap?: string;
  target?: LimitsTarget;
  /** Where the limits item puts its table. */
  report: BenchReport;
}

/** Runs the benchmark on the local target. */
export async function runBench(deps: BenchDeps): Promise<BenchReport & { finishedAt: string }> {
  const { conn, exec, scale = 'small', log = () => {}, progress } = deps;
  const items = deps.items ?? ITEMS;
  const s = typeof scale === 'string' ? SCALES[scale] : scale;
  const runId = `bench-${Date.now().toString(36)}`;
  const remoteDir = `${conn.backupRoot}/${SELFTEST_DIR_NAME}/${runId}`;
  const report: BenchReport = {
    scale: typeof scale === 'string' ? scale : 'custom',
    sizes: s,
    runId,
    startedAt: new Date().toISOString(),
    machine: machineInfo({ versions: await toolVersions() }),
    figures: [],
    timings: [],
  };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-bench-'));
  const cleanups: Array<() => unknown> = [];
  const remoteReceived = new Set<string>();
  try {
    if (items.some((i) => ['incremental', 'path', 'compression', 'rsync', 'limits'].includes(i))) {
      const need = targetSpaceNeededMiB(s);
      const free = targetFreeMiB(exec);
      if (free !== null && free < need) {
        throw new OperatorError(`the local target's volume has ${free} MiB free; this scale needs about ${need} MiB`, {
          cause: 'the volume image is small (local-target up --volume-size, default 2G) or holds other data',
          next: "run a smaller scale (--scale small), or give the local target a bigger volume (it is sparse): down --purge, then up --volume-size 8G (this deletes the volume's backups)",
        });
      }
      const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(remoteDir)));
      if (mk.status !== 0)
        throw new OperatorError(`cannot create ${remoteDir} on the target through the gate`, { details: mk.stderr });
      cleanups.push(() => {
        const r = exec(['rmdir', remoteDir]);
        if (r.status !== 0) log(`warning: could not remove ${remoteDir} on the target: ${r.stderr.trim()}`);
      });
    }
    const needPlain = items.some((i) => i === 'path' || i === 'rsync');
    let plain: Connection | null = null;
    if (needPlain) {
      log(`adding the bench-only user ${BENCH_USER} (plain SSH, no gate) to the local target`);
      const bench = await addBenchUser(conn, exec, { dir: tmp });
      plain = bench.conn;
      cleanups.push(() => bench.remove());
    }
    const srcMiB =
      s.datasetMiB * 1.2 +
      s.compressibleMiB * 1.2 +
      (s.trees.reduce((a, b) => a + b, 0) * 6) / 1024 +
      (s.atimeFiles * 12) / 1024 +
      1024;
    const src = await createScratchBtrfs({ sizeMiB: Math.ceil(srcMiB), label: 'bench-src' });
    cleanups.push(() => src.destroy());
    const dst = await createScratchBtrfs({ sizeMiB: Math.ceil(s.datasetMiB * 2.5 + 1024), label: 'bench-dst' });
    cleanups.push(() => dst.destroy());
    const ctx: BenchContext = {
      conn,
      exec,
      s,
      log,
      progress,
      remoteDir,
      remoteReceived,
      tmp,
      plain,
      src,
      dst,
      target: deps.target,
      report,
    };

    const steps: Record<Exclude<BenchItem, 'setup'>, (ctx: BenchContext) => Promise<Figure[]>> = {
      incremental,
      path: pathOverhead,
      compression,
      rsync: againstRsync,
      atime: atimeHygiene,
      limits: receiveLimits,
    };
    for (const item of items) {
      if (item === 'setup') continue;
      log(`== ${item}`);
      try {
        if (item !== 'atime') {
          // (again) for each item: the target is shared, and its directory is cheap to re-create
          const mk = await runRemote(conn, gateLine(GATE_COMMANDS.mkdir(remoteDir)));
          if (mk.status !== 0)
            throw new OperatorError(`cannot create ${remoteDir} on the target through the gate`, {
              details: mk.stderr,
            });
        }
        report.figures.push(...(await steps[item](ctx)));
      } catch (err) {
        const { what, details } = describeError(err);
        log(`   ${item} failed: ${what}${details ? `\n${details}` : ''}`);
        report.figures.push({
          key: `${item}.error`,
          label: `${item} (failed)`,
          value: null,
          status: null,
          error: what.split('\n')[0],
        });
      } finally {
        await cleanRemote(ctx);
      }
    }
    if (items.includes('setup') && deps.setupTimings) {
      log('== setup');
      report.timings.push(...(await deps.setupTimings()));
    }
  } finally {
    await cleanRemote({ conn, remoteReceived }).catch((e: unknown) =>
      log(`warning: ${e instanceof Error ? e.message : String(e)}`),
    );
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (err) {
        log(`warning: cleanup: ${describeError(err).what}`);
      }
    }
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { ...report, finishedAt: new Date().toISOString() };
}

/** What an error says for the log: an OperatorError's one-line `what` and its details, else the message. */
function describeError(err: unknown): { what: string; details: string } {
  if (err instanceof OperatorError) return { what: err.what, details: err.details };
  return { what: err instanceof Error ? err.message : String(err), details: '' };
}

/** Free space on the target's volume (MiB, btrfs's estimate), or null when it cannot be read. */
export function targetFreeMiB(exec: TargetExec): number | null {
  const r = exec(['btrfs', 'filesystem', 'usage', '-b', MOUNT_POINT]);
  const u = r.status === 0 ? parseUsage(r.stdout ?? '') : null;
  return u ? Math.floor(u.free / MiB) : null;
}

async function toolVersions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[], re: RegExp): Promise<string> => {
    const r = await run(cmd, args);
    return r.error ? 'missing' : (re.exec(`${r.stdout}${r.stderr}`)?.[1] ?? 'unknown');
  };
  return {
    btrfsProgs: await v('btrfs', ['--version'], /v([\d.]+)/),
    btrbk: await v('btrbk', ['--version'], /version ([\d.]+)/),
    zstd: await v('zstd', ['--version'], /v([\d.]+)/),
    rsync: await v('rsync', ['--version'], /version ([\d.]+)/),
    openssh: await v('ssh', ['-V'], /OpenSSH_([\w.]+)/),
  };
}

async function cleanRemote(ctx: Pick<BenchContext, 'conn' | 'remoteReceived'>): Promise<void> {
  const list = [...ctx.remoteReceived];
  if (!list.length) return;
  await deleteRemote(ctx.conn, list);
  list.forEach((p) => ctx.remoteReceived.delete(p));
}

/** Receives through the gate; records the received path for cleanup. */
async function sendGated(
  ctx: BenchContext,
  snapshot: string,
  opts: SendOptions = {},
  label = 'send via gate',
): Promise<Timed> {
  const stages: PipelineStage[] = [sendStage(snapshot, opts)];
  if (opts.zstd) stages.push(zstdStage(opts.zstdLevel));
  if (opts.mbuffer) stages.push(mbufferStage(opts.mbuffer));
  stages.push(
    remoteReceiveStage(opts.via ?? ctx.conn, ctx.remoteDir, {
      decompress: Boolean(opts.zstd),
      sshExtra: opts.sshExtra,
    }),
  );
  ctx.remoteReceived.add(`${ctx.remoteDir}/${path.basename(snapshot)}`);
  return timed(stages, { progress: ctx.progress, label, total: opts.total });
}

async function sendLocal(ctx: BenchContext, snapshot: string, label = 'local send|receive'): Promise<Timed> {
  const dir = ctx.dst.path('recv');
  fs.mkdirSync(dir, { recursive: true });
  const r = await timed([sendStage(snapshot), localReceiveStage(dir)], { progress: ctx.progress, label });
  await deleteSubvolumes([path.join(dir, path.basename(snapshot))]);
  return r;
}

async function dropRemote(ctx: BenchContext, snapshot: string): Promise<void> {
  const p = `${ctx.remoteDir}/${path.basename(snapshot)}`;
  await deleteRemote(ctx.conn, [p]);
  ctx.remoteReceived.delete(p);
}

/** 1. Incremental efficiency: wire bytes of an incremental send / bytes changed. Leaves ctx.bigSnap. */
async function incremental(ctx: BenchContext): Promise<Figure[]> {
  const { s, src } = ctx;
  const vol = src.path('data');
  const snap0 = await ensureBigSnap(ctx);
  ctx.log('   full send through the gate (the parent for the incrementals)');
  const full = await sendGated(ctx, snap0, { total: s.datasetMiB * MiB }, 'full send');
  const figures: Figure[] = [];
  let parent = snap0;
  for (const [k, mib] of s.changesMiB.entries()) {
    const changed = overwriteSpread(path.join(vol, 'dataset.bin'), mib * MiB, { seedOffset: k + 1 });
    await syncFs(src.mountpoint);
    const snap = src.path('snaps', `data.${k + 1}`);
    await snapshotReadOnly(vol, snap);
    const inc = await sendGated(ctx, snap, { parent }, `incremental ${mib} MiB`);
    figures.push(
      figure(
        'incremental.wire_per_changed',
        `incremental: wire / changed (${mib} MiB of ${s.datasetMiB} MiB)`,
        { label: 'wire', value: inc.bytes, unit: 'B' },
        { label: 'changed', value: changed, unit: 'B' },
      ),
    );
    parent = snap;
  }
  figures.push(
    figure(
      'incremental.full_wire_per_data',
      `full send: wire / data (${s.datasetMiB} MiB)`,
      { label: 'wire', value: full.bytes, unit: 'B' },
      { label: 'data', value: s.datasetMiB * MiB, unit: 'B' },
    ),
  );
  return figures;
}

async function ensureBigSnap(ctx: BenchContext): Promise<string> {
  if (ctx.bigSnap) return ctx.bigSnap;
  const vol = ctx.src.path('data');
  await createSubvolume(vol);
  fs.mkdirSync(ctx.src.path('snaps'), { recursive: true });
  ctx.log(`   writing ${ctx.s.datasetMiB} MiB of random data`);
  writeRandomFile(path.join(vol, 'dataset.bin'), ctx.s.datasetMiB * MiB);
  await syncFs(ctx.src.mountpoint);
  const snap = ctx.src.path('snaps', 'data.0');
  ctx.bigSnap = snap;
  await snapshotReadOnly(vol, snap);
  return snap;
}

/** Runs each variant `repeats` times, interleaved and in rotating order; returns {name: [results]}. */
async function interleaved<T>(
  names: string[],
  repeats: number,
  fn: (name: string, round: number) => Promise<T>,
): Promise<Record<string, T[]>> {
  const out = Object.fromEntries(names.map((n): [string, T[]] => [n, []]));
  for (let r = 0; r < repeats; r += 1) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const n of order) out[n].push(await fn(n, r));
  }
  return out;
}

const med = <K extends string>(list: Array<Record<K, number>>, key: K): number | null =>
  median(list.map((x) => x[key]));

/** `amount` per the median of `seconds` (null when there is no median). */
const perSecond = (amount: number, seconds: number | null): number | null =>
  seconds === null ? null : amount / seconds;

/** 2. Path overhead: full send rate via ssh+gate vs local send|receive, and gate vs plain ssh. */
async function pathOverhead(ctx: BenchContext): Promise<Figure[]> {
  const snap = await ensureBigSnap(ctx);
  const total = ctx.s.datasetMiB * MiB;
  // warm the page cache so the first variant does not pay for reading the disk
  await runChecked('sh', ['-c', `btrfs send -q '${snap}' > /dev/null`]);
  const names = ['local', 'gate', 'gate-aes', ...(ctx.plain ? ['plain'] : [])];
  const labels: Record<string, string> = {
    local: 'local',
    gate: 'ssh+gate',
    'gate-aes': 'ssh+gate aes128-gcm',
    plain: 'plain ssh',
  };
  const res = await interleaved(names, ctx.s.repeats, async (n) => {
    if (n === 'local') return sendLocal(ctx, snap, 'local send|receive');
    const opts: SendOptions = {
      total,
      via: n === 'plain' && ctx.plain ? ctx.plain : ctx.conn,
      sshExtra: n === 'gate-aes' ? ['-c', AES_CIPHER] : [],
    };
    const r = await sendGated(ctx, snap, opts, labels[n]);
    await dropRemote(ctx, snap);
    return r;
  });
  const rate = (n: string): Measured => ({ label: labels[n], value: med(res[n], 'rate'), unit: 'B/s' });
  const figures = [
    figure(
      'path.gate_vs_local',
      `full send rate: ssh+gate / local (${ctx.s.datasetMiB} MiB)`,
      rate('gate'),
      rate('local'),
    ),
  ];
  if (ctx.plain) {
    figures.push(
      figure('path.gate_vs_plain_ssh', 'full send rate: ssh+gate / plain ssh (same sshd)', rate('gate'), rate('plain')),
    );
    figures.push(figure('path.plain_ssh_vs_local', 'full send rate: plain ssh / local', rate('plain'), rate('local')));
  }
  figures.push(
    figure(
      'path.aes_vs_default_cipher',
      `full send rate: ssh+gate with ${AES_CIPHER} / default cipher`,
      rate('gate-aes'),
      rate('gate'),
    ),
  );
  figures.push(
    figure('path.gate_aes_vs_local', `full send rate: ssh+gate ${AES_CIPHER} / local`, rate('gate-aes'), rate('local')),
  );
  return figures;
}

/** 3. Compression: none vs stream_compress zstd vs send --proto 2 --compressed-data on a zstd-compressed source. */
async function compression(ctx: BenchContext): Promise<Figure[]> {
  const { s, src } = ctx;
  const vol = src.path('text');
  await createSubvolume(vol);
  await runChecked('btrfs', ['property', 'set', vol, 'compression', 'zstd']);
  ctx.log(`   writing ${s.compressibleMiB} MiB of log-like text (stored zstd-compressed)`);
  writeCompressibleFile(path.join(vol, 'logs.txt'), s.compressibleMiB * MiB);
  await syncFs(src.mountpoint);
  fs.mkdirSync(src.path('snaps'), { recursive: true });
  const snap = src.path('snaps', 'text.0');
  await snapshotReadOnly(vol, snap);
  await runChecked('sh', ['-c', `btrfs send -q '${snap}' > /dev/null`]);
  const variants: Record<string, SendOptions> = {
    none: {},
    zstd: { zstd: true },
    proto2: { proto: 2, compressedData: true },
  };
  const res = await interleaved(Object.keys(variants), s.repeats, async (n) => {
    const r = await sendGated(ctx, snap, variants[n], `compressible: ${n}`);
    await dropRemote(ctx, snap);
    return r;
  });
  const w = (n: string, label: string): Measured => ({ label, value: med(res[n], 'bytes'), unit: 'B' });
  // compare data rates (dataset size / time): how fast the backup is done, whatever crosses the wire
  const dataRate = (n: string, label: string): Measured => ({
    label,
    value: perSecond(s.compressibleMiB * MiB, med(res[n], 'seconds')),
    unit: 'B/s',
  });
  const figures: Figure[] = [
    figure('compression.zstd_wire', 'compressible: wire bytes zstd / none', w('zstd', 'zstd'), w('none', 'none')),
    figure(
      'compression.proto2_wire',
      'compressible: wire bytes proto2 --compressed-data / none',
      w('proto2', 'proto2'),
      w('none', 'none'),
    ),
    figure(
      'compression.zstd_speed',
      'compressible: data rate zstd / none',
      dataRate('zstd', 'zstd'),
      dataRate('none', 'none'),
    ),
    figure(
      'compression.proto2_speed',
      'compressible: data rate proto2 / none',
      dataRate('proto2', 'proto2'),
      dataRate('none', 'none'),
    ),
  ];
  // the cost of zstd on data that does not compress (the random dataset), and of a stream buffer
  const big = await ensureBigSnap(ctx);
  const res2 = await interleaved(['none', 'zstd', 'mbuffer'], s.repeats, async (n) => {
    const x = await sendGated(
      ctx,
      big,
      n === 'zstd' ? { zstd: true } : n === 'mbuffer' ? { mbuffer: '256M' } : {},
      `random: ${n}`,
    );
    await dropRemote(ctx, big);
    return x;
  });
  const dr = (n: string, label: string): Measured => ({
    label,
    value: perSecond(s.datasetMiB * MiB, med(res2[n], 'seconds')),
    unit: 'B/s',
  });
  figures.push(
    figure(
      'compression.zstd_random_wire',
      'incompressible: wire bytes zstd / none',
      { label: 'zstd', value: med(res2.zstd, 'bytes'), unit: 'B' },
      { label: 'none', value: med(res2.none, 'bytes'), unit: 'B' },
    ),
    figure(
      'compression.zstd_random_speed',
      'incompressible: data rate zstd / none',
      dr('zstd', 'zstd'),
      dr('none', 'none'),
    ),
    figure(
      'buffer.mbuffer_speed',
      'stream_buffer 256M (mbuffer): data rate with / without',
      dr('mbuffer', 'mbuffer'),
      dr('none', 'none'),
    ),
  );
  return figures;
}

/** 4. Against rsync: snapshot + incremental send vs rsync -a --delete, 100 changed files, two tree sizes. */
async function againstRsync(ctx: BenchContext): Promise<MeasuredFigure[]> {
  const { s, src, plain } = ctx;
  if (!plain) throw new OperatorError('the rsync comparison needs the bench-only plain-SSH user');
  const undoRsync = ensureRemoteRsync(ctx.exec);
  const timesBy: Record<number, { btrfs: number | null; rsync: number | null }> = {};
  try {
    for (const n of s.trees) {
      const vol = src.path(`tree${n}`);
      await createSubvolume(vol);
      ctx.log(`   writing ${n} small files`);
      writeTree(vol, n);
      await syncFs(src.mountpoint);
      fs.mkdirSync(src.path('snaps'), { recursive: true });
      let prev = src.path('snaps', `tree${n}.0`);
      await snapshotReadOnly(vol, prev);
      ctx.log('   first full send through the gate and first rsync (not timed)');
      await sendGated(ctx, prev, {}, `tree ${n}: full send`);
      const dest = `${BENCH_RSYNC_ROOT}/tree${n}/`;
      const rsyncArgs = [
        '-a',
        '--delete',
        '-e',
        ['ssh', ...sshArgs(plain).slice(0, -1)].map(shellWord).join(' '),
        `${vol}/`,
        `${plain.user}@${plain.host}:${dest}`,
      ];
      await runChecked('rsync', rsyncArgs, { what: 'the first rsync to the target failed' });
      await runChecked('rsync', rsyncArgs, { what: 'the warm-up rsync failed' });
      // each round changes the same files once; both tools then carry exactly that change (order alternates)
      const res: { btrfs: Array<{ seconds: number }>; rsync: Array<{ seconds: number }> } = { btrfs: [], rsync: [] };
      for (let round = 0; round < s.repeats; round += 1) {
        changeTree(vol, n, s.changedFiles, round + 1);
        const order: Array<'btrfs' | 'rsync'> = round % 2 ? ['rsync', 'btrfs'] : ['btrfs', 'rsync'];
        for (const kind of order) {
          if (kind === 'btrfs') {
            const snap = src.path('snaps', `tree${n}.${round + 1}`);
            const seconds = await stopwatch(async () => {
              await snapshotReadOnly(vol, snap);
              await sendGated(ctx, snap, { parent: prev }, `tree ${n}: incremental`);
            });
            prev = snap;
            res.btrfs.push({ seconds });
          } else {
            res.rsync.push({
              seconds: await stopwatch(() => runChecked('rsync', rsyncArgs, { what: 'rsync to the target failed' })),
            });
          }
        }
      }
      timesBy[n] = { btrfs: med(res.btrfs, 'seconds'), rsync: med(res.rsync, 'seconds') };
      await cleanRemote(ctx);
      ctx.exec(['rm', '-rf', '--one-file-system', `${BENCH_RSYNC_ROOT}/tree${n}`]);
      await deleteSubvolumes(
        (await fs.promises.readdir(src.path('snaps')))
          .filter((f) => f.startsWith(`tree${n}.`))
          .map((f) => src.path('snaps', f)),
      );
      await deleteSubvolumes([vol]);
    }
  } finally {
    undoRsync();
  }
  const [small, large] = s.trees;
  const t = (n: number, kind: 'btrfs' | 'rsync'): Measured => ({
    label: `${kind} ${n}`,
    value: timesBy[n][kind],
    unit: 's',
  });
  return [
    figure('rsync.btrfs_growth', `btrfs time growth ${small} -> ${large} files`, t(large, 'btrfs'), t(small, 'btrfs')),
    figure('rsync.rsync_growth', `rsync time growth ${small} -> ${large} files`, t(large, 'rsync'), t(small, 'rsync')),
    figure('rsync.speedup_small', `rsync time / btrfs time at ${small} files`, t(small, 'rsync'), t(small, 'btrfs')),
    figure('rsync.speedup_large', `rsync time / btrfs time at ${large} files`, t(large, 'rsync'), t(large, 'btrfs')),
  ];
}

/** 5. Source hygiene: incremental bytes after one read pass, relatime vs noatime. Local only. */
async function atimeHygiene(ctx: BenchContext): Promise<Figure[]> {
  const { s, src } = ctx;
  const n = s.atimeFiles;
  const bytesFor = async (name: string, mountOpt: string): Promise<number> => {
    await runChecked('mount', ['-o', `remount,${mountOpt}`, src.mountpoint]);
    const vol = src.path(`atime-${name}`);
    await createSubvolume(vol);
    writeTree(vol, n);
    await syncFs(src.mountpoint);
    fs.mkdirSync(src.path('snaps'), { recursive: true });
    const a = src.path('snaps', `atime-${name}.0`);
    const b = src.path('snaps', `atime-${name}.1`);
    await snapshotReadOnly(vol, a);
    readTree(vol, n);
    changeTree(vol, n, s.changedFiles, 1);
    await syncFs(src.mountpoint);
    await snapshotReadOnly(vol, b);
    const { stdout } = await runChecked('sh', ['-c', `btrfs send -q -p '${a}' '${b}' | wc -c`]);
    await deleteSubvolumes([b, a, vol]);
    return Number(stdout.trim());
  };
  try {
    ctx.log(`   ${n} files, one read pass, ${s.changedFiles} changed: relatime, then noatime`);
    const rel = await bytesFor('relatime', 'atime,relatime');
    const noa = await bytesFor('noatime', 'noatime');
    return [
      figure(
        'atime.relatime_vs_noatime',
        `incremental bytes after a read pass of ${n} files: relatime / noatime`,
        { label: 'relatime', value: rel, unit: 'B' },
        { label: 'noatime', value: noa, unit: 'B' },
      ),
    ];
  } finally {
    await runChecked('mount', ['-o', 'remount,noatime', src.mountpoint], { check: false });
  }
}

// ------------------------------------------------------------------------------------------------ 6. limits

export const CHACHA_CIPHER = 'chacha20-poly1305@openssh.com';
/** The instance type whose limits the item measures against (the stack's default). */
export const LIMITS_INSTANCE_TYPE = 't3a.nano';

const cand = (
  name: string,
  cipher: string,
  zstdLevel: number | null,
  extra: Partial<LimitsCandidate> = {},
): LimitsCandidate => ({ name, cipher, zstdLevel, mbuffer: false, targetCompress: 'zstd:1', ...extra });

/** The candidate defaults: SSH cipher, stream compression (level), mbuffer, and compress= on the target's mount. */
export const LIMITS_CANDIDATES: readonly LimitsCandidate[] = Object.freeze([
  cand('chacha20 none', CHACHA_CIPHER, null),
  cand('aes128-gcm none', AES_CIPHER, null),
  cand('chacha20 zstd-3', CHACHA_CIPHER, 3),
  cand('aes128-gcm zstd-1', AES_CIPHER, 1),
  cand('aes128-gcm zstd-3', AES_CIPHER, 3),
  cand('aes128-gcm zstd-3 mbuffer', AES_CIPHER, 3, { mbuffer: true }),
  cand('aes128-gcm zstd-3 target compress=no', AES_CIPHER, 3, { targetCompress: 'no' }),
]);

/** The candidate the generated btrbk.conf (ssh_cipher_spec, stream_compress) and the boot script (compress=) use. */
export const DEFAULT_LIMITS_CANDIDATE = 'aes128-gcm zstd-1';
/** The candidates also measured directly with the container under the CPU quota. */
export const QUOTA_CANDIDATES: readonly string[] = Object.freeze([
  DEFAULT_LIMITS_CANDIDATE,
  'chacha20 zstd-3',
  'aes128-gcm none',
]);
// ('chacha20 zstd-3' is what btrbk.conf gave before issue 12: OpenSSH's first cipher, zstd's default level)

/** The quota candidates a scale measures: the first `quotaCandidates` of QUOTA_CANDIDATES (the default first), or all. */
export const quotaCandidates = (s: Scale): readonly string[] =>
  QUOTA_CANDIDATES.slice(0, Math.max(1, s.quotaCandidates ?? QUOTA_CANDIDATES.length));

/** The size of each of the item's two datasets: the scale's, at most 256 MiB. */
export const limitsMiB = (s: Scale): number => Math.min(s.datasetMiB, s.compressibleMiB, 256);

function cpuNow(target: LimitsTarget): { group: number; kernel: number; client: number; system: number } {
  return {
    group: target.groupCpuSeconds() ?? Number.NaN,
    kernel: kernelThreadCpuSeconds(),
    client: selfAndChildrenCpuSeconds(),
    system: systemBusySeconds(),
  };
}

function setTargetCompress(ctx: BenchContext, value: string): void {
  const r = ctx.exec(['mount', '-o', `remount,compress=${value}`, MOUNT_POINT]);
  if (r.status !== 0)
    throw new OperatorError(`cannot remount the target's volume with compress=${value}`, { details: r.stderr });
}

/**
 * CPU seconds per second the kernel threads use while the bench does nothing (3 s): other load on this machine.
 * Never below 0: the sum drops when a kernel thread exits in the window (a kworker with its CPU seconds), and a
 * negative rate would add to every sample's kernel CPU instead of taking the idle load off.
 */
export async function kernelIdleRate(ms = 3000, read: () => number = kernelThreadCpuSeconds): Promise<number> {
  const k0 = read();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return Math.max(0, (read() - k0) / ((performance.now() - t0) / 1000));
}

/** One gated full send of `snap` with a candidate's settings; the CPU it cost, split by where it was counted. */
async function receiveSample(
  ctx: BenchContext,
  target: LimitsTarget,
  snap: string,
  c: LimitsCandidate,
  dataset: 'random' | 'text',
  dataBytes: number,
  kernelIdleRate = 0,
): Promise<LimitsSample> {
  if (c.targetCompress !== 'zstd:1') setTargetCompress(ctx, c.targetCompress);
  try {
    const before = cpuNow(target);
    const t0 = performance.now();
    const r = await sendGated(
      ctx,
      snap,
      {
        zstd: c.zstdLevel !== null,
        zstdLevel: c.zstdLevel ?? undefined,
        mbuffer: c.mbuffer ? '256M' : undefined,
        sshExtra: ['-c', c.cipher],
        total: dataBytes,
      },
      `${dataset}: ${c.name}`,
    );
    // the received data's writeback (checksums, compress=) is the host's work too: inside the window
    ctx.exec(['btrfs', 'filesystem', 'sync', MOUNT_POINT]);
    const seconds = (performance.now() - t0) / 1000;
    const after = cpuNow(target);
    dropReceived(ctx, snap);
    const group = after.group - before.group;
    // kernel threads are shared with everything else on this machine: their idle rate is taken off
    const kernel = after.kernel - before.kernel - kernelIdleRate * seconds;
    const client = after.client - before.client;
    return {
      candidate: c.name,
      dataset,
      dataBytes,
      wireBytes: r.bytes,
      seconds,
      groupCpuSeconds: group,
      kernelCpuSeconds: kernel,
      kernelIdleCpuSeconds: kernelIdleRate * seconds,
      clientCpuSeconds: client,
      otherCpuSeconds: after.system - before.system - group - kernel - client,
    };
  } finally {
    if (c.targetCompress !== 'zstd:1') setTargetCompress(ctx, 'zstd:1');
  }
}

/**
 * Deletes what a sample received, as root in the target rather than through the gate: the cleanup is not measured,
 * so it costs no SSH session, runs outside the container's cgroup (not at the quota's pace) and outside any sample's
 * window. It waits until btrfs's cleaner has freed the subvolume's extents, or the kernel threads' work for it would
 * land in the next sample's window.
 */
function dropReceived(ctx: BenchContext, snapshot: string): void {
  const p = `${ctx.remoteDir}/${path.basename(snapshot)}`;
  const r = ctx.exec([
    'sh',
    '-c',
    'id=$(btrfs inspect-internal rootid "$1") && btrfs subvolume delete --commit-after "$1" >/dev/null && btrfs subvolume sync "$2" "$id" >/dev/null',
    'sh',
    p,
    MOUNT_POINT,
  ]);
  if (r.status !== 0) throw new OperatorError(`could not delete ${p} on the target`, { details: r.stderr });
  ctx.remoteReceived.delete(p);
}

async function limitsSnapshot(ctx: BenchContext, name: 'random' | 'text', mib: number): Promise<string> {
  const vol = ctx.src.path(`limits-${name}`);
  await createSubvolume(vol);
  if (name === 'text') {
    await runChecked('btrfs', ['property', 'set', vol, 'compression', 'zstd']);
    writeCompressibleFile(path.join(vol, 'logs.txt'), mib * MiB);
  } else {
    writeRandomFile(path.join(vol, 'data.bin'), mib * MiB);
  }
  await syncFs(ctx.src.mountpoint);
  fs.mkdirSync(ctx.src.path('snaps'), { recursive: true });
  const snap = ctx.src.path('snaps', `limits-${name}.0`);
  await snapshotReadOnly(vol, snap);
  await runChecked('sh', ['-c', `btrfs send -q '${snap}' > /dev/null`]);
  return snap;
}

/**
 * 6. The receive side at the default instance type's limits: for each candidate default, CPU seconds per GiB
 * received (the container's cgroup: sshd, the gate's stages, btrfs receive; plus kernel threads), the rate the
 * type's CPU baseline sustains at that cost, and for a few candidates the rate measured directly under the quota.
 */
async function receiveLimits(ctx: BenchContext): Promise<Figure[]> {
  const { target } = ctx;
  if (!target)
    throw new OperatorError("the limits item needs the local target's cgroup", {
      next: 'run it through npm run bench (scripts/bench.mjs passes it)',
    });
  const mib = limitsMiB(ctx.s);
  const repeats = Math.min(ctx.s.repeats, 2);
  ctx.log(`   writing two ${mib} MiB datasets (random, log-like text)`);
  const snaps = { random: await limitsSnapshot(ctx, 'random', mib), text: await limitsSnapshot(ctx, 'text', mib) };
  const rows: LimitsRow[] = [];
  try {
    // unlimited, in the container's cgroup: the CPU each candidate costs
    target.setLimits(null);
    for (const dataset of ['random', 'text'] as const) {
      const idle = await kernelIdleRate();
      ctx.log(`   kernel threads while idle: ${idle.toFixed(3)} CPU s/s (taken off each ${dataset} sample)`);
      const res = await interleaved(
        LIMITS_CANDIDATES.map((c) => c.name),
        repeats,
        async (n) =>
          receiveSample(
            ctx,
            target,
            snaps[dataset],
            LIMITS_CANDIDATES.find((c) => c.name === n)!,
            dataset,
            mib * MiB,
            idle,
          ),
      );
      for (const c of LIMITS_CANDIDATES) {
        // the sample with the median receive-side CPU
        const list = [...res[c.name]].sort(
          (a, b) => a.groupCpuSeconds + a.kernelCpuSeconds - (b.groupCpuSeconds + b.kernelCpuSeconds),
        );
        rows.push(limitsRow(list[Math.floor((list.length - 1) / 2)], LIMITS_INSTANCE_TYPE));
      }
    }
    // under the quota: the rate measured directly (kernel threads are not limited, so this is an upper bound)
    ctx.log(`   under ${LIMITS_INSTANCE_TYPE}'s CPU quota and memory limit`);
    target.setLimits(LIMITS_INSTANCE_TYPE);
    const quota = quotaCandidates(ctx.s);
    for (const dataset of ['random', 'text'] as const) {
      for (const name of quota) {
        const c = LIMITS_CANDIDATES.find((x) => x.name === name)!;
        const q = await receiveSample(ctx, target, snaps[dataset], c, dataset, mib * MiB);
        const row = rows.find((r) => r.candidate === name && r.dataset === dataset)!;
        row.quotaReceiveMBps = Number((q.wireBytes / q.seconds / 1e6).toFixed(2));
        row.quotaDataMBps = Number((q.dataBytes / q.seconds / 1e6).toFixed(2));
      }
    }
  } finally {
    target.setLimits(null);
  }
  ctx.report.limits = {
    ...limitsBasis(LIMITS_INSTANCE_TYPE),
    candidates: [...LIMITS_CANDIDATES],
    rows,
    defaultCandidate: DEFAULT_LIMITS_CANDIDATE,
  };
  return limitsFigures(ctx.report.limits);
}
