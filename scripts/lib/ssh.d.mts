import type { Connection } from './connection.mjs';
import type { OperatorError } from './errors.mjs';

export interface SshParams { host: string; port: number; user: string; keyFile: string; knownHostsFile: string; backupRoot: string }
export interface PinnedKey { keyType: string; blob: string; fingerprint: string }
export interface VerifierState { offered: { keyType: string | null; fingerprint: string } | null; matched: boolean; pinned: PinnedKey[] }
export type ConnectErrorKind = 'refused' | 'timeout' | 'dns' | 'auth' | 'key-file' | 'host-key-mismatch' | 'no-pin' | 'other';
export interface ExecResult { code: number | null; stdout: string; stderr: string }
export interface SshLike { execCommand(cmd: string, opts?: object): Promise<ExecResult>; dispose(): void }

export declare function sshParams(conn: Connection): SshParams;
export declare function fingerprint(blob: Buffer | string): string;
export declare function keyTypeOfBlob(buf: Buffer): string | null;
export declare function knownHostsName(host: string, port: number | string): string;
export declare function pinnedKeys(text: string, host: string, port: number | string): PinnedKey[];
export declare function readPinnedKeys(conn: Connection, deps?: { readFile?: (f: string, enc: 'utf8') => string }): PinnedKey[];
export declare function makeHostVerifier(pinned: PinnedKey[]): { verifier: (key: Buffer) => boolean; state: VerifierState };
export declare function hostKeyMismatchError(conn: Connection, state: VerifierState): OperatorError;
export declare function classifyConnectError(err: unknown, conn: Connection, state?: VerifierState | null): { kind: ConnectErrorKind; error: OperatorError };
export declare function probeTcp(host: string, port: number, opts?: { timeoutMs?: number }): Promise<{ ok: boolean; code?: string; ms: number }>;
export declare function connectSsh(
  conn: Connection,
  opts?: { NodeSSHClass?: new () => unknown; readyTimeout?: number; readFile?: (f: string, enc: 'utf8') => string },
): Promise<{ ssh: SshLike; hostKey: VerifierState['offered'] }>;
export declare function quoteArg(arg: string): string;
export declare function remoteCommand(...stages: string[][]): string;
export declare function shq(arg: string): string;
export declare function sshArgs(conn: Connection, opts?: { connectTimeout?: number; extra?: string[] }): string[];
export declare function runRemote(
  conn: Connection,
  command: string,
  opts?: { input?: string | Buffer; timeoutMs?: number; spawnFn?: unknown },
): Promise<{ code: number; signal: string | null; stdout: string; stderr: string }>;
