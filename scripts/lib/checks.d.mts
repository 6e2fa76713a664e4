import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Connection } from './connection.mjs';
import type { CheckResult, TestResult } from './report.mjs';
import type { ExecResult, SshLike } from './ssh.mjs';

export type { CheckResult, TestResult };
export type CheckName = 'check-ssh' | 'check-volume' | 'check-aws' | 'check-logs';
export interface Session { open(): Promise<{ ok: true; ssh: SshLike; hostKey: unknown } | { ok: false; error: Error & { kind?: string; what?: string } }>; exec(cmd: string, opts?: { timeoutMs?: number }): Promise<ExecResult>; close(): void }
export interface CheckDeps {
  ec2?: EC2Client | { send(cmd: unknown): Promise<any> };
  ec2ForRegion?: (region: string) => EC2Client | { send(cmd: unknown): Promise<any> };
  sts?: unknown;
  profile?: string;
  lines?: number;
  connect?: (conn: Connection) => Promise<{ ssh: SshLike; hostKey: unknown }>;
  probe?: (host: string, port: number, opts?: { timeoutMs?: number }) => Promise<{ ok: boolean; code?: string; ms: number }>;
  stat?: (file: string) => { isFile(): boolean; mode: number; uid: number };
  uid?: number;
  readFile?: (f: string, enc: 'utf8') => string;
  readLocalBootLog?: () => Promise<string | null>;
  getConsoleOutput?: (ec2: unknown, instanceId: string, opts?: object) => Promise<string>;
  session?: Session;
  execTimeoutMs?: number;
  tcpTimeoutMs?: number;
}
export declare const CHECKS: Readonly<Record<CheckName, string>>;
export declare const VOLUME_MOUNT: string;
export declare const USAGE_WARN_PERCENT: number;
export declare const GATE_COMMANDS: Readonly<{
  version: string; usage: string; deviceStats: string; mount: string; bootLog: string; cloudInitLog: string; retention: string; forbidden: string;
  backupRoot: (root: string) => string; subvolumeList: (root: string) => string;
}>;
export declare function expandChecks(names: string[]): CheckName[];
export declare function sshSession(conn: Connection, deps?: CheckDeps): Session;
export declare function checkKeyFile(keyFile: string, deps?: CheckDeps): TestResult;
export declare function checkSsh(conn: Connection, deps?: CheckDeps, session?: Session): Promise<TestResult[]>;
export declare function parseMountEntry(text: string, mountPoint?: string): { source: string; fstype: string; options: string } | null;
export declare function parseUsage(text: string): { size: number; used: number; free: number; percent: number } | null;
export declare function parseDeviceStats(text: string): { device: string; counter: string; value: number }[];
export interface RetentionReport {
  policy: { appendOnly: boolean; retention: string; retentionMin: string } | null;
  lastRun: (Record<string, string> & { deleted: string[] }) | null;
  backups: { created: string; action: 'keep' | 'goes'; path: string; reason: string }[];
}
export declare function parseRetentionReport(text: string): RetentionReport;
export declare function checkVolume(conn: Connection, deps?: CheckDeps, session?: Session): Promise<TestResult[]>;
export declare function findInstanceRegions(instanceId: string, deps: { ec2: CheckDeps['ec2']; ec2ForRegion?: CheckDeps['ec2ForRegion'] }): Promise<string[]>;
export declare function checkAws(conn: Connection, deps?: CheckDeps): Promise<TestResult[]>;
export declare function lastLines(text: string, n: number): string;
export declare function bootOutcome(text: string): { state: 'success' | 'failed' | 'unfinished'; line: string | null };
export declare function errorLines(text: string): string[];
export declare function checkLogs(conn: Connection, deps?: CheckDeps, session?: Session): Promise<TestResult[]>;
export declare function runChecks(conn: Connection, names: string[], deps?: CheckDeps): Promise<CheckResult[]>;
export declare function allPassed(checkResults: CheckResult[]): boolean;
