// `backup.mjs verify`: compares the newest backup of each protected subvolume on the target with the local snapshot
// it was sent from. First the pair: the newest backup must be of the newest snapshot here (else: run a backup);
// then the identity (the backup's received UUID is the snapshot's UUID); then a manifest of every file, or of a
// seeded sample, made by the same program on both sides (user-data/btrbk-manifest: here on the snapshot, on the
// host through the gate's `btrbk-manifest`), compared path by path (data/verify.ts). The result of the last run is
// kept in FILES.lastVerify for `status`.
// pickPair() decides (pure, unit-tested); verifyBackups() gathers, compares and records.
// --at TIMESTAMP verifies that backup instead of the newest, --all every complete backup: one with its local snapshot
// still here is compared as above; one whose snapshot is gone (local retention keeps fewer than the host) can only be
// read back whole on the host (state 'readable': every sampled file read, btrfs checking each block's checksum as it
// is read; nothing to compare it with). --all costs one manifest on the host per backup (docs/PERFORMANCE.md).
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from '../core/connection.js';
import { REPO_ROOT } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run, type RunResult } from '../core/process.js';
import { checkIdentity, compareManifests, describeDifference, parseManifest, type Difference } from '../data/verify.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { runRemote } from '../remote/ssh.js';
import type { Manifest } from './install.js';
import { FILES, under } from './layout.js';
import { listingError } from './device-key.js';
import { targetFor } from './layout.js';
import { chooseBackup } from './restore.js';
import { datedFor, localSnapshots, sshFailureReason, targetBackups, type Dated } from './target.js';

/**
 * The default sample, in percent. docs/PERFORMANCE.md: a full manifest costs the host about 8 CPU s per GiB, 82 s
 * per GiB at a t3a.nano's CPU baseline (about 2 h for 100 GB); 5 % is a twentieth of that (about 6.5 min for
 * 100 GB) and still finds a systematic fault (another snapshot, wrong owners or modes, a damaged range) with near
 * certainty. `--sample 100` is every file.
 */
export const DEFAULT_SAMPLE = 5;
/** The program both sides run (the host has its copy at host-layout MANIFEST_PATH). */
export const MANIFEST_PROGRAM = path.join(REPO_ROOT, 'user-data', 'btrbk-manifest');
/** The longest a manifest may take (a full one of a large backup at the CPU baseline takes hours). */
const MANIFEST_TIMEOUT_MS = 24 * 3600e3;

/** How one subvolume's verify ended. */
export type VerifyState = 'clean' | 'readable' | 'differences' | 'not-same' | 'not-newest' | 'never' | 'failed';

/** The states that pass (exit 0). */
const PASSES: readonly VerifyState[] = ['clean', 'readable'];

export interface SubvolumeVerify {
  subvolume: string;
  state: VerifyState;
  /** One line for a person: what was found and what to do. */
  reason: string;
  backup: string | null;
  snapshot: string | null;
  newestSnapshot: string | null;
  /** Entries compared (0 when no manifest was compared). */
  compared: number;
  differences: Difference[];
  /** Why the comparison cannot be trusted whole (data/verify.ts Comparison.problems), and a failed identity. */
  problems: string[];
}

export interface VerifyReport {
  ok: boolean;
  at: Date;
  /** Percent of the files; 100 is every file. */
  sample: number;
  /** The seed that picked the sample (null for every file): `--seed` repeats it. */
  seed: string | null;
  targetDir: string;
  subvolumes: SubvolumeVerify[];
}

/** Which backup is compared with which snapshot, or why none can be. */
export type Pair =
  | { ok: true; backup: Dated; snapshot: Dated }
  | {
      ok: false;
      state: 'never' | 'not-newest' | 'failed';
      reason: string;
      backup: Dated | null;
      newestSnapshot: Dated | null;
    };

/**
 * Picks the pair: the newest backup on the target (complete or not: a backup whose received UUID went away is
 * the one to report, not to skip) and the local snapshot of the same name, which must be the newest snapshot.
 */
