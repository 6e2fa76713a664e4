// The round trip's text: the heading before it runs, each event as it happens, the summary after it.
import type { Connection } from '../core/connection.js';
import { formatResult, type Palette } from '../core/report.js';
import { humanBytes, humanRate } from '../core/units.js';
import { sshParams } from '../remote/ssh.js';
import type { RoundtripEvent, RoundtripResult } from './roundtrip.js';

/** "Round trip to user@host:port (N MiB of test data[, zstd])". */
export function roundtripHeading(conn: Connection, sizeMb: number, compress: string | null, c: Palette): string {
  const { user, host, port } = sshParams(conn);
  return c.bold(`Round trip to ${user}@${host}:${port} (${sizeMb} MiB of test data${compress ? `, ${compress}` : ''})`);
}

/** A step's result or what --keep kept, as a line; undefined for the events that print nothing. */
export function roundtripEventLine(e: RoundtripEvent, c: Palette, color: boolean): string | undefined {
  if (e.type === 'step') return formatResult(e.step, { color });
  if (e.type === 'kept')
    return c.yellow(`  kept (--keep): local ${e.local.join(', ') || '-'}; remote ${e.remote.join(', ') || '-'}`);
  return undefined;
}

/** The transfers (bytes on the wire and in the stream, time, rate), the incremental/full ratio, the tally. */
export function formatRoundtripSummary(r: RoundtripResult, c: Palette): string {
  const lines: string[] = [];
  if (r.transfers.length) {
    lines.push(c.bold('\nTransfers'));
    for (const t of r.transfers)
      lines.push(
        `  ${t.name.padEnd(20)} ${humanBytes(t.wireBytes).padStart(10)} on the wire  ${humanBytes(t.streamBytes).padStart(10)} stream  ${(t.durationMs / 1000).toFixed(2).padStart(6)} s  ${humanRate(t.rate)}`,
      );
    if (r.ratio !== null) lines.push(`  incremental/full ratio: ${r.ratio.toFixed(4)}`);
  }
  const tally = `${r.passed} passed, ${r.failed} failed`;
  lines.push(`\n${r.failed ? c.red(tally) : c.green(tally)}`);
  return lines.join('\n');
}
