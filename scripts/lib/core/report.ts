// @ts-nocheck -- typed in the next step of the move to TypeScript
// Pass/fail printing shared by troubleshoot, round trip and setup's smoke tests. Functions return strings;
// entry points print them (or print JSON instead). Colour only when asked (a TTY, no NO_COLOR).
import process from 'node:process';

const CODES = { green: [32, 39], red: [31, 39], yellow: [33, 39], dim: [2, 22], bold: [1, 22] };

/** Colour functions; identity functions when `enabled` is false. */
export function palette(enabled) {
  const out = {};
  for (const [name, [on, off]] of Object.entries(CODES)) out[name] = enabled ? (s) => `\x1b[${on}m${s}\x1b[${off}m` : (s) => String(s);
  return out;
}

/** Whether to colour a stream's output: a TTY and NO_COLOR unset (FORCE_COLOR forces it). */
export function useColor(stream = process.stdout, env = process.env) {
  if (env.FORCE_COLOR && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR) return false;
  return Boolean(stream?.isTTY);
}

/** The status word of one result: PASS, FAIL, WARN, SKIP. */
export function statusOf(r) {
  if (r.skipped) return 'SKIP';
  if (!r.ok) return 'FAIL';
  if (r.warn) return 'WARN';
  return 'PASS';
}

/** Lines for one result: "  PASS  name  detail", then cause/next on failure or warning. */
export function formatResult(r, { color = false } = {}) {
  const c = palette(color);
  const status = statusOf(r);
  const paint = { PASS: c.green, FAIL: c.red, WARN: c.yellow, SKIP: c.dim }[status];
  const lines = [`  ${paint(status.padEnd(4))}  ${r.name}${r.detail ? c.dim(`  ${r.detail}`) : ''}`];
  if (status === 'FAIL' || status === 'WARN') {
    if (r.cause) lines.push(`        cause: ${r.cause}`);
    if (r.next) lines.push(`        next:  ${r.next}`);
  }
  if (r.output) lines.push(...String(r.output).split('\n').map((l) => c.dim(`        │ ${l}`)));
  return lines.join('\n');
}

/** Counts over results (a warning is a pass; a skipped test is neither). */
export function tally(results) {
  const passed = results.filter((r) => r.ok && !r.skipped).length;
  const failed = results.filter((r) => !r.ok).length;
  const warned = results.filter((r) => r.ok && r.warn).length;
  const skipped = results.filter((r) => r.skipped).length;
  return { passed, failed, warned, skipped };
}

/** The closing line: "N passed, M failed" (plus warnings/skips when there are any). */
export function summaryLine(results) {
  const t = tally(results);
  let line = `${t.passed} passed, ${t.failed} failed`;
  if (t.warned) line += `, ${t.warned} warning${t.warned === 1 ? '' : 's'}`;
  if (t.skipped) line += `, ${t.skipped} not applicable`;
  return line;
}

/** A whole check report: a heading per check, its results, and the closing line. */
export function formatCheckReport(checkResults, { color = false, descriptions = {} } = {}) {
  const c = palette(color);
  const out = [];
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
export function checkReportJson(checkResults) {
  const all = checkResults.flatMap((x) => x.results);
  return { checks: checkResults, ...tally(all), ok: tally(all).failed === 0 };
}
