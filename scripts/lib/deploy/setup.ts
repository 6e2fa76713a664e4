// The setup flow, one exported function per step: prerequisites, tfvars validation, synth/init/plan,
// plan safety, cost estimate, confirm + apply, wait for SSH + pin the host key, smoke tests, connection file and
// the btrbk.conf snippet. `--target local` replaces steps 3-7 with the local target's `up`.
// Every step reports progress through `reporter` (see consoleReporter) and fails with an OperatorError.
// Anything that reaches AWS, the engine, SSH or another library comes through `deps`, so tests inject fakes.
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { PricingClient } from '@aws-sdk/client-pricing';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run, type RunOptions, type RunResult } from '../core/process.js';
import {
  CONNECTION_KEYS,
  DEFAULT_AWS_ENV_FILE,
  DEFAULT_SSH_PORT,
  LOCAL_ENV_FILE,
  REPO_ROOT,
  deviceConnection,
  readConnection,
  validateConnection,
  writeConnection,
  type Connection,
} from '../core/connection.js';
import { palette, type CheckResult, type Palette } from '../core/report.js';
import { prepareStackDir, type Engine, type EngineResult } from './engine.js';
import { assertPrereqs, runPrereqs, type PrereqDeps, type PrereqReport } from './prereqs.js';
import { assertTfvarsValid, findBackupKey, loadTfvars, validateTfvars, type TfvarsValues } from './tfvars.js';
import { ALLOW_FLAG, assertPlanSafe, type PlanAnalysis } from './plan-safety.js';
import { costConfigFromTfvars, estimateWithPrices, type CostEstimate } from './cost.js';
import { getConsoleOutput, makeEc2Client, makePricingClient } from './aws.js';
import {
  consoleEd25519Fingerprint,
  knownHostsHost,
  knownHostsLine,
  parseConsoleHostKeys,
  parseKeyscan,
  sshKeyscan,
  tcpProbe,
  verifyScannedKey,
  writeKnownHosts,
  type ScannedKey,
} from '../remote/host-key.js';
import { HOST_IDENTITY_DIR } from '../../../user-data/host-layout.js';
import { pinnedKeys } from '../remote/ssh.js';
import { renderBtrbkConf } from './btrbk-conf.js';
import {
  bytesToSend,
  estimateFirstBackup,
  formatFirstBackup,
  sourceSizes,
  uploadMbitProblem,
  type FirstBackupEstimate,
} from './first-backup.js';
import { instanceFacts } from '../core/instance-types.js';

/** The stack's name (constructs/backup-target-stack.ts STACK_NAME): cdktf.out/stacks/<name>. */
export const STACK_NAME = 'btrbk-backup-target';
export const STATE_DIR = path.join(REPO_ROOT, 'state');
export const PLAN_FILE = path.join(STATE_DIR, 'plan.tfplan');
export const KNOWN_HOSTS_FILE = path.join(STATE_DIR, 'known_hosts');
export const SSH_WAIT_MS = 5 * 60_000;
/** After SSH answers, how long to wait for cloud-init's fingerprints on the console (they can lag minutes). */
export const CONSOLE_WAIT_MS = 10 * 60_000;
/** The smoke tests: the same checks as `troubleshoot.mjs check-ssh` and `check-volume`. */
export const SMOKE_CHECKS = Object.freeze(['check-ssh', 'check-volume'] as const);
export const REQUIRED_OUTPUTS = Object.freeze([
  'instance_id',
  'public_ip',
  'volume_id',
  'region',
  'ssh_user',
  'backup_path',
  'btrbk_target',
] as const);

// ---------------------------------------------------------------------------------------------------------
// Types

/** Progress output of the flow (consoleReporter prints it, recordingReporter records it). */
export interface Reporter {
  step(n: number, total: number, title: string): void;
  info(msg: string): void;
  detail(msg: string): void;
  ok(msg: string): void;
  warn(msg: string): void;
  fail(msg: string): void;
  /** Several lines, indented. */
  block(text: string): void;
  spinner(text: string): Spinner;
}

export interface Spinner {
  update(text: string): void;
  stop(): void;
}

/** What scripts/setup.mjs parsed from its command line. */
export interface SetupOptions {
  target: 'aws' | 'local';
  /** Apply without the prompt. */
  yes?: boolean;
  profile?: string;
  region?: string;
  /** The tfvars file (default: terraform.tfvars, else terraform.tfvars.json in cwd). */
  varFile?: string;
  /** Where the tfvars file is looked for (default: the repository root). */
  cwd?: string;
  /** The private key of ssh_public_key (default: found by its .pub in ~/.ssh). */
  sshKey?: string;
  /** The connection file to write (aws) or copy to (local). */
  envFile?: string;
  knownHosts?: string;
  expectedTransferGb?: number;
  /** The cost estimate's snapshot assumption: GiB of data on the volume (default: the whole volume). */
  dataUsedGib?: number;
  /** The cost estimate's snapshot assumption: % of the used data changed per day (default 2). */
  dailyChangePercent?: number;
  /** btrfs sources to check for noatime (and to size for the first-backup estimate). */
  sources?: string[];
  /** The person's upload rate (Mbit/s), for the first-backup estimate. */
  uploadMbit?: number;
  /** The fast lane: deploy with this instance type for the first backup (setup without it moves back). */
  firstBackupType?: string;
  allowDataVolumeReplacement?: boolean;
  /** Default: state/ in the repository (plan file, engine configuration). */
  stateDir?: string;
  /** Default: cdktf.out in the repository. */
  outdir?: string;
  stackName?: string;
}

/** The troubleshoot library's runChecks, as setup calls it. */
export type RunChecks = (conn: Connection, names: string[], deps?: { ec2?: EC2Client }) => Promise<CheckResult[]>;

export interface SmokeResult {
  /** Nothing failed and something passed. */
  ok: boolean;
  passed: number;
  failed: number;
  checks: CheckResult[];
}

/** The engine and the environment its runs use (what setup needs of prepareStackDir's result). */
export interface EngineSetup {
  engine: Engine;
  mirror: string | null;
  env: NodeJS.ProcessEnv;
}

export type PrepareEngine = (stackDir: string, opts: { requireMirror?: boolean; workDir?: string }) => EngineSetup;

/** What setup reads of the local target's up() result. */
export interface LocalUpResult {
  envFile?: string | null;
  alreadyUp?: boolean;
}

/** The local target as setup --target local uses it: its `up` (scripts/lib/local-target/local-target.ts). */
export interface LocalTargetUp {
  up(opts: { onProgress?: (line: string) => void }): Promise<LocalUpResult | undefined>;
}

