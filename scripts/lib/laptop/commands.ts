// The verbs install, uninstall and run: a few readable steps each, returning a report the entry point prints.
import fs from 'node:fs';
import process from 'node:process';
import path from 'node:path';
import { CONNECTION_KEYS, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run, type RunResult } from '../core/process.js';
import type { BackupSource } from '../deploy/btrbk-conf.js';
import {
  applyFiles,
  atimeWarning,
  fileAction,
  checkSourceNames,
  defaultSnapshotDir,
  inspectSource,
  manifestFile,
  manifestFor,
  planInstallFiles,
  readManifest,
  removeFiles,
  sourceProblem,
  targetMkdirLine,
  type FileChange,
  type Manifest,
} from './install.js';
import { convertToSubvolume, planExclusion, stampOf, type ExclusionPlan } from './exclude.js';
import { deviceTarget, FILES } from './layout.js';
import { requireDeviceKey } from './device-key.js';
import { firstSendEstimate, firstSends, type FirstSends } from './first-sends.js';
import { watchSends } from './send-progress.js';
import { isNamedInterval, randomDelaySeconds } from './units.js';
import { DEFAULT_INSTANCE_TYPE } from '../core/instance-types.js';
import type { FirstBackupEstimate } from '../deploy/first-backup.js';
import {
  daemonReload,
  disableUnits,
  enableUnits,
  ensureControlDir,
  backupCommand,
  calendarGap,
  scriptCommand,
  gateViaAlias,
  requireRoot,
  sshEffectiveSettings,
  sshSettingsProblems,
  systemdRunning,
  type StepResult,
} from './system.js';

export interface InstallRequest {
  conn: Connection;
  envFile: string;
  /** The subvolumes to protect: added to those an earlier install protects, unless `replace`. */
  subvolumes: string[];
  /** Protect only `subvolumes`: the others an earlier install protects are dropped (snapshots and backups kept). */
  replace?: boolean;
  snapshotDir?: string;
  interval: string;
  /** The device this machine is (--device, or --machine its older name); default: the connection's, else the installed one, else the short host name. */
  device?: string;
  dryRun?: boolean;
  /** Directories to leave out of the backups (nested subvolumes); plain ones converted only with makeSubvolume. */
  exclude?: string[];
  makeSubvolume?: boolean;
  /** Desktop notification on failed scheduled runs: true/false, or undefined to keep the installed choice (off). */
  notify?: boolean;
  /** Called with the exclusion plans before anything is changed (the entry point prints them). */
  onExclusions?: (plans: ExclusionPlan[]) => void;
  /** The first backup's estimate: the upload rate (Mbit/s) and the host's type (default the stack's). */
  uploadMbit?: number;
  instanceType?: string;
  /** Where the files go (tests: a temporary directory); default /. */
  root?: string;
  run?: Run;
}

export interface InstallReport {
  /** Every subvolume protected after this install (the earlier ones kept, unless --replace), with its snapshots. */
  sources: BackupSource[];
  /** Subvolumes this install added to what was protected (all of them on a first install). */
  added: string[];
  /** Subvolumes an earlier install protected that this one kept without their being named (install adds). */
  kept: string[];
  /** Subvolumes an earlier install protected that this one no longer does (--replace); their snapshots are kept. */
  dropped: BackupSource[];
  /** The device this machine backs up as. */
  device: string;
  targetDir: string;
  warnings: string[];
  files: FileChange[];
  snapshotDirsCreated: string[];
  steps: StepResult[];
  /** The host's mode as its gate says (append-only unless it says allow-delete); null when not reachable. */
  hostMode: string | null;
  dryRun: boolean;
  exclusions: ExclusionPlan[];
  /** The subvolumes whose first backup is still to come, and its estimate (null: none to come, or no sizes). */
  firstSends: FirstSends;
  firstBackup: FirstBackupEstimate | null;
  /** The type the estimate is for. */
  instanceType: string;
  /** The timer: its OnCalendar and the random delay each run waits (up to), in seconds. */
  schedule: { interval: string; randomDelaySeconds: number };
}

