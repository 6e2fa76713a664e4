// Exclusions, the btrfs way: a snapshot covers its whole subvolume but not the subvolumes nested in it, so a
// directory left out of the backups (~/.cache, a VM image folder) becomes a nested subvolume. A directory that is
// already one is simply reported; a plain directory is converted only with --make-subvolume, after printing the
// steps, and without ever losing a file: it is renamed aside (processes still writing into it keep writing there),
// its content is copied into a new subvolume at the old path (reflinks: no second copy of the data), compared, and
// the renamed original is KEPT for the person to delete once they have looked.
import fs from 'node:fs';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run } from '../core/process.js';
import type { SourceInfo } from './install.js';

export interface ExclusionPlan {
  dir: string;
  /** The protected subvolume it is inside. */
  within: string;
  action: 'none' | 'convert';
  /** Where the original directory is kept (convert). */
  keptAs: string | null;
  steps: string[];
}

/** Decides what --exclude DIR does. `info` describes DIR; `sources` the subvolumes being protected. */
export function planExclusion(
  info: SourceInfo,
  sources: string[],
  { makeSubvolume, stamp }: { makeSubvolume: boolean; stamp: string },
): ExclusionPlan {
  const dir = info.path;
  const within = sources.filter((s) => dir.startsWith(`${s}/`)).sort((a, b) => b.length - a.length)[0];
  if (!within)
    throw new OperatorError(`--exclude ${dir} is not inside a --subvolume being protected`, {
      next: `protected: ${sources.join(', ')}; nothing outside them is backed up anyway`,
    });
  if (!info.exists)
    throw new OperatorError(`--exclude ${dir} does not exist`, {
      next: 'create it as a subvolume: btrfs subvolume create DIR (then it is never backed up)',
    });
  if (info.subvolume)
    return {
      dir,
      within,
      action: 'none',
      keptAs: null,
      steps: [`${dir} is already a nested subvolume: it is not part of ${within}'s snapshots (nothing to do)`],
    };
  if (!info.btrfs)
    throw new OperatorError(`${dir} is not on btrfs`, {
      cause: 'it is another filesystem mounted inside the subvolume, so it is not in its snapshots anyway',
    });
  const keptAs = `${dir}.before-exclude-${stamp}`;
  const steps = [
    `rename ${dir} to ${keptAs} (kept: nothing is deleted)`,
    `create the subvolume ${dir}, with the owner, mode and times of the original`,
    `copy ${keptAs}/. into it (cp -a --reflink=always: no second copy of the data)`,
    `compare the two trees (diff -r --no-dereference); on any difference undo: remove the new subvolume, rename ${keptAs} back`,
    `leave ${keptAs} for you to delete once you have looked (until then it is still in ${within}'s snapshots)`,
  ];
  if (!makeSubvolume) {
    throw new OperatorError(`${dir} is a plain directory: it is part of ${within}'s snapshots`, {
      details: ['with --make-subvolume, install would:', ...steps.map((s, i) => `${i + 1}. ${s}`)].join('\n'),
      cause: 'btrfs leaves only nested subvolumes out of a snapshot',
      next: `stop what writes into ${dir} (close the browser for ~/.cache), then run install again with --exclude ${dir} --make-subvolume`,
    });
  }
  if (fs.existsSync(keptAs))
    throw new OperatorError(`${keptAs} already exists`, { next: 'wait a minute and run install again' });
  return { dir, within, action: 'convert', keptAs, steps };
}

/** Carries out a 'convert' plan; undoes it (nothing lost) when a step fails or the trees differ. */
export async function convertToSubvolume(plan: ExclusionPlan, { run = runDefault }: { run?: Run } = {}): Promise<void> {
  if (plan.action !== 'convert' || !plan.keptAs) return;
  const { dir, keptAs } = plan;
  const must = async (cmd: string, args: string[], what: string): Promise<void> => {
    const r = await run(cmd, args);
    if (r.status !== 0)
      throw new OperatorError(what, {
        details: (r.error?.message ?? (r.stderr || r.stdout)).trim().split('\n').slice(-8).join('\n'),
      });
  };
  fs.renameSync(dir, keptAs);
  let created = false;
  try {
    await must('btrfs', ['subvolume', 'create', dir], `cannot create the subvolume ${dir}`);
    created = true;
    await must('cp', ['-a', '--reflink=always', '--', `${keptAs}/.`, `${dir}/`], `cannot copy ${keptAs} into ${dir}`);
    await must('chown', ['--reference', keptAs, '--', dir], `cannot set the owner of ${dir}`);
    await must('chmod', ['--reference', keptAs, '--', dir], `cannot set the mode of ${dir}`);
    await must('touch', ['--reference', keptAs, '--', dir], `cannot set the times of ${dir}`);
    await must(
      'diff',
      ['-r', '-q', '--no-dereference', '--', keptAs, dir],
      `${keptAs} and the new ${dir} differ (something wrote into it meanwhile?)`,
    );
  } catch (err) {
    if (created) await run('btrfs', ['subvolume', 'delete', dir]);
    if (!fs.existsSync(dir)) fs.renameSync(keptAs, dir);
    const e = err as OperatorError;
    throw new OperatorError(`${e.what}; undone: ${dir} is as it was`, {
      details: e.details,
      next: `stop what writes into ${dir}, then try again`,
    });
  }
}

/** The folder name part of a stamp for kept directories: 20261130T120000Z. */
export const stampOf = (d: Date): string =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
