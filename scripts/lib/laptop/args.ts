// backup.mjs's command line: each verb's options are rows of the command table (scripts/lib/cli/entries/backup.ts);
// the checks across options that the table cannot say are done here (a pure function, unit-tested) so that the
// verbs only run. The entry loads this module with a verb's run, never for --help.
import type { ParsedArgs } from '../cli/command.js';
import { BACKUP, type Verb } from '../cli/entries/backup.js';
import { parseVerbArgs, resolve } from '../cli/runner.js';
import { OperatorError } from '../core/errors.js';
import { uploadMbitProblem } from '../deploy/first-backup.js';
import { instanceTypeProblem } from './first-sends.js';
import { checkInterval } from './units.js';

export interface BackupArgs {
  verb: Verb;
  env?: string;
  subvolumes: string[];
  /** install --replace: protect only `subvolumes` (default: add them to the installed ones). */
  replace: boolean;
  /** restore --from-target: receive from the target even when the snapshot is here. */
  fromTarget: boolean;
  /** install: directories to leave out (nested subvolumes), converted only with makeSubvolume. */
  exclude: string[];
  makeSubvolume: boolean;
  /** install: --notify / --no-notify; undefined keeps the installed choice. */
  notify?: boolean;
  snapshotDir?: string;
  interval: string;
  /** --device NAME (--machine NAME is its earlier name: the same value). */
  device?: string;
  dryRun: boolean;
  json: boolean;
  /** list: measure each backup's size on its local twin snapshot. */
  sizes: boolean;
  maxAgeHours: number;
  at?: string;
  to?: string;
  makeLive: boolean;
  path?: string;
  /** verify: percent of the files (1..100); undefined: the default sample. */
  sample?: number;
  /** verify: the sample's seed (digits); undefined: a random one. */
  seed?: string;
  /** install: the upload rate (Mbit/s) and the host's instance type, for the first backup's estimate. */
  uploadMbit?: number;
  instanceType?: string;
}

const usageError = (what: string): OperatorError =>
  new OperatorError(what, { next: 'npx zx scripts/backup.mjs VERB --help shows the options', exitCode: 2 });

/** A verb's parsed command line checked across its options; an OperatorError (exit 2) naming what is wrong. */
export function toBackupArgs(verb: Verb, a: ParsedArgs): BackupArgs {
  const o = a.options;
  const s = (name: string): string | undefined => o[name] as string | undefined;
  const l = (name: string): string[] => {
    const v = o[name];
    return v === undefined ? [] : Array.isArray(v) ? v : [String(v)];
  };
  const subvolumes = l('subvolume');
  if (subvolumes.some((x) => !x.startsWith('/'))) throw usageError('--subvolume needs an absolute path, e.g. /home');
  const out: BackupArgs = {
    verb,
    env: s('env'),
    subvolumes: subvolumes.map((x) => (x.length > 1 ? x.replace(/\/+$/, '') : x)),
    replace: o.replace === true,
    fromTarget: o['from-target'] === true,
    exclude: l('exclude').map((x) => x.replace(/\/+$/, '')),
    makeSubvolume: o['make-subvolume'] === true,
    notify: o['no-notify'] === true ? false : o.notify === true ? true : undefined,
    snapshotDir: s('snapshot-dir'),
    interval: s('interval') ?? 'hourly',
    device: s('device') ?? s('machine'),
    dryRun: o['dry-run'] === true,
    json: o.json === true,
    sizes: o.sizes === true,
    maxAgeHours: (o['max-age-hours'] as number | undefined) ?? 24,
    at: s('at'),
    to: s('to'),
    makeLive: o['make-live'] === true,
    path: s('path'),
  };
  if (!(out.maxAgeHours > 0)) throw usageError(`--max-age-hours ${out.maxAgeHours} is not a positive number`);
  const bad = checkInterval(out.interval);
  if (bad) throw usageError(bad);
  if (s('device') !== undefined && s('machine') !== undefined && s('device') !== s('machine'))
    throw usageError(
      `--device ${s('device')} and --machine ${s('machine')} name two devices: --machine is --device's earlier name; give one`,
    );
  const flag = s('device') !== undefined ? '--device' : '--machine';
  if (out.device !== undefined && !/^[A-Za-z0-9_@+][A-Za-z0-9_@+.-]{0,63}$/.test(out.device))
    throw usageError(`${flag} ${out.device}: letters, digits and _@+.- only (a device of the stack: a-z 0-9 ._-)`);
  if (out.device !== undefined && out.device.includes('..')) throw usageError(`${flag} ${out.device}: no ..`);
  if (out.exclude.some((x) => !x.startsWith('/')))
    throw usageError('--exclude needs an absolute path, e.g. /home/me/.cache');
  if (o.notify === true && o['no-notify'] === true) throw usageError('--notify or --no-notify, not both');
  if (out.makeSubvolume && !out.exclude.length)
    throw usageError('--make-subvolume needs --exclude DIR (the directory to turn into a nested subvolume)');
  if (verb === 'install' && !out.subvolumes.length)
    throw usageError('install needs --subvolume PATH (e.g. --subvolume /home)');
  if (verb === 'restore') {
    if (out.subvolumes.length !== 1)
      throw usageError('restore needs exactly one --subvolume PATH (the subvolume whose backup to restore)');
    if (out.makeLive && out.path)
      throw usageError(
        '--make-live and --path exclude each other: --path copies one file or directory out, --make-live replaces the whole subvolume',
      );
    if (out.makeLive && out.to) throw usageError("--make-live restores to the subvolume's own path; leave out --to");
    if (out.path && (out.path.startsWith('/') || out.path.split('/').includes('..')))
      throw usageError('--path is relative to the subvolume, without .. (e.g. me/thesis.tex for /home/me/thesis.tex)');
    if (out.to && !out.to.startsWith('/')) throw usageError('--to needs an absolute path');
  }
  const sample = s('sample');
  const seed = s('seed');
  if (sample !== undefined) {
    if (!/^(100|[1-9][0-9]?)$/.test(sample))
      throw usageError(`--sample ${sample}: a whole percentage 1..100 (100: every file)`);
    out.sample = Number(sample);
  }
  if (seed !== undefined) {
    if (!/^[0-9]{1,18}$/.test(seed))
      throw usageError(`--seed ${seed}: a whole number of at most 18 digits (the seed a verify printed)`);
    if (out.sample === 100) throw usageError('--seed picks a sample; --sample 100 is every file (leave out --seed)');
    out.seed = seed.replace(/^0+(?=\d)/, '');
  }
  const upload = o['upload-mbit'] as number | undefined;
  if (upload !== undefined) {
    out.uploadMbit = upload;
    const badUpload = uploadMbitProblem(upload);
    if (badUpload) throw usageError(badUpload.what);
  }
  const type = s('instance-type');
  const badType = instanceTypeProblem(type);
  if (badType) throw usageError(badType);
  out.instanceType = type;
  return out;
}

/** The command line as the verbs see it (tests): the verb's BackupArgs (a --help command line is not for this). */
export function parseBackupArgs(argv: readonly string[]): BackupArgs {
  const r = resolve(BACKUP, argv, 'npx zx scripts/backup.mjs');
  if ('help' in r) throw new Error('parseBackupArgs: --help asks for the help text (runEntry prints it)');
  return toBackupArgs(r.verb.name as Verb, parseVerbArgs(r.verb, r.argv, r.where));
}