/** Everything that reaches AWS, the engine, SSH or another library; tests inject fakes. */
export interface SetupDeps {
  reporter: Reporter;
  prereqDeps?: PrereqDeps;
  /** Runs the engine and the synth (core/process.ts run, or a fake in tests). */
  run?: Run;
  prepare?: PrepareEngine;
  /** Asks the apply question; resolves true for "yes". */
  prompt?: (question: string) => Promise<boolean>;
  isTTY?: boolean;
  ec2?: EC2Client;
  /** The Price List API client of the cost step (default: makePricingClient; tests pass a mocked one). */
  pricing?: PricingClient;
  consoleOutput?: (instanceId: string) => Promise<string>;
  /** The smoke tests' runner: diagnose/checks.ts's runChecks (the entry point passes it: deploy/ imports nothing of diagnose/). */
  runChecks?: RunChecks;
  probe?: (host: string, port: number) => Promise<boolean>;
  keyscan?: (host: string, port: number | string) => Promise<string>;
  sshDir?: string;
  sshWaitMs?: number;
  consoleWaitMs?: number;
  intervalMs?: number;
  /** The local target (local-target/local-target.ts), for --target local: the entry point passes it. */
  localTarget?: LocalTargetUp;
}

/** The deps of the polling steps: a deadline and a clock (tests pass a fake one). */
export interface PollDeps extends SetupDeps {
  timeoutMs?: number;
  now?: () => number;
}

/** The stack's outputs (`output -json` values); the ones in REQUIRED_OUTPUTS are strings. */
export type StackOutputs = Record<string, string>;

/** The pinned host key. `changed`: setup wrote it now (AWS flow only). `keptOnReplacement`: a replaced instance
 * presented the pinned key (the host keeps its identity on the data volume), so nothing was pinned anew. */
export interface HostKeyPin {
  fingerprint: string;
  file: string;
  changed?: boolean;
  keptOnReplacement?: boolean;
}