/** `install`: checks the subvolumes, writes what differs, creates the snapshot directories, checks ssh, enables the timer. */
export async function install(req: InstallRequest): Promise<InstallReport> {
  const root = req.root ?? '/';
  const run = req.run ?? runDefault;
  if (root === '/' && !req.dryRun)
    requireRoot('install', 'it writes /etc/btrbk, /etc/ssh/ssh_config.d, systemd units and snapshot directories');
  const conn = req.conn;
  if (!conn.knownHostsFile || !fs.existsSync(conn.knownHostsFile)) {
    throw new OperatorError('the connection file names no pinned known_hosts file', {
      cause: `${CONNECTION_KEYS.knownHostsFile} is ${conn.knownHostsFile ? `${conn.knownHostsFile}, which does not exist` : 'empty'}; backups would have no host key to check`,
      next: 'run setup (or local-target.mjs up) again: it pins the host key and writes the file',
    });
  }
  if (!fs.existsSync(conn.keyFile))
    throw new OperatorError(`the backup key ${conn.keyFile} does not exist`, {
      next: `check ${CONNECTION_KEYS.keyFile} in the connection file`,
    });
  const mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const warnings: string[] = [];
  const previous = readManifest(root);
  // what is protected after this install: the earlier install's subvolumes (as recorded), then those given; with
  // --replace only those given
  const given = req.subvolumes.map((p) => path.resolve(p));
  const earlier = previous?.sources ?? [];
  const keep = req.replace ? [] : earlier.filter((s) => !given.includes(s.subvolume));
  const sources: BackupSource[] = [];
  for (const p of [...keep.map((s) => s.subvolume), ...given]) {
    if (sources.some((s) => s.subvolume === p)) continue;
    const info = inspectSource(p, mountinfo);
    const recorded = keep.find((s) => s.subvolume === p);
    const problem = sourceProblem(info);
    if (problem && recorded)
      throw new OperatorError(`${p}, protected by the earlier install, cannot be backed up now: ${problem.what}`, {
        cause: problem.likelyCause || undefined,
        next: `to stop protecting it, install with --replace and the subvolumes to keep: ${backupCommand(`install --replace ${given.map((g) => `--subvolume ${g}`).join(' ')}`)}`,
      });
    if (problem) throw problem;
    const w = atimeWarning(info);
    if (w && !warnings.includes(w)) warnings.push(w);
    const snapshotDir = recorded
      ? recorded.snapshotDir
      : req.snapshotDir
        ? path.resolve(req.snapshotDir)
        : defaultSnapshotDir(info, inspectSource(path.dirname(info.path), mountinfo));
    sources.push({ subvolume: info.path, snapshotDir });
  }
  const added = sources.filter((s) => !earlier.some((e) => e.subvolume === s.subvolume)).map((s) => s.subvolume);
  const dropped = earlier.filter((e) => !sources.some((s) => s.subvolume === e.subvolume));
  checkSourceNames(sources);
  const stamp = stampOf(new Date());
  const exclusions = (req.exclude ?? []).map((d) =>
    planExclusion(
      inspectSource(d, mountinfo),
      sources.map((s) => s.subvolume),
      { makeSubvolume: Boolean(req.makeSubvolume), stamp },
    ),
  );
  for (const s of sources) {
    if (!fs.existsSync(s.snapshotDir)) continue;
    const i = inspectSource(s.snapshotDir, mountinfo);
    const src = inspectSource(s.subvolume, mountinfo);
    if (!i.btrfs || i.mount?.source !== src.mount?.source) {
      throw new OperatorError(
        `the snapshot directory ${s.snapshotDir} is not on the btrfs filesystem of ${s.subvolume}`,
        {
          cause: 'a snapshot is made on the filesystem of its subvolume',
          next: 'pick a --snapshot-dir on that filesystem',
        },
      );
    }
  }
  const { device, targetDir } = deviceTarget(conn, req.device, previous?.device ?? previous?.machine);
  const btrbk = ['/usr/bin/btrbk', '/usr/local/bin/btrbk', '/usr/sbin/btrbk'].find((b) => fs.existsSync(b));
  if (!btrbk) throw new OperatorError('btrbk is not installed', { next: 'sudo apt-get install btrbk (0.32 or newer)' });

  // the host's mode and the key's device, through the gate with the connection's own settings (the installed ones
  // do not exist yet): a key the target refuses, or another device's key, stops here, before anything is written
  const { mode: hostMode, check: keyCheck } = await requireDeviceKey(conn, device, { run, verb: 'install' });
  if (hostMode === null)
    warnings.push(unreachableWarning(conn, req.envFile, keyCheck.state === 'unreachable' ? keyCheck.reason : ''));
  // the first backup's estimate, for the subvolumes with no backup there yet (all of them when it did not answer)
  const sends = await firstSends({
    conn,
    targetDir,
    subvolumes: sources.map((s) => s.subvolume),
    ask: hostMode !== null,
    reason: 'the target did not answer',
    run,
  });
  const instanceType = req.instanceType ?? previous?.instanceType ?? DEFAULT_INSTANCE_TYPE;
  const uploadMbit = req.uploadMbit ?? previous?.uploadMbit;
  const firstBackup = firstSendEstimate(sends, { uploadMbit: uploadMbit ?? null, instanceType });

  // the timer's random delay scales with the interval (a sixth, at most 1 h): an OnCalendar expression's from systemd
  const randomDelay = randomDelaySeconds(
    req.interval,
    isNamedInterval(req.interval) ? null : await calendarGap(req.interval, { run }),
  );
  const inputs = {
    conn,
    envFile: req.envFile,
    machine: device,
    device,
    targetDir,
    sources,
    interval: req.interval,
    randomDelay,
    appendOnly: hostMode !== 'allow-delete',
    knownHosts: fs.readFileSync(conn.knownHostsFile, 'utf8'),
    identity: fs.readFileSync(conn.keyFile, 'utf8'),
    btrbk,
    notify: req.notify ?? previous?.notify ?? false,
    instanceType: req.instanceType ?? previous?.instanceType,
    uploadMbit,
  };
  const planned = planInstallFiles(inputs);
  const createdBefore = previous?.createdSnapshotDirs ?? [];
  const toCreate = [...new Set(sources.map((s) => s.snapshotDir))].filter((d) => !fs.existsSync(d));
  const report: InstallReport = {
    sources,
    added,
    kept: keep.map((s) => s.subvolume),
    dropped,
    device,
    targetDir,
    warnings,
    files: [],
    snapshotDirsCreated: [],
    steps: [],
    hostMode,
    dryRun: Boolean(req.dryRun),
    exclusions,
    firstSends: sends,
    firstBackup,
    instanceType,
    schedule: { interval: req.interval, randomDelaySeconds: randomDelay },
  };
  req.onExclusions?.(exclusions);
  if (req.dryRun) {
    report.files = planned.map((f) => ({ path: f.path, action: fileAction(root, f) }));
    report.snapshotDirsCreated = toCreate;
    return report;
  }
  for (const x of exclusions) await convertToSubvolume(x, { run });
  for (const d of toCreate) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  report.snapshotDirsCreated = toCreate;
  const manifest: Manifest = manifestFor(
    inputs,
    planned,
    [...new Set([...createdBefore, ...toCreate])],
    previous?.installedAt ?? new Date().toISOString(),
  );
  report.files = applyFiles(root, planned);
  // files of an earlier install that this one no longer writes
  const stale = (previous?.files ?? []).filter((f) => !manifest.files.includes(f));
  report.files.push(...removeFiles(root, stale));
  // the manifest changes only when something in it did (installedAt stays the first install's)
  report.files.push(...applyFiles(root, [manifestFile(manifest)]));
  if (root !== '/') return report;

  ensureControlDir();
  const g = await sshEffectiveSettings({ run });
  const problems = sshSettingsProblems(g, {
    host: conn.host,
    port: String(conn.port),
    user: conn.user,
  });
  report.steps.push({
    what: `ssh reads ${FILES.sshConfig} (ssh -G)`,
    ok: problems.length === 0,
    detail: problems.length
      ? `${problems.join('; ')} — a setting in root's ~/.ssh/config or an earlier /etc/ssh/ssh_config.d file wins over it; remove that Host/Match block`
      : '',
  });
  const check = await run(btrbk, ['-c', FILES.btrbkConf, 'list', 'config']);
  report.steps.push({
    what: `btrbk reads ${FILES.btrbkConf}`,
    ok: check.status === 0,
    detail: (check.stderr || '').trim(),
  });
  if (hostMode !== null) {
    const mk = await gateViaAlias(targetMkdirLine(targetDir), { run });
    report.steps.push({
      what: `the target directory ${targetDir} (through the gate, with the installed ssh settings)`,
      ok: mk.status === 0,
      detail: sshFailure(mk),
    });
  }
  if (systemdRunning()) {
    report.steps.push(...(await enableUnits({ run })));
  } else {
    report.warnings.push(
      'systemd is not running on this machine: the units are written but not enabled; run `systemctl enable --now btrbk-aws.timer` where systemd runs, or `backup.mjs run` by hand',
    );
  }
  return report;
}