export function pickPair(subvolume: string, backups: Dated[], snapshots: Dated[]): Pair {
  const backup = backups.at(-1) ?? null;
  const newestSnapshot = snapshots.at(-1) ?? null;
  if (!backup)
    return {
      ok: false,
      state: 'never',
      reason: `${subvolume} has no backup on the target yet: run one (npx zx scripts/backup.mjs run), then verify`,
      backup,
      newestSnapshot,
    };
  if (newestSnapshot?.name === backup.name) return { ok: true, backup, snapshot: newestSnapshot };
  const newer =
    newestSnapshot &&
    (newestSnapshot.time.getTime() - backup.time.getTime() || newestSnapshot.name.localeCompare(backup.name)) > 0;
  if (newestSnapshot && newer) {
    return {
      ok: false,
      state: 'not-newest',
      reason: `the newest backup is not the newest snapshot's: newest on the target ${backup.name}, newest here ${newestSnapshot.name} (not sent yet); run a backup (npx zx scripts/backup.mjs run), then verify again`,
      backup,
      newestSnapshot,
    };
  }
  return {
    ok: false,
    state: 'failed',
    reason: `the snapshot ${backup.name} the newest backup was sent from is not here (newest here: ${newestSnapshot?.name ?? 'none'}): nothing to compare it with; run a backup (npx zx scripts/backup.mjs run), then verify`,
    backup,
    newestSnapshot,
  };
}

/** A random seed (what a run without --seed uses; printed so the run can be repeated). */
export const randomSeed = (): string => String(randomInt(0, 2 ** 47));

export interface VerifyRequest {
  conn: Connection;
  manifest: Manifest | null;
  /** Only these (default: every installed subvolume). */
  subvolumes?: string[];
  sample?: number;
  seed?: string;
  /** --at: the backup at or before this time (restore's rule) instead of the newest. */
  at?: string;
  /** --all: every complete backup of each subvolume. */
  all?: boolean;
  /** Progress and findings as they come. */
  say?: (line: string) => void;
  run?: Run;
  /** Where the result is recorded (tests: a temporary directory; a machine: /). */
  root?: string;
  now?: () => Date;
  program?: string;
  /** How often a running manifest says it still runs (default a minute). */
  tickMs?: number;
}

/** Runs verify for each protected subvolume, records the result, and returns it. */
export async function verifyBackups(req: VerifyRequest): Promise<VerifyReport> {
  const m = req.manifest;
  if (!m)
    throw new OperatorError('nothing is installed on this machine', {
      cause: 'verify compares the backups of what backup.mjs install protects',
      next: 'sudo npx zx scripts/backup.mjs install --subvolume /home',
    });
  const sources = req.subvolumes?.length ? m.sources.filter((s) => req.subvolumes?.includes(s.subvolume)) : m.sources;
  if (!sources.length)
    throw new OperatorError(`${req.subvolumes?.join(', ')} is not protected here`, {
      next: `installed: ${m.sources.map((s) => s.subvolume).join(', ')}`,
    });
  const run = req.run ?? runDefault;
  const say = req.say ?? ((l: string) => console.log(l));
  const now = req.now ?? (() => new Date());
  const sample = req.sample ?? DEFAULT_SAMPLE;
  const seed = sample === 100 ? null : (req.seed ?? randomSeed());
  const at = now();
  const { device, targetDir } = targetFor(req.conn, undefined, m);
  const listing = await targetBackups(req.conn, targetDir, { run });
  if (!listing.reachable) throw await listingError(req.conn, device, listing, { run, verb: 'verify' });
  say(
    sample === 100
      ? 'verify: every file (--sample 100)'
      : `verify: a ${sample} % sample, seed ${seed} (repeat this run with --sample ${sample} --seed ${seed}; --sample 100 for every file)`,
  );
  const subvolumes: SubvolumeVerify[] = [];
  const common = {
    conn: req.conn,
    sample,
    seed,
    run,
    say,
    program: req.program ?? MANIFEST_PROGRAM,
    tickMs: req.tickMs ?? 60_000,
  };
  if (req.all) {
    const n = sources.reduce(
      (sum, s) =>
        sum +
        datedFor(
          listing.entries.filter((e) => e.complete),
          path.posix.basename(s.subvolume),
        ).length,
      0,
    );
    say(
      `verify --all: ${n} backup(s); each is read on the host (a manifest of ${sample === 100 ? 'every file' : `a ${sample} % sample`}), so this costs ${n} times one verify (docs/PERFORMANCE.md)`,
    );
  }
  for (const s of sources) {
    const base = path.posix.basename(s.subvolume);
    const local = localSnapshots(s.snapshotDir, base);
    if (req.at !== undefined || req.all) {
      const complete = datedFor(
        listing.entries.filter((e) => e.complete),
        base,
      );
      const chosen = req.all ? complete : [chooseBackup(complete, req.at, s.subvolume)];
      if (!chosen.length)
        subvolumes.push(
          noPair(
            s.subvolume,
            'never',
            `${s.subvolume} has no complete backup on the target yet: run one (npx zx scripts/backup.mjs run), then verify`,
            null,
            local.at(-1) ?? null,
          ),
        );
      for (const backup of chosen) {
        const snapshot = local.find((l) => l.name === backup.name);
        subvolumes.push(
          snapshot
            ? await verifyPair({ ...common, subvolume: s.subvolume, backup, snapshot })
            : await verifyReadable({ ...common, subvolume: s.subvolume, backup, newestSnapshot: local.at(-1) ?? null }),
        );
      }
      continue;
    }
    const pair = pickPair(s.subvolume, datedFor(listing.entries, base), local);
    const v = pair.ok
      ? await verifyPair({ ...common, subvolume: s.subvolume, backup: pair.backup, snapshot: pair.snapshot })
      : {
          subvolume: s.subvolume,
          state: pair.state,
          reason: pair.reason,
          backup: pair.backup?.path ?? null,
          snapshot: null,
          newestSnapshot: pair.newestSnapshot?.path ?? null,
          compared: 0,
          differences: [],
          problems: [],
        };
    subvolumes.push(v);
  }
  const report: VerifyReport = {
    ok: subvolumes.every((v) => PASSES.includes(v.state)),
    at,
    sample,
    seed,
    targetDir,
    subvolumes,
  };
  recordVerify(report, req.root ?? '/');
  return report;
}