export interface SetupResult {
  target: 'aws' | 'local';
  envFile: string;
  connection: Connection;
  hostKey: HostKeyPin;
  smoke: SmokeResult;
  btrbkConf: string;
  /** AWS only: whether the plan was applied (false: nothing to do). */
  applied?: boolean;
  plan?: PlanAnalysis;
  cost?: CostEstimate;
  /** AWS only: the first backup's estimate, both lanes. */
  firstBackup?: FirstBackupEstimate;
  outputs?: StackOutputs;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const duration = (ms: number): string =>
  ms >= 60_000 ? `${Math.round(ms / 60_000)} minutes` : `${Math.round(ms / 1000)} seconds`;

// ---------------------------------------------------------------------------------------------------------
// Progress output

/**
 * A reporter that prints to `stream` (stderr when the entry point prints --json on stdout). `paint` colours it
 * (report.ts's palette; missing colours print plain text); a spinner animates only on a TTY.
 */
export function consoleReporter({
  stream = process.stdout,
  paint = {},
  tty = stream.isTTY,
}: { stream?: NodeJS.WritableStream & { isTTY?: boolean }; paint?: Partial<Palette>; tty?: boolean } = {}): Reporter {
  const p = { ...palette(false), ...paint };
  const write = (s: string) => stream.write(`${s}\n`);
  return {
    step: (n, total, title) => write(p.bold(p.cyan(`\n[${n}/${total}] ${title}`))),
    info: (msg) => write(`  ${msg}`),
    detail: (msg) => write(p.dim(`    ${msg}`)),
    ok: (msg) => write(`  ${p.green('✓')} ${msg}`),
    warn: (msg) => write(`  ${p.yellow('!')} ${msg}`),
    fail: (msg) => write(`  ${p.red('✗')} ${msg}`),
    block: (text) =>
      write(
        text
          .split('\n')
          .map((l) => `  ${l}`)
          .join('\n'),
      ),
    spinner(text) {
      const frames = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
      let i = 0;
      let current = text;
      const started = Date.now();
      const render = () =>
        stream.write(
          `\r  ${frames[i++ % frames.length]} ${current} ${p.dim(`${Math.round((Date.now() - started) / 1000)}s`)}\x1b[K`,
        );
      const timer = tty ? setInterval(render, 120) : null;
      if (!tty) write(`  … ${text}`);
      return {
        update(t: string) {
          current = t;
          if (!tty) write(`  … ${t}`);
        },
        stop() {
          if (timer) {
            clearInterval(timer);
            stream.write('\r\x1b[K');
          }
        },
      };
    },
  };
}

/** A reporter that records calls instead of printing them (the tests use it). */
export function recordingReporter(): Reporter & { events: unknown[][] } {
  const events: unknown[][] = [];
  const rec =
    (kind: string) =>
    (...args: unknown[]): void => {
      events.push([kind, ...args]);
    };
  return {
    events,
    step: rec('step'),
    info: rec('info'),
    detail: rec('detail'),
    ok: rec('ok'),
    warn: rec('warn'),
    fail: rec('fail'),
    block: rec('block'),
    spinner: (text: string) => {
      events.push(['spinner', text]);
      return { update: rec('spinner-update'), stop: () => {} };
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Step 2 (step 1 of the local target): prerequisites

export async function stepPrereqs(opts: SetupOptions, { reporter, prereqDeps = {} }: SetupDeps): Promise<PrereqReport> {
  const report = await runPrereqs(
    { target: opts.target, profile: opts.profile, region: opts.region, sources: opts.sources ?? [] },
    prereqDeps,
  );
  for (const c of report.checks) {
    const text = `${c.name}: ${[c.version, c.detail].filter(Boolean).join(' — ')}`;
    if (c.status === 'ok') reporter.ok(text);
    else if (c.status === 'skipped') reporter.detail(text);
    else if (c.status === 'warn') reporter.warn(`${text}${c.hint ? `\n      → ${c.hint}` : ''}`);
    else reporter.fail(`${text}${c.hint ? `\n      → ${c.hint}` : ''}`);
  }
  return assertPrereqs(report);
}

// ---------------------------------------------------------------------------------------------------------
// Step 1: tfvars

/** Loads and validates the tfvars, and finds the key setup signs in with: the private key of ssh_public_key, or with
 * devices only (ssh_public_key "") a device's (`device` set: the smoke tests and the connection file are that
 * device's, confined to backups/DEVICE). */
export function stepValidateTfvars(
  opts: SetupOptions,
  { reporter, sshDir }: SetupDeps,
): { file: string; values: TfvarsValues; sshKey: string; device?: string } {
  const { file, vars } = loadTfvars(opts.varFile, opts.cwd ?? REPO_ROOT);
  const result = validateTfvars(vars);
  for (const w of result.warnings) reporter.warn(w.message);
  const values = assertTfvarsValid(result, path.basename(file));
  const key = findBackupKey(values, { explicit: opts.sshKey, sshDir });
  checkPrivateKeyMode(key.file);
  reporter.ok(
    `${path.relative(process.cwd(), file) || file}: region ${values.aws_region}, ${values.instance_type}, data volume ${values.ebs_volume_size} GiB, SSH from ${values.allowed_ssh_cidrs.join(', ')}`,
  );
  if (!key.device) {
    reporter.ok(`backup key: ${key.file}`);
    return { file, values, sshKey: key.file };
  }
  reporter.ok(
    `backup key: ${key.file}, device ${key.device}'s (no legacy key: the smoke tests and the connection file are ${key.device}'s, which reaches only its own backups)`,
  );
  return { file, values, sshKey: key.file, device: key.device };
}

/** ssh refuses a private key readable by others; say so now rather than after a 5-minute deploy. */
export function checkPrivateKeyMode(file: string): void {
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077) {
    throw new OperatorError(`${file} is readable by other users (mode ${mode.toString(8)})`, {
      cause: 'ssh refuses to use a private key that others can read',
      next: `chmod 600 ${file}`,
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Step 3: synth, init, plan

/** Runs a command with `run` (deps.run); an OperatorError when it cannot start, a non-zero exit is the caller's to judge. */
async function runStarted(run: Run, cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.error)
    throw new OperatorError(`${path.basename(cmd)} could not run`, {
      cause: r.error.message,
      next: `check that ${cmd} is installed`,
    });
  return r;
}

const tail = (text: string | null | undefined, n = 15): string =>
  String(text ?? '')
    .trimEnd()
    .split('\n')
    .slice(-n)
    .join('\n');

/** Synthesizes the stack (the app in main.ts, run with tsx as cdktf.json says) into cdktf.out. */
export async function stepSynth(opts: SetupOptions, { reporter, run = runDefault }: SetupDeps): Promise<string> {
  const outdir = opts.outdir ?? path.join(REPO_ROOT, 'cdktf.out');
  const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
  const r = await runStarted(run, tsx, ['main.ts'], { cwd: REPO_ROOT, env: { ...process.env, CDKTF_OUTDIR: outdir } });
  if (r.status !== 0) {
    throw new OperatorError('synthesizing the stack failed', {
      details: tail(r.stderr || r.stdout, 30),
      cause: 'the CDKTF app in main.ts threw (see its message above)',
      next: 'run `npx cdktf synth` to see the full output; `npm ci` if modules are missing',
    });
  }
  const stackDir = path.join(outdir, 'stacks', opts.stackName ?? STACK_NAME);
  if (!fs.existsSync(path.join(stackDir, 'cdk.tf.json'))) {
    throw new OperatorError(`synth wrote no ${path.relative(REPO_ROOT, stackDir)}/cdk.tf.json`, {
      cause: 'the stack name changed in main.ts',
      next: 'check STACK_NAME in constructs/backup-target-stack.ts and scripts/lib/deploy/setup.ts',
    });
  }
  reporter.ok(`synthesized ${path.relative(REPO_ROOT, stackDir)}`);
  return stackDir;
}

/** Engine environment for this run: the prepared CLI config (mirror) plus AWS_PROFILE when --profile is given. */
export function prepareEngine(
  stackDir: string,
  opts: SetupOptions,
  prepare: PrepareEngine = prepareStackDir,
): EngineSetup {
  const prepared = prepare(stackDir, {
    requireMirror: false,
    workDir: path.join(opts.stateDir ?? STATE_DIR, '.engine'),
  });
  const env: NodeJS.ProcessEnv = { ...prepared.env };
  if (opts.profile) env.AWS_PROFILE = opts.profile;
  return { ...prepared, env };
}

async function engineRun(
  eng: EngineSetup,
  args: string[],
  { reporter, run = runDefault, cwd, quiet = false }: { reporter: Reporter; run?: Run; cwd: string; quiet?: boolean },
): Promise<EngineResult> {
  const r = await runStarted(run, eng.engine.path, args, {
    cwd,
    env: eng.env,
    onLine: quiet ? undefined : (l) => l.trim() && reporter.detail(l),
  });
  return { ...r, command: `${eng.engine.name} ${args.join(' ')}` };
}

/** init (with the local backend under state/) and plan -out state/plan.tfplan. */
export async function stepInitPlan(
  stackDir: string,
  tfvarsFile: string,
  opts: SetupOptions,
  { reporter, run = runDefault, prepare }: SetupDeps,
): Promise<{ eng: EngineSetup; planFile: string }> {
  fs.mkdirSync(opts.stateDir ?? STATE_DIR, { recursive: true });
  const eng = prepareEngine(stackDir, opts, prepare);
  reporter.info(
    `${eng.engine.name} ${eng.engine.version}${eng.mirror ? `, provider from the mirror ${eng.mirror}` : ''}`,
  );
  const init = await engineRun(eng, ['init', '-input=false', '-no-color'], {
    reporter,
    run,
    cwd: stackDir,
    quiet: true,
  });
  if (init.status !== 0) {
    throw new OperatorError(`${eng.engine.name} init failed`, {
      details: tail(init.stderr || init.stdout),
      cause: 'the provider could not be installed (no network and no mirror?) or the state backend is unreadable',
      next: `run it by hand: cd ${stackDir} && ${eng.engine.name} init`,
    });
  }
  reporter.ok(`${eng.engine.name} init`);
  const planFile = opts.stateDir ? path.join(opts.stateDir, path.basename(PLAN_FILE)) : PLAN_FILE;
  // the fast lane: the same stack with a larger instance_type (an in-place change; setup without it goes back)
  const typeVar = opts.firstBackupType ? [`-var=instance_type=${opts.firstBackupType}`] : [];
  const plan = await engineRun(
    eng,
    ['plan', '-input=false', '-no-color', `-var-file=${tfvarsFile}`, ...typeVar, `-out=${planFile}`],
    { reporter, run, cwd: stackDir },
  );
  if (plan.status !== 0) {
    const text = `${plan.stderr}\n${plan.stdout}`;
    if (/prevent_destroy/.test(text)) {
      throw new OperatorError('the plan would destroy a protected resource (the data volume); nothing was applied', {
        details: tail(plan.stderr, 20),
        cause:
          'a change forces a new data volume (its encryption or type; its zone is pinned once it exists), and the stack protects it with prevent_destroy',
        next: 'undo that change in terraform.tfvars; see docs/SETUP.md "Replacing the data volume" if you really mean it',
      });
    }
    throw new OperatorError(`${eng.engine.name} plan failed`, {
      details: tail(plan.stderr || plan.stdout, 25),
      cause: /credential|NoCredentialProviders|no valid credential/i.test(text)
        ? 'the engine found no AWS credentials'
        : "see the engine's message above",
      next: `fix what it names, then re-run setup (by hand: cd ${stackDir} && ${eng.engine.name} plan -var-file=${tfvarsFile})`,
    });
  }
  reporter.ok(`plan saved to ${path.relative(process.cwd(), planFile) || planFile}`);
  return { eng, planFile };
}

// ---------------------------------------------------------------------------------------------------------
// Step 4: plan safety

export async function stepPlanSafety(
  eng: EngineSetup,
  planFile: string,
  stackDir: string,
  opts: SetupOptions,
  { reporter, run = runDefault }: SetupDeps,
): Promise<PlanAnalysis> {
  const show = await engineRun(eng, ['show', '-json', '-no-color', planFile], {
    reporter,
    run,
    cwd: stackDir,
    quiet: true,
  });
  if (show.status !== 0)
    throw new OperatorError(`${eng.engine.name} show -json failed`, {
      details: tail(show.stderr),
      next: `run it by hand in ${stackDir}`,
    });
  let plan: unknown;
  try {
    plan = JSON.parse(show.stdout);
  } catch (err) {
    throw new OperatorError('the saved plan is not readable as JSON', {
      cause: (err as Error).message,
      next: "re-run setup; if it persists, run the engine's show -json by hand",
    });
  }
  const analysis = assertPlanSafe(plan, { allowDataVolumeReplacement: !!opts.allowDataVolumeReplacement });
  const c = analysis.counts;
  if (!analysis.hasChanges) reporter.ok('no changes: the deployed target matches the configuration');
  else {
    reporter.ok(
      `plan: ${c.create} to create, ${c.update} to update, ${c.replace} to replace, ${c.delete} to delete${analysis.outputChanged && !analysis.changes.length ? ' (outputs only)' : ''}`,
    );
    for (const ch of analysis.changes) reporter.detail(`${ch.address}: ${ch.description}`);
  }
  reporter.ok(
    `data volume: ${analysis.dataVolume.map((d) => d.description).join(', ') || 'not in the plan'}${analysis.dataVolumeAtRisk.length ? '' : ' — safe'}`,
  );
  for (const w of analysis.warnings) reporter.warn(w);
  return analysis;
}

// ---------------------------------------------------------------------------------------------------------
// Step 5: cost

/**
 * Prices exactly what the plan creates (its resource counts, the tfvars values) from the AWS Price List API,
 * falling back to the labelled offline table per price with the reason; prints the lines, the source and the
 * assumptions. Never fails: a missing price makes the estimate "unavailable", with why.
 */
export async function stepCost(
  values: TfvarsValues,
  opts: SetupOptions,
  { reporter, pricing }: SetupDeps,
  analysis?: PlanAnalysis,
): Promise<CostEstimate> {
  const cfg = costConfigFromTfvars(values as unknown as Record<string, unknown>, {
    resourceCounts: analysis?.resourceCounts,
    expectedTransferGb: opts.expectedTransferGb,
    usedGib: opts.dataUsedGib,
    dailyChangePercent: opts.dailyChangePercent,
  });
  const spin = reporter.spinner(`asking the AWS Price List API for ${cfg.region} prices`);
  let est: CostEstimate;
  try {
    est = await estimateWithPrices(cfg, pricing ?? makePricingClient({ profile: opts.profile }), {
      profile: opts.profile,
    });
  } finally {
    spin.stop();
  }
  if (est.fallback) reporter.warn(est.fallback);
  if (!est.available) {
    reporter.warn(`cost estimate unavailable: ${est.reason}`);
    reporter.detail(`prices: ${est.source}`);
    return est;
  }
  for (const l of est.lines) reporter.info(`${l.item.padEnd(22)} $${l.monthly.toFixed(2).padStart(7)}  ${l.detail}`);
  reporter.ok(`about $${est.total.toFixed(2)} per month in ${est.region} (on-demand, before tax)`);
  reporter.detail(`prices: ${est.source}`);
  for (const a of est.assumptions) reporter.detail(`assumes: ${a}`);
  for (const n of est.notes) reporter.detail(n);
  return est;
}

/**
 * The first backup's estimate for both lanes (the chosen type, and the fast lane), from the sources' sizes and
 * the upload rate; with --first-backup, the fast lane's hours and their cost, printed before the apply question.
 */
export async function stepFirstBackupEstimate(
  values: TfvarsValues,
  opts: SetupOptions,
  { reporter, run = runDefault }: SetupDeps,
): Promise<FirstBackupEstimate> {
  let bytes: number | null = null;
  if (opts.sources?.length) {
    try {
      bytes = bytesToSend(await sourceSizes(opts.sources, { run }));
    } catch (err) {
      if (!(err instanceof OperatorError)) throw err;
      reporter.warn(`${err.what}: ${err.details.split('\n')[0]} (next: ${err.next})`);
    }
  }
  const est = estimateFirstBackup({
    bytes,
    uploadMbit: opts.uploadMbit ?? null,
    instanceType: values.instance_type,
    fastType: opts.firstBackupType ?? null,
    region: values.aws_region,
  });
  const [head, ...rest] = formatFirstBackup(est);
  reporter.info(head);
  for (const line of rest) reporter.detail(line);
  if (opts.firstBackupType) {
    const f = est.fast;
    reporter.warn(
      `--first-backup: this apply moves the instance to ${f.instanceType} (an in-place stop and start: same instance, volume, address and host key)` +
        `${f.pricePerHour !== null ? `; it costs $${f.pricePerHour}/h while it runs (about $${f.cost!.toFixed(2)} for the estimate above, $${(f.pricePerHour * 24).toFixed(2)} per day if forgotten)` : ' (no price for it in the cost table)'}.` +
        ` When the first backup is done, run setup without --first-backup: it moves back to ${values.instance_type}.`,
    );
  }
  return est;
}

// ---------------------------------------------------------------------------------------------------------
// Step 6: confirm and apply

/** Asks "type yes"; resolves true only for "yes". */
export function promptYes(
  question: string,
  {
    input = process.stdin,
    output = process.stdout,
  }: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream } = {},
): Promise<boolean> {
  const rl = readline.createInterface({ input, output });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      resolve(answer.trim().toLowerCase() === 'yes');
    });
  });
}

/**
 * Decides whether to apply: nothing to do → false; --yes → true; no TTY → refuse; else the prompt decides.
 */
export async function stepConfirm(
  analysis: PlanAnalysis,
  opts: SetupOptions,
  { reporter, prompt = promptYes, isTTY = !!process.stdin.isTTY }: SetupDeps,
): Promise<boolean> {
  if (!analysis.hasChanges) {
    reporter.ok('nothing to apply');
    return false;
  }
  if (opts.yes) {
    reporter.ok('--yes given: applying without a prompt');
    return true;
  }
  if (!isTTY) {
    throw new OperatorError('setup needs a confirmation to apply, and there is no terminal to ask', {
      cause: 'stdin is not a TTY (a pipe, CI or cron) and --yes was not given',
      next: 'run it in a terminal, or re-run with --yes once you have read the plan and the cost above',
    });
  }
  const ok = await prompt('  Apply this plan? Only "yes" is accepted: ');
  if (!ok) {
    throw new OperatorError('not applied: the plan was not confirmed', {
      cause: 'the answer was not "yes"',
      next: 're-run setup when you want to apply (the plan is made again)',
    });
  }
  return true;
}

export async function stepApply(
  eng: EngineSetup,
  planFile: string,
  stackDir: string,
  { reporter, run = runDefault }: SetupDeps,
): Promise<void> {
  const r = await engineRun(eng, ['apply', '-input=false', '-no-color', planFile], { reporter, run, cwd: stackDir });
  if (r.status !== 0) {
    throw new OperatorError(`${eng.engine.name} apply failed`, {
      details: tail(r.stderr || r.stdout, 25),
      cause: /Saved plan is stale/i.test(r.stderr)
        ? 'the state changed since the plan was made'
        : "see the engine's message above (quota, permissions, capacity in the zone)",
      next: 're-run setup: it plans again from the current state; nothing already created is lost',
    });
  }
  reporter.ok('applied');
}

/** Reads the stack outputs (`output -json`), checking the ones the scripts need are there. */
export async function stepOutputs(
  eng: EngineSetup,
  stackDir: string,
  { reporter, run = runDefault }: SetupDeps,
): Promise<StackOutputs> {
  const r = await engineRun(eng, ['output', '-json', '-no-color'], { reporter, run, cwd: stackDir, quiet: true });
  let out: Record<string, { value?: unknown } | null> = {};
  try {
    out = r.status === 0 ? JSON.parse(r.stdout || '{}') : {};
  } catch {
    /* reported below */
  }
  const values: Record<string, unknown> = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v?.value]));
  const missing = REQUIRED_OUTPUTS.filter((k) => values[k] === undefined || values[k] === null || values[k] === '');
  if (missing.length) {
    throw new OperatorError(`the stack outputs lack ${missing.join(', ')}`, {
      details: tail(r.stderr),
      cause: 'nothing has been applied yet, or the state under state/ belongs to another configuration',
      next: 're-run setup and confirm the apply; check state/terraform.tfstate',
    });
  }
  // The stack declares these outputs as strings (constructs/backup-target-stack.ts).
  return values as StackOutputs;
}

