export interface Scale {
  datasetMiB: number;
  changesMiB: readonly number[];
  compressibleMiB: number;
  trees: readonly number[];
  changedFiles: number;
  atimeFiles: number;
  repeats: number;
}
export declare const SCALES: Readonly<{ small: Scale; full: Scale }>;
export declare function targetSpaceNeededMiB(scale: 'small' | 'full' | Scale): number;
export interface Target { kind: 'max' | 'min'; value: number }
export declare const TARGETS: Readonly<Record<string, Target>>;
export declare function ratio(a: number | null | undefined, b: number | null | undefined): number | null;
export declare function round4(x: number | null): number | null;
export declare function median(values: number[]): number | null;
export declare function checkTarget(key: string, value: number | null | undefined, targets?: Record<string, Target>): 'pass' | 'fail' | null;
export interface Measured { label: string; value: number | null; unit?: string }
export interface Figure {
  key: string;
  label: string;
  value: number | null;
  a?: Measured;
  b?: Measured;
  target?: Target | null;
  status: 'pass' | 'fail' | null;
  error?: string;
}
export declare function figure(key: string, label: string, a: Measured, b: Measured, extra?: object): Figure;
export interface MachineInfo {
  nproc: number;
  cpu: string;
  kernel: string;
  memoryMiB: number;
  loadavgAtStart: number[];
  os: string;
  note: string;
  [k: string]: unknown;
}
export declare function machineInfo(opts?: { osmod?: object; readFile?: (p: string, enc: string) => string; versions?: object }): MachineInfo;
export interface Report {
  scale?: string;
  machine?: MachineInfo;
  figures: Figure[];
  timings?: { label: string; seconds?: number; error?: string }[];
  [k: string]: unknown;
}
export declare function formatTable(report: Report): string;
export declare function summarize(report: Report): { pass: number; fail: number; error: number; reported: number };
export declare function resultsFileName(date?: Date): string;
export declare function toJson(report: Report): string;
export declare function writeRandomFile(file: string, bytes: number): void;
export declare function overwriteSpread(file: string, bytes: number, opts?: { pieces?: number; seedOffset?: number }): number;
export declare function writeCompressibleFile(file: string, bytes: number): void;
export declare function treeFilePath(root: string, i: number): string;
export declare function writeTree(root: string, count: number): void;
export declare function changeTree(root: string, count: number, changed: number, round: number): number;
export declare function readTree(root: string, count: number): void;
