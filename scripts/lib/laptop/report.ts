// backup.mjs install's and uninstall's reports as text: pure functions of the reports, tested without root.
import { palette, type Palette } from '../core/report.js';
import type { InstallReport, UninstallReport } from './commands.js';
import type { ExclusionPlan } from './exclude.js';
import { formatFirstSends } from './first-sends.js';

const plain = palette(false);

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
    lines.push(`Next: npx zx scripts/backup.mjs run   (one backup now), then: npx zx scripts/backup.mjs status`);
  }
  return lines.join('\n');
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