// ---------------------------------------------------------------------------------------------------------
// Step 7: wait for SSH, pin the host key

/** Polls TCP then ssh-keyscan until the host offers its ed25519 key; returns the scanned keys. */
export async function stepWaitForSsh(
  host: string,
  port: number,
  {
    reporter,
    timeoutMs = SSH_WAIT_MS,
    intervalMs = 5000,
    probe = tcpProbe,
    keyscan = sshKeyscan,
    now = Date.now,
  }: PollDeps,
): Promise<ScannedKey[]> {
  const deadline = now() + timeoutMs;
  const spin = reporter.spinner(`waiting for SSH on ${host}:${port}`);
  try {
    let last = 'no answer yet';
    while (now() < deadline) {
      if (await probe(host, port)) {
        spin.update(`SSH port open on ${host}:${port}; reading its host key`);
        const keys = parseKeyscan(await keyscan(host, port)).filter((k) => k.keyType === 'ssh-ed25519');
        if (keys.length) {
          spin.stop();
          reporter.ok(`SSH answers on ${host}:${port}`);
          return keys;
        }
        last = 'the port is open but sshd sent no ed25519 key yet';
      }
      await sleep(intervalMs);
    }
    spin.stop();
    throw new OperatorError(`SSH on ${host}:${port} did not answer within ${duration(timeoutMs)}`, {
      cause: `${last}; the instance may still be booting, the security group may not allow your address, or the boot script failed`,
      next: 'check allowed_ssh_cidrs holds your address, then: npx zx scripts/troubleshoot.mjs check-aws and check-logs; re-running setup resumes here',
    });
  } catch (err) {
    spin.stop();
    throw err;
  }
}