/**
 * Install went on without the target: which address and port, why (ssh's reason: refused, a timeout, no route), what
 * was installed, and what to run next.
 */
export function unreachableWarning(conn: Connection, envFile: string, reason: string): string {
  const check = scriptCommand('troubleshoot.mjs', `check-ssh --env ${envFile}`, { root: false });
  // ssh's reason without its own next step (this one names the connection file)
  const why = reason
    .split(scriptCommand('troubleshoot.mjs', 'check-ssh', { root: false }))
    .join('')
    .replace(/(,? then|[:;,])?\s*$/, '');
  return `the target ${conn.user}@${conn.host} port ${conn.port} did not answer${why ? `: ${why}` : ''}. Installed anyway, as for an append-only host (btrbk never deletes there): the timer's runs back up once it answers. Next: ${check}, then ${backupCommand('run')}`;
}

function sshFailure(r: RunResult): string {
  if (r.status === 0) return '';
  const text = (r.error?.message ?? r.stderr).trim();
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION/.test(text))
    return `${text}\nthe host's key is not the pinned one: npx zx scripts/troubleshoot.mjs check-ssh`;
  return text.split('\n').slice(-3).join('\n');
}

export interface UninstallReport {
  files: FileChange[];
  steps: StepResult[];
  /** Snapshot directories left in place (they hold snapshots; delete them yourself if you want). */
  keptSnapshotDirs: string[];
  targetDir: string | null;
  installed: boolean;
}