function noPair(
  subvolume: string,
  state: 'never',
  reason: string,
  backup: Dated | null,
  newestSnapshot: Dated | null,
): SubvolumeVerify {
  return {
    subvolume,
    state,
    reason,
    backup: backup?.path ?? null,
    snapshot: null,
    newestSnapshot: newestSnapshot?.path ?? null,
    compared: 0,
    differences: [],
    problems: [],
  };
}

/**
 * A backup whose local snapshot is gone: read back on the host (the same manifest, the same sample) with nothing to
 * compare it with. Every file of the sample must be read without an error (btrfs checks each block's checksum as it
 * reads it: a damaged block is an error, never wrong data) and the listing must be whole.
 */
async function verifyReadable(o: {
  conn: Connection;
  subvolume: string;
  backup: Dated;
  newestSnapshot: Dated | null;
  sample: number;
  seed: string | null;
  run: Run;
  say: (l: string) => void;
}): Promise<SubvolumeVerify> {
  const base = {
    subvolume: o.subvolume,
    backup: o.backup.path,
    snapshot: null,
    newestSnapshot: o.newestSnapshot?.path ?? null,
    differences: [],
  };
  o.say(`${o.subvolume}: the backup ${o.backup.path} on the target (its snapshot is no longer here: read back only)`);
  const sampleArgs = o.seed === null ? null : { percent: o.sample, seed: BigInt(o.seed) };
  const r = await runRemote(o.conn, gateLine(GATE_COMMANDS.manifest(o.backup.path, sampleArgs)), {
    run: o.run,
    timeoutMs: MANIFEST_TIMEOUT_MS,
  });
  const parsed = parseManifest(r.stdout);
  const unreadable = [...parsed.entries.values()].filter((e) => e.sha256 === 'error').map((e) => e.path);
  if (r.status !== 0 && !(r.status === 1 && parsed.complete)) {
    const failed = manifestFailure(
      r,
      'the backup on the target',
      'npx zx scripts/troubleshoot.mjs check-ssh, then verify again',
    );
    return { ...base, state: 'failed', reason: failed ?? 'the manifest failed', compared: 0, problems: [] };
  }
  if (unreadable.length || !parsed.complete)
    return {
      ...base,
      state: 'failed',
      reason: `${unreadable.length} of ${parsed.entries.size} entries could not be read back on the host${parsed.complete ? '' : ' (the listing was cut short)'}: npx zx scripts/troubleshoot.mjs check-volume (the scrub's result); docs/RESTORE.md, "what verify and the scrub prove"`,
      compared: parsed.entries.size,
      problems: unreadable.slice(0, 20).map((p) => `unreadable: ${p}`),
    };
  return {
    ...base,
    state: 'readable',
    reason: `readable: ${parsed.entries.size} entries read back on the host without an error (btrfs checked each block's checksum); its local snapshot is gone, so nothing was compared`,
    compared: parsed.entries.size,
    problems: [],
  };
}