/**
 * Pins the host key. First deploy (nothing pinned for the host): the scanned key is accepted only when it matches the
 * fingerprint on the instance's console (retrying while the console has none). A pinned key (a re-run, or a replaced
 * instance): the host must present it; it keeps its identity on the data volume, so no new pinning step
 * (expectPinnedKey).
 */
export async function stepPinHostKey(
  {
    host,
    port,
    instanceId,
    scanned,
    knownHostsFile = KNOWN_HOSTS_FILE,
    previousInstanceId,
  }: {
    host: string;
    port: number;
    instanceId: string;
    scanned: ScannedKey[];
    knownHostsFile?: string;
    previousInstanceId?: string;
  },
  deps: PollDeps & { consoleOutput: (instanceId: string) => Promise<string> },
): Promise<HostKeyPin & { changed: boolean }> {
  const pinned = fs.existsSync(knownHostsFile)
    ? pinnedKeys(fs.readFileSync(knownHostsFile, 'utf8'), host, port).filter((k) => k.keyType === 'ssh-ed25519')
    : [];
  if (pinned.length)
    return expectPinnedKey({ host, port, instanceId, scanned, knownHostsFile, previousInstanceId, pinned }, deps);
  const { reporter, consoleOutput, timeoutMs = CONSOLE_WAIT_MS, intervalMs = 15_000, now = Date.now } = deps;
  const deadline = now() + timeoutMs;
  const spin = reporter.spinner(`reading ${instanceId}'s console output for its host key fingerprints`);
  try {
    for (;;) {
      const text = await consoleOutput(instanceId);
      const v = verifyScannedKey(scanned, text, { host, instanceId });
      if (v.ok) {
        spin.stop();
        writeKnownHosts(knownHostsFile, [knownHostsLine(host, port, v.key.keyType, v.key.blob)]);
        reporter.ok(
          `host key ${v.fingerprint} matches the console; pinned in ${path.relative(process.cwd(), knownHostsFile) || knownHostsFile}`,
        );
        return { fingerprint: v.fingerprint, file: knownHostsFile, changed: true };
      }
      if (now() >= deadline) break;
      spin.update(`console output of ${instanceId} has no host key fingerprints yet (it lags the boot by minutes)`);
      await sleep(intervalMs);
    }
  } finally {
    spin.stop();
  }
  throw new OperatorError(
    `the console output of ${instanceId} shows no host key fingerprints after ${duration(timeoutMs)}; host key not pinned`,
    {
      cause: 'cloud-init has not printed them yet, or the image does not print them (keys_to_console disabled)',
      next: `re-run setup in a few minutes (no changes to apply: it resumes here); or compare by hand: aws ec2 get-console-output --latest --instance-id ${instanceId} with ssh-keyscan -t ed25519 ${host} | ssh-keygen -lf -`,
    },
  );
}

/**
 * A host whose key is pinned already must present that key: the host keeps its SSH identity on the data volume
 * (user-data/host-identity.sh), so a replaced instance answers with it too, without a new pinning step. Until a
 * replaced instance's boot script has put the kept key back (a minute or two after sshd first answers) it presents
 * its image's own new key: the scan is repeated until the pinned key appears, or the console (which cloud-init writes
 * after the boot script) shows another key: then the host really has a new identity, and that is a loud stop, never
 * a silent re-pin.
 */
