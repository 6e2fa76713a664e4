export interface TestResult { name: string; ok: boolean; detail?: string; cause?: string; next?: string; warn?: boolean; skipped?: boolean; output?: string }
export interface CheckResult { check: string; results: TestResult[] }
export type Paint = (s: unknown) => string;
export declare function palette(enabled: boolean): Record<'green' | 'red' | 'yellow' | 'dim' | 'bold', Paint>;
export declare function useColor(stream?: { isTTY?: boolean }, env?: Record<string, string | undefined>): boolean;
export declare function statusOf(r: TestResult): 'PASS' | 'FAIL' | 'WARN' | 'SKIP';
export declare function formatResult(r: TestResult, opts?: { color?: boolean }): string;
export declare function tally(results: TestResult[]): { passed: number; failed: number; warned: number; skipped: number };
export declare function summaryLine(results: TestResult[]): string;
export declare function formatCheckReport(checkResults: CheckResult[], opts?: { color?: boolean; descriptions?: Record<string, string> }): string;
export declare function checkReportJson(checkResults: CheckResult[]): { checks: CheckResult[]; passed: number; failed: number; warned: number; skipped: number; ok: boolean };