const manifestFailure = (r: RunResult, side: string, next: string): string | null => {
  if (r.status === 0 || (r.status === 1 && parseManifest(r.stdout).complete)) return null; // 1: a file could not be read (compared as 'unreadable')
  const text = (r.error?.message ?? r.stderr).trim();
  return `${side}'s manifest failed (exit ${r.status ?? r.signal}): ${text.split('\n').slice(-3).join(' / ') || 'no message'} (next: ${next})`;
};

async function verifyPair(o: {
  conn: Connection;
  subvolume: string;
  backup: Dated;
  snapshot: Dated;
  sample: number;
  seed: string | null;
  run: Run;
  say: (l: string) => void;
  program: string;
  tickMs: number;
}): Promise<SubvolumeVerify> {
  const { say, run } = o;
  const base = {
    subvolume: o.subvolume,
    backup: o.backup.path,
    snapshot: o.snapshot.path,
    newestSnapshot: o.snapshot.path,
  };
  say(`${o.subvolume}: the backup ${o.backup.path} on the target, the snapshot ${o.snapshot.path} here`);
  // the identity and the manifests are asked for at once (one ssh round trip less; the manifests run either way),
  // and reported in that order
  const sampleArgs = o.seed === null ? null : { percent: o.sample, seed: BigInt(o.seed) };
  const t0 = Date.now();
  const shows = Promise.all([
    run('btrfs', ['subvolume', 'show', o.snapshot.path]),
    runRemote(o.conn, gateLine(GATE_COMMANDS.subvolumeShow(o.backup.path)), { run, timeoutMs: 60000 }),
  ]);
  const manifests = Promise.all([
    run(
      'perl',
      [o.program, ...(sampleArgs ? ['--sample', String(o.sample), '--seed', o.seed ?? ''] : []), o.snapshot.path],
      { timeoutMs: MANIFEST_TIMEOUT_MS },
    ),
    runRemote(o.conn, gateLine(GATE_COMMANDS.manifest(o.backup.path, sampleArgs)), {
      run,
      timeoutMs: MANIFEST_TIMEOUT_MS,
    }),
  ]);
  const [localShow, remoteShow] = await shows;
  if (remoteShow.status !== 0) {
    await manifests; // (not left running behind the answer)
    const why =
      remoteShow.status === 255 || remoteShow.status === null ? sshFailureReason(remoteShow) : remoteShow.stderr.trim();
    return {
      ...base,
      state: 'failed',
      reason: `cannot read the backup on the target: ${why}`,
      compared: 0,
      differences: [],
      problems: [],
    };
  }
  const identity = checkIdentity(localShow.stdout, remoteShow.stdout);
  say(
    `  identity: ${identity.same ? `the backup is a receive of this snapshot (received UUID ${identity.receivedUuid})` : identity.reason}`,
  );
  say(
    `  manifests: this snapshot here, and the backup on the host (btrbk-manifest${sampleArgs ? ` --sample ${o.sample} --seed ${o.seed}` : ', every file'}): the host reads and hashes at its CPU baseline, this can take minutes (docs/PERFORMANCE.md) ...`,
  );
  const elapsed = (): string => {
    const sec = Math.round((Date.now() - t0) / 1000);
    return sec < 90 ? `${sec} s` : `${Math.round(sec / 60)} min`;
  };
  const tick = setInterval(() => say(`  ... manifests still running (${elapsed()})`), o.tickMs);
  tick.unref();
  const [local, remote] = await manifests.finally(() => clearInterval(tick));
  const failed = [
    manifestFailure(
      local,
      'this snapshot',
      `perl with Digest::SHA and setpriv are needed here (apt-get install perl util-linux); try: sudo perl ${o.program} --sample 1 --seed 1 ${o.snapshot.path}`,
    ),
    manifestFailure(remote, 'the backup on the target', 'npx zx scripts/troubleshoot.mjs check-ssh, then verify again'),
  ].filter((x): x is string => Boolean(x));
  const identityProblem = identity.same ? [] : [identity.reason];
  if (failed.length)
    return {
      ...base,
      state: 'failed',
      reason: failed.join('; '),
      compared: 0,
      differences: [],
      problems: identityProblem,
    };
  const cmp = compareManifests(local.stdout, remote.stdout);
  say(`  compared ${cmp.compared} entries in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const problems = [...identityProblem, ...cmp.problems];
  const n = cmp.differences.length;
  const state: VerifyState = n ? 'differences' : !identity.same ? 'not-same' : cmp.problems.length ? 'failed' : 'clean';
  const reason = {
    clean: `clean: ${cmp.compared} entries of the backup match the snapshot`,
    differences: `${n} ${n === 1 ? 'entry differs' : 'entries differ'} between the backup and the snapshot it was sent from: the backup is not what was sent, and later backups keep the damaged file until it changes here (incrementals send only changes). Next: npx zx scripts/troubleshoot.mjs check-volume (the scrub's result); docs/RESTORE.md, "what verify and the scrub prove"`,
    'not-same': `${identity.reason}; the files compared match, but it is not a complete receive of this snapshot: run a backup (npx zx scripts/backup.mjs run), then verify again`,
    failed: `the comparison is not whole: ${cmp.problems.join('; ')}; verify again`,
  }[state as 'clean' | 'differences' | 'not-same' | 'failed'];
  return { ...base, state, reason, compared: cmp.compared, differences: cmp.differences, problems };
}

/** The verify result as text. */
export function formatVerify(
  r: VerifyReport,
  c: { green: (s: string) => string; red: (s: string) => string; bold: (s: string) => string },
  { maxDifferences = 200 } = {},
): string {
  const lines: string[] = [];
  for (const v of r.subvolumes) {
    lines.push(
      `${PASSES.includes(v.state) ? c.green(`✓ ${v.state}`) : c.red(`✗ ${v.state}`)}  ${c.bold(v.subvolume)}${v.backup ? `  ${path.posix.basename(v.backup)}` : ''}`,
    );
    lines.push(`    ${v.reason}`);
    for (const p of v.problems) lines.push(`    ! ${p}`);
    for (const d of v.differences.slice(0, maxDifferences)) lines.push(`    ${describeDifference(d)}`);
    if (v.differences.length > maxDifferences)
      lines.push(`    ... and ${v.differences.length - maxDifferences} more (the first ${maxDifferences} are shown)`);
  }
  lines.push(
    r.seed === null
      ? 'sample: every file'
      : `sample: ${r.sample} %, seed ${r.seed} (the same files again: --sample ${r.sample} --seed ${r.seed})`,
  );
  return lines.join('\n');
}

/** What FILES.lastVerify holds (and status shows). */
export interface LastVerify {
  at: string;
  ok: boolean;
  sample: number;
  seed: string | null;
  subvolumes: Array<{
    subvolume: string;
    state: VerifyState;
    reason: string;
    backup: string | null;
    compared: number;
    differences: number;
  }>;
}

export function verifyRecord(r: VerifyReport): LastVerify {
  return {
    at: r.at.toISOString(),
    ok: r.ok,
    sample: r.sample,
    seed: r.seed,
    subvolumes: r.subvolumes.map((v) => ({
      subvolume: v.subvolume,
      state: v.state,
      reason: v.reason,
      backup: v.backup,
      compared: v.compared,
      differences: v.differences.length,
    })),
  };
}

/** Writes FILES.lastVerify (root's, 0644: it names paths, no secrets). */
export function recordVerify(r: VerifyReport, root = '/'): void {
  const p = under(root, FILES.lastVerify);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const tmp = `${p}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(verifyRecord(r), null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, p);
}

/** The last verify's result, or null when none ran (or the file is unreadable). */
export function readLastVerify(root = '/'): LastVerify | null {
  try {
    const v = JSON.parse(fs.readFileSync(under(root, FILES.lastVerify), 'utf8')) as LastVerify;
    return typeof v.at === 'string' && Array.isArray(v.subvolumes) ? v : null;
  } catch {
    return null;
  }
}