async function expectPinnedKey(
  {
    host,
    port,
    instanceId,
    scanned,
    knownHostsFile,
    previousInstanceId,
    pinned,
  }: {
    host: string;
    port: number;
    instanceId: string;
    scanned: ScannedKey[];
    knownHostsFile: string;
    previousInstanceId?: string;
    pinned: Array<{ fingerprint: string }>;
  },
  {
    reporter,
    consoleOutput,
    keyscan = sshKeyscan,
    timeoutMs = CONSOLE_WAIT_MS,
    intervalMs = 15_000,
    now = Date.now,
  }: PollDeps & { consoleOutput: (instanceId: string) => Promise<string> },
): Promise<HostKeyPin & { changed: boolean }> {
  const replaced = Boolean(previousInstanceId && previousInstanceId !== instanceId);
  const file = path.relative(process.cwd(), knownHostsFile) || knownHostsFile;
  let offered = scanned;
  const accept = (): (HostKeyPin & { changed: boolean }) | null => {
    const same = pinned.find((k) => offered.some((s) => s.fingerprint === k.fingerprint));
    if (!same) return null;
    reporter.ok(
      replaced
        ? `the replaced instance ${instanceId} (was ${previousInstanceId}) presents the pinned host key ${same.fingerprint}: it kept its identity on the data volume, no new pinning step`
        : `host key already pinned and unchanged: ${same.fingerprint}`,
    );
    return {
      fingerprint: same.fingerprint,
      file: knownHostsFile,
      changed: false,
      ...(replaced ? { keptOnReplacement: true } : {}),
    };
  };
  const now0 = accept();
  if (now0) return now0;
  const deadline = now() + timeoutMs;
  let consoleFingerprint: string | null = null;
  const spin = reporter.spinner(
    `${host} presents another host key than the one pinned in ${file}: waiting for the boot script to put the kept key back`,
  );
  try {
    for (;;) {
      consoleFingerprint = consoleEd25519Fingerprint(parseConsoleHostKeys(await consoleOutput(instanceId)));
      // the console shows the keys once the boot script has run (cloud-init runs keys_to_console after scripts_user):
      // another key there is the host's identity now
      if (consoleFingerprint && !pinned.some((k) => k.fingerprint === consoleFingerprint)) break;
      if (now() >= deadline) break;
      await sleep(intervalMs);
      offered = parseKeyscan(await keyscan(host, port)).filter((k) => k.keyType === 'ssh-ed25519');
      const later = accept();
      if (later) return later;
    }
  } finally {
    spin.stop();
  }
  const newIdentity = Boolean(consoleFingerprint && offered.some((k) => k.fingerprint === consoleFingerprint));
  throw new OperatorError(
    `the host key ${host} presents is NOT the one pinned in ${file}: not connecting, nothing re-pinned`,
    {
      details: [
        `pinned:  ${pinned.map((k) => k.fingerprint).join(', ')}`,
        `offered: ${offered.map((k) => k.fingerprint).join(', ') || '(no ed25519 key)'}`,
        `console of ${instanceId}: ${consoleFingerprint ?? '(no fingerprints yet)'}`,
      ].join('\n'),
      cause: newIdentity
        ? `the instance has a new SSH identity (its console shows the offered key): its data volume holds no kept host key (a new volume, a snapshot from before the host kept its key, or ${HOST_IDENTITY_DIR} was removed)`
        : `something other than the instance answers at ${host} (possible man-in-the-middle), or the instance's boot script did not finish (it puts the kept key back)`,
      next: newIdentity
        ? `if you know why the identity changed, pin the new key after this console check: mv ${file} ${file}.old && npx zx scripts/setup.mjs; then give every machine that backs up here the new known_hosts. If you do not know why, do not connect: look at the instance's boot log in its console (aws ec2 get-console-output --latest --instance-id ${instanceId})`
        : `do not connect; compare by hand from another network: aws ec2 get-console-output --latest --instance-id ${instanceId} (its boot log and the SSH HOST KEY FINGERPRINTS block) with ssh-keyscan -t ed25519 ${host} | ssh-keygen -lf -; re-run setup when the host presents the pinned key`,
    },
  );
}

// ---------------------------------------------------------------------------------------------------------
// Step 8: smoke tests, connection file, next steps

/** The instance id in the connection file an earlier setup wrote (it tells a replaced instance), if any. */
function previousInstanceId(envFile: string): string | undefined {
  if (!fs.existsSync(envFile)) return undefined;
  try {
    return readConnection(envFile).instanceId;
  } catch {
    return undefined; // an unreadable old file: the pinned key is still checked, only the message is plainer
  }
}

/** The connection object setup writes, from the stack outputs. */
export function connectionFromOutputs(
  outputs: StackOutputs,
  { sshKey, knownHostsFile = KNOWN_HOSTS_FILE, device }: { sshKey: string; knownHostsFile?: string; device?: string },
): Connection {
  const conn = validateConnection(
    {
      host: outputs.public_ip,
      port: DEFAULT_SSH_PORT,
      user: outputs.ssh_user,
      keyFile: sshKey,
      knownHostsFile,
      targetUrl: outputs.btrbk_target,
      backupRoot: outputs.backup_path,
      instanceId: outputs.instance_id,
      volumeId: outputs.volume_id,
      region: outputs.region,
    },
    'stack outputs',
  );
  return device ? deviceConnection(conn, device) : conn;
}

/** Runs the smoke tests (SMOKE_CHECKS) through the troubleshoot library's runChecks. */
export async function stepSmokeTests(conn: Connection, { reporter, runChecks, ec2 }: SetupDeps): Promise<SmokeResult> {
  if (!runChecks)
    throw new OperatorError('setup was called without its smoke tests', {
      next: 'run it as npx zx scripts/setup.mjs (the entry point passes the troubleshoot checks)',
    });
  const checks = await runChecks(conn, [...SMOKE_CHECKS], ec2 ? { ec2 } : {});
  let passed = 0;
  let failed = 0;
  for (const c of checks) {
    for (const t of c.results) {
      const line = `${c.check}: ${t.name}${t.detail ? ` — ${t.detail}` : ''}`;
      if (t.ok) {
        passed += 1;
        (t.warn ? reporter.warn : reporter.ok)(line);
      } else {
        failed += 1;
        reporter.fail(line);
        if (t.cause) reporter.detail(`cause: ${t.cause}`);
        if (t.next) reporter.detail(`next:  ${t.next}`);
      }
    }
  }
  (failed ? reporter.fail : reporter.ok)(`smoke tests: ${passed} passed, ${failed} failed`);
  return { ok: failed === 0 && passed > 0, passed, failed, checks };
}

/**
 * What AWS keeps when the host cannot (the stack's snapshot, recycle-bin and alarm outputs), as summary lines:
 * [level, text]. A stack without these outputs (an older state) gives none.
 */
