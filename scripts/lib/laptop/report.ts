// backup.mjs install's and uninstall's reports as text: pure functions of the reports, tested without root.
import { palette, type Palette } from '../core/report.js';
import type { InstallReport, UninstallReport } from './commands.js';
import type { ExclusionPlan } from './exclude.js';
import { formatFirstSends } from './first-sends.js';
import { backupCommand, scriptCommand } from './system.js';
import { OperatorError } from '../core/errors.js';
import { FILES } from './layout.js';

const plain = palette(false);

/** A delay in a person's words: "10 min", "1 h", "2.5 min", "40 s". */
const delayText = (s: number): string =>
  s >= 3600 && s % 3600 === 0 ? `${s / 3600} h` : s >= 60 ? `${Number((s / 60).toFixed(1))} min` : `${s} s`;

/** The --exclude plans, printed before anything changes. */
export function formatExclusions(plans: readonly ExclusionPlan[], dryRun: boolean): string[] {
  const lines: string[] = [];
  for (const x of plans) {
    lines.push(
      `--exclude ${x.dir}${x.action === 'convert' ? (dryRun ? ' (dry run: would do)' : ' (doing now):') : ':'}`,
    );
    x.steps.forEach((s, i) => lines.push(`  ${x.action === 'convert' ? `${i + 1}. ` : ''}${s}`));
  }
  return lines;
}

/** What install checked, wrote and enabled, the first backup's estimate, and what to run next. */
export function formatInstall(r: InstallReport, c: Palette = plain): string {
  const lines: string[] = [];
  if (r.dryRun) lines.push(c.bold('dry run: nothing written'));
  for (const s of r.sources)
    lines.push(`${c.green('✓')} ${s.subvolume} is a btrfs subvolume; snapshots in ${s.snapshotDir}`);
  for (const d of r.snapshotDirsCreated)
    lines.push(`  ${r.dryRun ? 'would create' : 'created'} the snapshot directory ${d}`);
  lines.push(
    `  device ${r.device}: backups go to ${r.targetDir} on the target (host mode: ${r.hostMode ?? 'not reachable now'})`,
  );
  lines.push(...formatProtected(r, c));
  const d = r.schedule.randomDelaySeconds;
  lines.push(
    `  timer: OnCalendar=${r.schedule.interval}, ${d ? `each run after a random delay of up to ${delayText(d)} (a sixth of the interval, at most 1 h)` : 'no random delay (the interval is not known here)'}`,
  );
  for (const f of r.files) if (f.action !== 'unchanged') lines.push(`  ${f.action.padEnd(9)} ${f.path}`);
  const same = r.files.filter((f) => f.action === 'unchanged').length;
  if (same) lines.push(`  unchanged ${same} file(s)`);
  for (const s of r.steps)
    lines.push(
      `${s.ok ? c.green('✓') : c.red('✗')} ${s.what}${s.detail && !s.ok ? `\n    ${s.detail.split('\n').join('\n    ')}` : ''}`,
    );
  for (const w of r.warnings) lines.push(`${c.yellow('!')} ${w}`);
  lines.push(...formatFirstSends(r.firstSends, r.firstBackup, r.instanceType));
  for (const x of r.exclusions)
    if (x.keptAs && !r.dryRun)
      lines.push(
        `${c.yellow('!')} ${x.dir} is now a nested subvolume (not in the backups). The original is kept at ${x.keptAs}: look, then delete it (rm -rf ${x.keptAs})`,
      );
  if (!r.dryRun) {
    const changed = r.files.filter((f) => f.action !== 'unchanged' && f.action !== 'absent').length;
    lines.push(changed ? `${changed} file(s) changed.` : 'Nothing changed: already installed like this.');
    lines.push(`Next: ${backupCommand('run')}   (one backup now), then: ${backupCommand('status')}`);
  }
  return lines.join('\n');
}

/** Which subvolumes are protected after the install, which it added, kept unnamed, and dropped (--replace). */
export function formatProtected(
  r: Pick<InstallReport, 'sources' | 'added' | 'kept' | 'dropped' | 'dryRun'>,
  c: Palette = plain,
): string[] {
  const parts = [
    r.added.length && r.added.length < r.sources.length ? `added ${r.added.join(', ')}` : '',
    r.kept.length ? `kept from the earlier install ${r.kept.join(', ')}` : '',
  ].filter(Boolean);
  const lines = [
    `${c.bold(r.dryRun ? 'would protect' : 'protected now')}: ${r.sources.map((s) => s.subvolume).join(', ')}${parts.length ? ` (${parts.join('; ')})` : ''}`,
  ];
  if (r.kept.length)
    lines.push('  (install adds to what is protected; --replace protects only the --subvolume paths given)');
  for (const d of r.dropped)
    lines.push(
      `${c.yellow('!')} ${d.subvolume} ${r.dryRun ? 'would be' : 'is'} no longer protected (--replace): its snapshots in ${d.snapshotDir} and its backups on the target are kept; install --subvolume ${d.subvolume} protects it again`,
    );
  return lines;
}

/** What uninstall stopped and removed, and what it kept (snapshots, backups). */
export function formatUninstall(r: UninstallReport, c: Palette = plain): string {
  const lines: string[] = [];
  if (!r.installed) lines.push('no install manifest found; removed any of the known files that were there');
  for (const s of r.steps)
    lines.push(`${s.ok ? c.green('✓') : c.yellow('!')} ${s.what}${s.ok ? '' : ` (${s.detail})`}`);
  for (const f of r.files) if (f.action !== 'absent') lines.push(`  ${f.action.padEnd(9)} ${f.path}`);
  for (const d of r.keptSnapshotDirs)
    lines.push(`  kept      ${d} (your snapshots; delete them with btrfs subvolume delete if you want)`);
  if (r.targetDir) lines.push(`  kept      the backups in ${r.targetDir} on the target`);
  return lines.join('\n');
}

/**
 * A failed `btrbk run` as one error: btrbk's own ERROR and WARNING lines and its "!!! ..." summary lines (e.g.
 * "!!! Target ... aborted"), as it printed them, or that it printed none; what to run next.
 */
export function runFailure(r: { status: number | null; signal?: string | null; output: string }): OperatorError {
  const said = r.output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => /^(ERROR|WARNING)\b|^!!! /.test(l));
  const unique = [...new Set(said)];
  return new OperatorError(`btrbk run failed (exit ${r.status ?? r.signal})`, {
    details: unique.length ? `btrbk said:\n${unique.slice(-12).join('\n')}` : '',
    cause: unique.length
      ? unique.some((l) => /ssh|connect|Connection|timed out|resolve/i.test(l))
        ? 'the target could not be reached (the lines above)'
        : "btrbk's lines above"
      : 'btrbk printed no ERROR, WARNING or !!! line (its output is above)',
    next: `${backupCommand('status')}; ${scriptCommand('troubleshoot.mjs', `check-ssh --env ${FILES.connection}`, { root: false })}`,
  });
}
