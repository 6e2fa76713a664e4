import type { Connection } from './connection.mjs';
import type { ProgressSnapshot } from './transfer.mjs';

export interface ManifestEntry {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode: number; uid: number; gid: number; mtimeNs: string;
  size?: number; blocks?: number; sha256?: string; target?: string;
  xattrs: Record<string, string>; links: string[];
}
export type Manifest = Map<string, ManifestEntry>;
export interface Diff { path: string; kind: string; expected: unknown; actual: unknown }
export interface Step { name: string; ok: boolean; detail: string; cause: string; next: string; ms: number }
export interface Transfer { name: string; direction: 'push' | 'pull'; streamBytes: number; wireBytes: number; durationMs: number; rate: number }
export type RoundtripEvent =
  | { type: 'start'; runId: string; remoteDir: string; snapshots: string[] }
  | { type: 'step'; step: Step; error?: unknown }
  | ({ type: 'progress'; transfer: string; link: number; done: boolean } & ProgressSnapshot)
  | { type: 'transfer'; transfer: Transfer }
  | { type: 'kept'; local: string[]; remote: string[] };
export interface RoundtripResult { runId: string; remoteDir: string; steps: Step[]; transfers: Transfer[]; ratio: number | null; passed: number; failed: number; ok: boolean }

export declare const REMOTE_DIR_NAME: string;
export declare const REMOTE: Readonly<{
  mkdir(dir: string): string;
  receive(dir: string, compress?: string | null): string;
  send(src: string, parent?: string | null, compress?: string | null): string;
  show(p: string): string;
  delete(p: string): string;
}>;
export declare function isBtrfs(dir: string): boolean;
export declare function makeDataset(dir: string, opts?: { sizeMb?: number }): Promise<{ files: number; bytes: number }>;
export declare function changeDataset(dir: string): Promise<number>;
export declare function parseGetfattr(text: string): Map<string, Record<string, string>>;
export declare function manifest(root: string): Manifest;
export declare function compareManifests(expected: Manifest, actual: Manifest): Diff[];
export declare function splitDiffs(diffs: Diff[]): { content: Diff[]; metadata: Diff[] };
export declare function describeDiffs(diffs: Diff[], max?: number): string;
export declare function manifestSummary(m: Manifest): { files: number; dirs: number; symlinks: number; hardlinked: number; xattrs: number; sparse: number };
export declare function parseSubvolumeShow(text: string): { uuid: string | null; receivedUuid: string | null; readonly: boolean };
export declare function runRoundtrip(
  conn: Connection,
  opts?: { sizeMb?: number; keep?: boolean; sourceDir?: string | null; compress?: 'zstd' | null; workDir?: string; onEvent?: (e: RoundtripEvent) => void },
): Promise<RoundtripResult>;