export function protectionSummary(outputs: StackOutputs, values: TfvarsValues): Array<['ok' | 'warn', string]> {
  const lines: Array<['ok' | 'warn', string]> = [];
  if (!('backup_alarm_name' in outputs)) return lines;
  if (outputs.snapshot_policy_id) {
    lines.push([
      'ok',
      `snapshots: Data Lifecycle Manager policy ${outputs.snapshot_policy_id} snapshots the data volume every ${values.snapshot_interval_hours} h and keeps ${values.snapshot_retain_count} (find them: docs/RESTORE.md)`,
    ]);
  } else
    lines.push([
      'warn',
      'snapshots: none (snapshot_retain_count = 0): if the data volume is lost, the backups are lost with it',
    ]);
  if (outputs.recycle_bin_rule_scope === 'region') {
    lines.push([
      'warn',
      `recycle bin: rule ${outputs.recycle_bin_rule_id} keeps EVERY EBS snapshot deleted in ${outputs.region} for ${values.recycle_bin_days} days; hashicorp/aws 5.100.0 does not lock it: lock it with  aws rbin lock-rule --region ${outputs.region} --identifier ${outputs.recycle_bin_rule_id} --lock-configuration 'UnlockDelay={UnlockDelayValue=${values.recycle_bin_lock_days},UnlockDelayUnit=DAYS}'  (docs/RESTORE.md "Recycle Bin lock")`,
    ]);
  } else if (outputs.recycle_bin_rule_id) {
    lines.push([
      'ok',
      `recycle bin: a deleted snapshot stays recoverable for ${values.recycle_bin_days} days (rule ${outputs.recycle_bin_rule_id})`,
    ]);
  }
  if (!outputs.backup_alarm_name) {
    lines.push(['warn', 'alarm: none (backup_alarm_hours = 0): nobody is told when backups stop arriving']);
    return lines;
  }
  const alarm = `alarm: ${outputs.backup_alarm_name} fires after ${values.backup_alarm_hours} h without a completed backup (the host reports each one)`;
  if (outputs.alert_email) {
    lines.push(['ok', `${alarm}; it mails ${outputs.alert_email} (SNS topic ${outputs.alert_topic_arn})`]);
    lines.push([
      'warn',
      `confirm the subscription: AWS mailed a confirmation link to ${outputs.alert_email} ("AWS Notification - Subscription Confirmation"); until you click it the subscription stays pending and no alarm is mailed`,
    ]);
  } else {
    lines.push([
      'warn',
      `${alarm}; alert_email is empty, so it mails nobody: see it in the CloudWatch console, or set alert_email and run setup again`,
    ]);
  }
  return lines;
}