/** `uninstall`: stops and disables the units, removes the files install wrote; snapshots and backups stay. */
export async function uninstall({
  root = '/',
  run = runDefault,
}: { root?: string; run?: Run } = {}): Promise<UninstallReport> {
  if (root === '/') requireRoot('uninstall', 'it removes files under /etc and stops systemd units');
  const m = readManifest(root);
  const steps: StepResult[] = [];
  if (root === '/' && systemdRunning()) steps.push(...(await disableUnits({ run })));
  const files = [
    ...new Set([...(m ? m.files : Object.values(FILES).filter((f) => f !== FILES.dir)), FILES.lastVerify]),
  ];
  const changes = removeFiles(root, files.filter((f) => f !== FILES.manifest).concat(FILES.manifest));
  if (root === '/' && systemdRunning()) steps.push(await daemonReload({ run }));
  return {
    files: changes,
    steps,
    keptSnapshotDirs: [...new Set((m?.sources ?? []).map((s) => s.snapshotDir))],
    targetDir: m?.targetDir ?? null,
    installed: Boolean(m),
  };
}

/** The settings status, list, run and restore use: --env's connection, else the installed one, else the default file. */
export function installedOrNull(root = '/'): Manifest | null {
  return readManifest(root);
}

/**
 * `run`: btrbk run in the foreground, then its summary. With `progress`, a line per send shows bytes and rate, and
 * the ETA of a full send whose size `fullSizes` gives (by snapshot name); a closing line says what each moved.
 */
export async function runBackup({
  run = runDefault,
  progress = true,
  fullSizes = new Map(),
}: { run?: Run; progress?: boolean; fullSizes?: ReadonlyMap<string, number> } = {}): Promise<RunResult> {
  requireRoot('run', 'btrbk snapshots subvolumes and reads the installed backup key, both root only');
  const m = readManifest('/');
  if (!m) throw new OperatorError('nothing is installed', { next: backupCommand('install --subvolume /home') });
  ensureControlDir();
  // the target directory, as the service's ExecStartPre makes it (a failure here shows again in btrbk's run)
  await gateViaAlias(targetMkdirLine(m.targetDir), { run });
  // the progress comes from the running sends (send-progress.ts), not btrbk's --progress: that needs mbuffer and a
  // terminal, and shows no ETA
  const watchers: Array<ReturnType<typeof watchSends>> = [];
  try {
    // btrbk's lines are passed on as they come (stdout and stderr alike, to stdout) and kept: a failed run names them
    return await run(m.btrbk, ['-c', FILES.btrbkConf, 'run'], {
      onLine: (l) => process.stdout.write(`${l}\n`),
      onStart: progress
        ? (pid) => {
            watchers.push(watchSends({ root: pid, fullSizes }));
          }
        : undefined,
    });
  } finally {
    // every send's closing line, before btrbk's summary is judged
    for (const w of watchers) await w.stop();
  }
}
