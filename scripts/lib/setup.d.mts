import type { EC2Client } from '@aws-sdk/client-ec2';
import type { PrereqDeps, PrereqReport } from './prereqs.mjs';
import type { PlanAnalysis } from './plan-safety.mjs';
import type { CostEstimate } from './cost.mjs';
import type { ScannedKey } from './host-key.mjs';
import type { Engine } from './engine.mjs';

export interface Reporter {
  step(n: number, total: number, title: string): void;
  info(msg: string): void;
  detail(msg: string): void;
  ok(msg: string): void;
  warn(msg: string): void;
  fail(msg: string): void;
  block(text: string): void;
  spinner(text: string): { update(text: string): void; stop(): void };
}
export interface SetupOptions {
  target: 'aws' | 'local';
  yes?: boolean;
  profile?: string;
  region?: string;
  varFile?: string;
  cwd?: string;
  sshKey?: string;
  envFile?: string;
  knownHosts?: string;
  expectedTransferGb?: number;
  sources?: string[];
  allowDataVolumeReplacement?: boolean;
  stateDir?: string;
  outdir?: string;
  stackName?: string;
  localTargetOptions?: Record<string, unknown>;
}
export interface RunResult { status: number | null; stdout: string; stderr: string }
export type Runner = (cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; input?: string }) => Promise<RunResult>;
export interface CheckTest { name: string; ok: boolean; detail?: string; cause?: string; next?: string; warn?: boolean }
export type RunChecks = (conn: Record<string, string>, names: string[], deps?: { ec2?: EC2Client }) => Promise<{ check: string; results: CheckTest[] }[]>;
export interface SmokeResult { ok: boolean; passed: number; failed: number; checks: { check: string; results: CheckTest[] }[] }
export interface SetupDeps {
  reporter: Reporter;
  prereqDeps?: PrereqDeps;
  run?: Runner;
  prepare?: (stackDir: string, opts: object) => { engine: Engine; mirror: string | null; env: NodeJS.ProcessEnv };
  prompt?: (question: string) => Promise<boolean>;
  isTTY?: boolean;
  ec2?: EC2Client;
  consoleOutput?: (instanceId: string) => Promise<string>;
  runChecks?: RunChecks;
  probe?: (host: string, port: number | string) => Promise<boolean>;
  keyscan?: (host: string, port: number | string) => Promise<string>;
  sshDir?: string;
  sshWaitMs?: number;
  consoleWaitMs?: number;
  intervalMs?: number;
  localTarget?: { up(opts?: object): Promise<unknown> };
}
export interface SetupResult {
  target: 'aws' | 'local';
  envFile: string;
  connection: Record<string, string>;
  hostKey: { fingerprint: string; file: string; changed?: boolean };
  smoke: SmokeResult;
  btrbkConf: string;
  applied?: boolean;
  plan?: PlanAnalysis;
  cost?: CostEstimate;
  outputs?: Record<string, string>;
}
export declare const STACK_NAME: string;
export declare const STATE_DIR: string;
export declare const PLAN_FILE: string;
export declare const KNOWN_HOSTS_FILE: string;
export declare const SSH_WAIT_MS: number;
export declare const CONSOLE_WAIT_MS: number;
export declare const SMOKE_CHECKS: readonly string[];
export declare const REQUIRED_OUTPUTS: readonly string[];
export declare function consoleReporter(opts?: { stream?: NodeJS.WritableStream & { isTTY?: boolean }; paint?: object; tty?: boolean }): Reporter;
export declare function recordingReporter(): Reporter & { events: unknown[][] };
export declare function stepPrereqs(opts: SetupOptions, deps: SetupDeps): Promise<PrereqReport>;
export declare function stepValidateTfvars(opts: SetupOptions, deps: SetupDeps): { file: string; values: Record<string, unknown>; sshKey: string };
export declare function checkPrivateKeyMode(file: string): void;
export declare function runStreaming(...args: Parameters<Runner>): Promise<RunResult>;
export declare function promptYes(question: string, opts?: { input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream }): Promise<boolean>;
export declare function stepConfirm(analysis: PlanAnalysis, opts: SetupOptions, deps: SetupDeps): Promise<boolean>;
export declare function stepWaitForSsh(host: string, port: number, deps: SetupDeps & { timeoutMs?: number; now?: () => number }): Promise<ScannedKey[]>;
export declare function stepPinHostKey(
  target: { host: string; port: number; instanceId: string; scanned: ScannedKey[]; knownHostsFile?: string },
  deps: SetupDeps & { consoleOutput: (id: string) => Promise<string>; timeoutMs?: number; now?: () => number },
): Promise<{ fingerprint: string; file: string; changed: boolean }>;
export declare function connectionFromOutputs(outputs: Record<string, string>, opts: { sshKey: string; knownHostsFile?: string }): Record<string, string>;
export declare function stepSmokeTests(conn: Record<string, string>, deps: SetupDeps): Promise<SmokeResult>;
export declare function nextSteps(conn: Record<string, string>, envFile: string, opts?: { local?: boolean }): string;
export declare function verifyPinnedHostKey(conn: Record<string, string>, deps?: { keyscan?: (host: string, port: number | string) => Promise<string> }): Promise<{ fingerprint: string; file: string }>;
export declare function runAwsSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult>;
export declare function runLocalSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult>;
export declare function runSetup(opts: SetupOptions, deps: SetupDeps): Promise<SetupResult>;
export declare function checkOptions<T extends Partial<SetupOptions>>(opts: T): T;