/** The text setup prints at the end: where the connection is, the btrbk.conf snippet, what to run next. */
export function nextSteps(conn: Connection, envFile: string, { local = false }: { local?: boolean } = {}): string {
  const rel = path.relative(process.cwd(), envFile) || envFile;
  const env = envFile === DEFAULT_AWS_ENV_FILE ? '' : ` --env ${rel}`;
  return [
    `Connection: ${rel} (every script reads it${env ? `; pass${env}` : ''})`,
    `Host key pinned in ${conn.knownHostsFile} (the host keeps it on its data volume: a replaced instance answers with it); connect with: ssh -i ${conn.keyFile} -p ${conn.port} -o UserKnownHostsFile=${conn.knownHostsFile} -o StrictHostKeyChecking=yes ${conn.user}@${conn.host}`,
    'Next:',
    `  1. prove a full and an incremental transfer and a restore: npx zx scripts/roundtrip.mjs${env}`,
    `  2. diagnose anything later: npx zx scripts/troubleshoot.mjs check-all${env}`,
    `  3. protect a subvolume of this machine, with hourly backups from then on: sudo npx zx scripts/backup.mjs install --subvolume /home${env}`,
    `     (then: sudo npx zx scripts/backup.mjs status; the btrbk.conf below is what install writes, for reading)`,
    local
      ? '  (this is the local target: a container on this machine, for trying the flow; run setup without --target local for AWS)'
      : '  4. keep terraform.tfvars and state/ safe: state/ maps the stack to your AWS resources (see README "State")',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// The flows

const AWS_STEPS = 8;

/**
 * setup against AWS. deps: reporter, prereqDeps, run (command runner), prepare (engine), prompt, isTTY,
 * ec2 (EC2Client), runChecks, probe, keyscan, sshDir, sshWaitMs, consoleWaitMs.
 */
export async function runAwsSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult> {
  const { reporter } = deps;
  // terraform.tfvars first: a wrong key or a leftover placeholder is found before anything asks AWS, so a person
  // without credentials yet learns about both in the order they can fix them
  reporter.step(1, AWS_STEPS, 'Validate terraform.tfvars');
  const tf = stepValidateTfvars(opts, deps);

  reporter.step(2, AWS_STEPS, 'Prerequisites');
  await stepPrereqs({ ...opts, target: 'aws' }, deps);

  reporter.step(3, AWS_STEPS, 'Synth, init, plan');
  const stackDir = await stepSynth(opts, deps);
  const { eng, planFile } = await stepInitPlan(stackDir, tf.file, opts, deps);

  reporter.step(4, AWS_STEPS, 'Plan safety');
  const analysis = await stepPlanSafety(eng, planFile, stackDir, opts, deps);

  reporter.step(5, AWS_STEPS, 'Cost estimate');
  const cost = await stepCost(tf.values, opts, deps, analysis);
  const firstBackup = await stepFirstBackupEstimate(tf.values, opts, deps);

  reporter.step(6, AWS_STEPS, 'Confirm and apply');
  const apply = await stepConfirm(analysis, opts, deps);
  if (apply) await stepApply(eng, planFile, stackDir, deps);
  const outputs = await stepOutputs(eng, stackDir, deps);
  for (const [level, line] of protectionSummary(outputs, tf.values)) reporter[level](line);

  reporter.step(7, AWS_STEPS, 'Wait for SSH, pin the host key');
  const ec2 = deps.ec2 ?? makeEc2Client({ profile: opts.profile, region: outputs.region });
  const port = 22;
  const scanned = await stepWaitForSsh(outputs.public_ip, port, { ...deps, timeoutMs: deps.sshWaitMs ?? SSH_WAIT_MS });
  const knownHostsFile = opts.knownHosts ?? KNOWN_HOSTS_FILE;
  const envFile = opts.envFile ?? DEFAULT_AWS_ENV_FILE;
  const pin = await stepPinHostKey(
    {
      host: outputs.public_ip,
      port,
      instanceId: outputs.instance_id,
      scanned,
      knownHostsFile,
      previousInstanceId: previousInstanceId(envFile),
    },
    {
      ...deps,
      timeoutMs: deps.consoleWaitMs ?? CONSOLE_WAIT_MS,
      consoleOutput: deps.consoleOutput ?? ((id) => getConsoleOutput(ec2, id, { profile: opts.profile })),
    },
  );

  reporter.step(8, AWS_STEPS, 'Smoke tests, connection file');
  const conn = connectionFromOutputs(outputs, { sshKey: tf.sshKey, knownHostsFile, device: tf.device });
  const smoke = await stepSmokeTests(conn, { ...deps, ec2 });
  writeConnection(envFile, conn, 'Written by scripts/setup.mjs; read by every script in scripts/.');
  reporter.ok(`wrote ${path.relative(process.cwd(), envFile) || envFile}`);
  return {
    target: 'aws',
    applied: apply,
    plan: analysis,
    cost,
    firstBackup,
    outputs,
    hostKey: pin,
    smoke,
    envFile,
    connection: conn,
    btrbkConf: renderBtrbkConf(conn, {
      generatedAt: new Date().toISOString().slice(0, 10),
      appendOnly: String(tf.values.append_only ?? true) !== 'false',
    }),
  };
}

const LOCAL_STEPS = 4;

/**
 * Verifies the local target's pinned host key: the connection names a known_hosts file holding an ed25519 key
 * for [host]:port, and the key the target offers now is that key.
 */
export async function verifyPinnedHostKey(
  conn: Connection,
  { keyscan = sshKeyscan }: { keyscan?: (host: string, port: number | string) => Promise<string> } = {},
): Promise<HostKeyPin> {
  const { host, port, knownHostsFile: file } = conn;
  if (!file || !fs.existsSync(file)) {
    throw new OperatorError('the connection has no pinned known_hosts file', {
      cause: `${CONNECTION_KEYS.knownHostsFile}=${file || '(empty)'}`,
      next: 'run `npx zx scripts/local-target.mjs up` again to write it',
    });
  }
  const want = knownHostsHost(host, port);
  const pinned = pinnedKeys(fs.readFileSync(file, 'utf8'), host, port).filter((k) => k.keyType === 'ssh-ed25519');
  if (!pinned.length) {
    throw new OperatorError(`${file} pins no ed25519 key for ${want}`, {
      next: 'run `npx zx scripts/local-target.mjs up` again to write it',
    });
  }
  const scanned = parseKeyscan(await keyscan(host, port)).filter((k) => k.keyType === 'ssh-ed25519');
  const match = scanned.find((s) => pinned.some((p) => p.fingerprint === s.fingerprint));
  if (!match) {
    throw new OperatorError(`the key ${want} offers does not match the one pinned in ${file}`, {
      details: `pinned: ${pinned.map((p) => p.fingerprint).join(', ')}\noffered: ${scanned.map((s) => s.fingerprint).join(', ') || '(nothing answered)'}`,
      cause: scanned.length
        ? 'another sshd answers on that port, or the target was rebuilt'
        : 'the local target is not running',
      next: 'npx zx scripts/local-target.mjs status; then up',
    });
  }
  return { fingerprint: match.fingerprint, file };
}

/** setup --target local: prerequisites, `up` (steps 3-7), pinned key check, smoke tests, btrbk.conf. */
export async function runLocalSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult> {
  const { reporter } = deps;
  reporter.step(1, LOCAL_STEPS, 'Prerequisites (local target)');
  await stepPrereqs({ ...opts, target: 'local' }, deps);

  reporter.step(2, LOCAL_STEPS, 'Local target up (instead of synth, plan, apply and host key pinning on AWS)');
  const lt = deps.localTarget;
  if (!lt)
    throw new OperatorError('setup --target local was called without the local target', {
      next: 'run it as npx zx scripts/setup.mjs --target local (the entry point passes the local target library)',
    });
  const spin = reporter.spinner('starting the local target (the first run builds a Debian rootfs: minutes)');
  let upResult: LocalUpResult | undefined;
  try {
    upResult = await lt.up({
      onProgress: (m: string) => spin.update(String(m).split('\n')[0].slice(0, 100)),
    });
  } finally {
    spin.stop();
  }
  // The local target writes its own connection file; with --env, setup copies it there (validated).
  const written = typeof upResult?.envFile === 'string' ? upResult.envFile : LOCAL_ENV_FILE;
  const conn = readConnection(written);
  let envFile = written;
  if (opts.envFile && path.resolve(opts.envFile) !== path.resolve(written)) {
    envFile = writeConnection(
      path.resolve(opts.envFile),
      conn,
      `Copied by scripts/setup.mjs --target local from ${written}.`,
    );
  }
  reporter.ok(
    `local target ${upResult?.alreadyUp ? 'already up' : 'up'}: ${conn.user}@${conn.host}:${conn.port} (${conn.instanceId}), ${path.relative(process.cwd(), envFile) || envFile}`,
  );

  reporter.step(3, LOCAL_STEPS, 'Pinned host key');
  const pin = await verifyPinnedHostKey(conn, deps);
  reporter.ok(`the target offers the pinned key ${pin.fingerprint} (${pin.file})`);

  reporter.step(4, LOCAL_STEPS, 'Smoke tests');
  const smoke = await stepSmokeTests(conn, deps);
  return {
    target: 'local',
    envFile,
    connection: conn,
    hostKey: pin,
    smoke,
    btrbkConf: renderBtrbkConf(conn, { generatedAt: new Date().toISOString().slice(0, 10) }),
  };
}

/** Entry for scripts/setup.mjs: runs the flow for opts.target. Failed smoke tests are in the result (smoke.ok). */
export async function runSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult> {
  const result = opts.target === 'local' ? await runLocalSetup(opts, deps) : await runAwsSetup(opts, deps);
  return result;
}

/** Refuses unknown targets and mistyped safety flags early (the allow flag must be spelled out). */
export function checkOptions<T extends Partial<SetupOptions>>(opts: T): T {
  if (opts.target !== 'aws' && opts.target !== 'local') {
    throw new OperatorError(`unknown --target ${opts.target}`, {
      next: 'use --target aws (the default) or --target local',
    });
  }
  if (
    opts.expectedTransferGb !== undefined &&
    !(Number.isFinite(opts.expectedTransferGb) && opts.expectedTransferGb >= 0)
  ) {
    throw new OperatorError('--expected-transfer-gb must be a number of GB per month (0 or more)', {
      next: 'e.g. --expected-transfer-gb 50',
    });
  }
  if (opts.dataUsedGib !== undefined && !(Number.isFinite(opts.dataUsedGib) && opts.dataUsedGib >= 0)) {
    throw new OperatorError('--data-used-gib must be a number of GiB (0 or more)', {
      next: 'e.g. --data-used-gib 40: how much data the backups will hold',
    });
  }
  if (
    opts.dailyChangePercent !== undefined &&
    !(Number.isFinite(opts.dailyChangePercent) && opts.dailyChangePercent >= 0 && opts.dailyChangePercent <= 100)
  ) {
    throw new OperatorError('--daily-change-percent must be a percentage (0 to 100)', {
      next: 'e.g. --daily-change-percent 1: the share of the backed-up data that changes per day',
    });
  }
  const upload = uploadMbitProblem(opts.uploadMbit);
  if (upload) throw upload;
  if (opts.firstBackupType !== undefined) {
    if (opts.target === 'local')
      throw new OperatorError('--first-backup does not apply to the local target', {
        next: "the local target has no instance type; use local-target.mjs up --limits TYPE to try a type's limits",
      });
    const f = instanceFacts(opts.firstBackupType);
    if (!f || f.arch !== 'x86_64') {
      throw new OperatorError(`--first-backup ${opts.firstBackupType} is not an instance type the fast lane can use`, {
        next: 'give an x86_64 burstable type, e.g. --first-backup t3a.medium (or --first-backup alone for the default)',
      });
    }
  }
  if (opts.target === 'local' && opts.allowDataVolumeReplacement) {
    throw new OperatorError(`${ALLOW_FLAG} does not apply to the local target`, {
      next: 'the local target keeps its volume across up; `local-target.mjs down --purge` removes it',
    });
  }
  return opts;
}
