import type { OperatorError } from './errors.mjs';
import type { Transform } from 'node:stream';

export interface ProgressSnapshot {
  bytes: number;
  total: number | null;
  elapsedMs: number;
  rate: number;
  averageRate: number;
  eta: number | null;
  fraction: number | null;
}
export interface PipelineStage { label: string; cmd: string; args: string[] }
export interface PipelineResult {
  ok: boolean;
  links: { from: string; to: string; bytes: number }[];
  bytes: number;
  durationMs: number;
  rate: number;
  stages: { label: string; code: number | null; signal: string | null; stderr: string; spawnError: string | null }[];
}
export declare function humanBytes(n: number): string;
export declare function humanRate(bytesPerSecond: number): string;
export declare function humanDuration(seconds: number): string;
export declare class ProgressTracker {
  constructor(opts?: { total?: number | null; windowMs?: number; now?: () => number });
  bytes: number;
  total: number | null;
  add(n: number): void;
  snapshot(): ProgressSnapshot;
}
export declare function formatProgress(p: Partial<ProgressSnapshot> & { bytes: number; rate: number }): string;
export declare function byteCounter(onBytes: (n: number) => void): Transform;
export declare function runPipeline(
  stages: PipelineStage[],
  opts?: {
    onProgress?: (p: ProgressSnapshot & { link: number; done: boolean }) => void;
    progressIntervalMs?: number;
    progressLink?: number;
    total?: number | null;
    spawnFn?: unknown;
    signal?: AbortSignal;
    now?: () => number;
  },
): Promise<PipelineResult>;
export declare function pipelineError(result: PipelineResult, aborted?: boolean): OperatorError & { result: PipelineResult };
