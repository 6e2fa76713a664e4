// Pass/fail printing shared by troubleshoot, round trip and setup's smoke tests, and the tools' one palette.
// Functions return strings; entry points print them (or print JSON instead). Colour only when asked (a TTY, no NO_COLOR).
import process from 'node:process';

/** One test's outcome. A warning is a pass with something to look at; a skipped test did not apply. */
export interface TestResult {
  name: string;
  ok: boolean;
  /** Shown dimmed after the name. */
  detail?: string;
  /** Why it failed or warns (shown for FAIL and WARN only). */
  cause?: string;
  /** What to do about it (shown for FAIL and WARN only). */
  next?: string;
  warn?: boolean;
  skipped?: boolean;
  /** Command output, shown indented under the result whatever the status. */
  output?: string;
}

/** The results of one named check (e.g. check-ssh). */
export interface CheckResult {
  check: string;
  results: TestResult[];
}

export type Status = 'PASS' | 'FAIL' | 'WARN' | 'SKIP';

/** Counts over results; see tally(). */
export interface Tally {
  passed: number;
  failed: number;
  warned: number;
  skipped: number;
}

/** The JSON form of a check report: the checks as given, the counts, and ok (nothing failed). */
export interface CheckReportJson extends Tally {
  checks: CheckResult[];
  ok: boolean;
}

// Plain SGR codes rather than zx's chalk: chalk is one process-wide instance that decides from stdout alone and
// ignores NO_COLOR, while the tools decide per stream (setup --json reports on stderr); the codes are chalk's own.
const CODES = {
  green: [32, 39],
  red: [31, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  dim: [2, 22],
  bold: [1, 22],
} as const;

export type ColorName = keyof typeof CODES;
/** Wraps text in one colour (or returns it as it is). */
export type Paint = (s: string) => string;
export type Palette = Record<ColorName, Paint>;

/** The palette of every entry point: colour functions, or identity functions when `enabled` is false (see useColor). */
export function palette(enabled: boolean): Palette {
  const out = {} as Palette;
  for (const name of Object.keys(CODES) as ColorName[]) {
    const [on, off] = CODES[name];
    out[name] = enabled ? (s) => `\x1b[${on}m${s}\x1b[${off}m` : (s) => String(s);
  }
  return out;
}

/** Whether to colour a stream's output: a TTY and NO_COLOR unset (FORCE_COLOR forces it). */
export function useColor(
  stream: { isTTY?: boolean } | undefined = process.stdout,
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR) return false;
  return Boolean(stream?.isTTY);
}

/** The status word of one result. */
export function statusOf(r: TestResult): Status {
  if (r.skipped) return 'SKIP';
  if (!r.ok) return 'FAIL';
  if (r.warn) return 'WARN';
  return 'PASS';
}

/** Lines for one result: "  PASS  name  detail", then cause/next on failure or warning. */
export function formatResult(r: TestResult, { color = false }: { color?: boolean } = {}): string {
  const c = palette(color);
  const status = statusOf(r);
  const paint = { PASS: c.green, FAIL: c.red, WARN: c.yellow, SKIP: c.dim }[status];
  const lines = [`  ${paint(status.padEnd(4))}  ${r.name}${r.detail ? c.dim(`  ${r.detail}`) : ''}`];
  if (status === 'FAIL' || status === 'WARN') {
    if (r.cause) lines.push(`        cause: ${r.cause}`);
    if (r.next) lines.push(`        next:  ${r.next}`);
  }
  if (r.output)
    lines.push(
      ...String(r.output)
        .split('\n')
        .map((l) => c.dim(`        │ ${l}`)),
    );
  return lines.join('\n');
}

/** Counts over results (a warning is a pass; a skipped test is neither). */
export function tally(results: TestResult[]): Tally {
  const passed = results.filter((r) => r.ok && !r.skipped).length;
  const failed = results.filter((r) => !r.ok).length;
  const warned = results.filter((r) => r.ok && r.warn).length;
  const skipped = results.filter((r) => r.skipped).length;
  return { passed, failed, warned, skipped };
}

/** The closing line: "N passed, M failed" (plus warnings/skips when there are any). */
export function summaryLine(results: TestResult[]): string {
  const t = tally(results);
  let line = `${t.passed} passed, ${t.failed} failed`;
  if (t.warned) line += `, ${t.warned} warning${t.warned === 1 ? '' : 's'}`;
  if (t.skipped) line += `, ${t.skipped} not applicable`;
  return line;
}

/**
 * A whole check report: a heading per check (with its description from `descriptions`, if any), its results,
 * and the closing line.
 */
export function formatCheckReport(
  checkResults: CheckResult[],
  { color = false, descriptions = {} }: { color?: boolean; descriptions?: Readonly<Record<string, string>> } = {},
): string {
  const c = palette(color);
  const out: string[] = [];
  for (const { check, results } of checkResults) {
    out.push(c.bold(`${check}${descriptions[check] ? c.dim(` — ${descriptions[check]}`) : ''}`));
    for (const r of results) out.push(formatResult(r, { color }));
    out.push('');
  }
  const all = checkResults.flatMap((x) => x.results);
  const line = summaryLine(all);
  out.push(tally(all).failed ? c.red(line) : c.green(line));
  return out.join('\n');
}

/** The JSON form of a check report (same data, plus the counts). */
export function checkReportJson(checkResults: CheckResult[]): CheckReportJson {
  const all = checkResults.flatMap((x) => x.results);
  return { checks: checkResults, ...tally(all), ok: tally(all).failed === 0 };
}
