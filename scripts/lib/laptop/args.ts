// backup.mjs's command line: verbs and options, checked here (a pure function, unit-tested) so the entry point
// only dispatches.
import { minimist } from 'zx';
import { OperatorError } from '../core/errors.js';
import { uploadMbitProblem } from '../deploy/first-backup.js';
import { instanceTypeProblem } from './first-sends.js';
import { checkInterval } from './units.js';

export const VERBS = Object.freeze({
  install: 'protect subvolumes: write the btrbk config, ssh settings and systemd units (--subvolume PATH ...)',
  uninstall: 'remove what install made (never a snapshot or a backup)',
  run: "one backup now, in the foreground: each first backup's size and expected time, progress, btrbk's summary",
  status: 'per subvolume: newest snapshot and backup, ages, next run, last result (exit 1 when not fresh)',
  list: 'the backups on the target, with their times (and sizes with --sizes)',
  restore: 'receive a backup here (--subvolume PATH [--at TIMESTAMP] [--to DIR] [--make-live] [--path REL])',
  verify: 'compare the newest backup with the snapshot it was sent from (exit 1 on any difference)',
});
export type Verb = keyof typeof VERBS;

export const USAGE = `usage: npx zx scripts/backup.mjs <verb> [options]   (as root)
verbs:
${Object.entries(VERBS)
  .map(([k, v]) => `  ${k.padEnd(10)} ${v}`)
  .join('\n')}
options:
  --env FILE             the connection file (default aws_connection.env; status/list/run/restore/verify use the
                         installed settings when install has run and --env is not given)
  install:   --subvolume PATH (repeatable) [--snapshot-dir DIR] [--interval hourly|daily|ONCALENDAR]
             [--machine NAME (default: the short host name)] [--dry-run (show, change nothing)]
             [--notify|--no-notify (desktop notification when a scheduled run fails; off by default)]
             [--exclude DIR (leave it out: a nested subvolume) [--make-subvolume (convert a plain DIR;
             the steps are printed first, the original kept)]]
             [--upload-mbit N (your upload in Mbit/s)] [--instance-type TYPE (the host's; default t3a.nano)]
             (the first backup's estimate, printed when the target has no backup of a subvolume yet; run uses
             them for its expected time)
  status:    [--json] [--max-age-hours N (default 24)]
  list:      [--subvolume PATH] [--json] [--sizes (each backup's data, measured on the local snapshot it was
             sent from: btrfs filesystem du reads every file's extents, slow for many files)]
  restore:   --subvolume PATH [--at TIMESTAMP|DATE] [--machine NAME] and one of: (nothing: into the snapshot
             dir) | --to DIR | --make-live | --path REL/PATH [--to DEST (default: beside the original)]
  verify:    [--subvolume PATH (default: every protected one)] [--sample PERCENT (default 5; 100: every
             file)] [--seed N (repeat a sample: the seed the last run printed)] [--json (the report as JSON on
             stdout, the progress on stderr; the exit status is the same)]
  --help     this text`;

export interface BackupArgs {
  verb: Verb;
  env?: string;
  subvolumes: string[];
  /** install: directories to leave out (nested subvolumes), converted only with makeSubvolume. */
  exclude: string[];
  makeSubvolume: boolean;
  /** install: --notify / --no-notify; undefined keeps the installed choice. */
  notify?: boolean;
  snapshotDir?: string;
  interval: string;
  machine?: string;
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
  help: boolean;
}

const usageError = (what: string): OperatorError => new OperatorError(what, { next: USAGE, exitCode: 2 });

/** Parses argv (without node and the script); an OperatorError (exit 2) naming what is wrong. */
export function parseBackupArgs(argv: string[]): BackupArgs {
  const a = minimist(argv, {
    boolean: ['json', 'help', 'dry-run', 'make-live', 'make-subvolume', 'notify', 'sizes'],
    string: [
      'env',
      'subvolume',
      'exclude',
      'snapshot-dir',
      'interval',
      'machine',
      'max-age-hours',
      'at',
      'to',
      'path',
      'sample',
      'seed',
      'upload-mbit',
      'instance-type',
    ],
    unknown: (o: string) => {
      if (!o.startsWith('-')) return true;
      throw usageError(`unknown option ${o}`);
    },
  });
  const help = Boolean(a.help);
  const verb = String(a._[0] ?? '');
  if (help && !verb) return { ...defaults(), verb: 'status', help };
  if (!verb) throw usageError('which verb?');
  if (!(verb in VERBS)) throw usageError(`unknown verb ${verb}`);
  if (help) return { ...defaults(), verb: verb as Verb, help };
  if (a._.length > 1) throw usageError(`unexpected argument ${a._[1]}`);
  const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);
  const one = (name: string): string | undefined => {
    const v = list(a[name]);
    if (v.length > 1) throw usageError(`--${name} given twice`);
    if (v.length && !v[0]) throw usageError(`--${name} needs a value`);
    return v[0];
  };
  const subvolumes = list(a.subvolume);
  if (subvolumes.some((s) => !s.startsWith('/'))) throw usageError('--subvolume needs an absolute path, e.g. /home');
  const out: BackupArgs = {
    ...defaults(),
    verb: verb as Verb,
    help,
    env: one('env'),
    subvolumes: subvolumes.map((s) => (s.length > 1 ? s.replace(/\/+$/, '') : s)),
    exclude: list(a.exclude).map((s) => s.replace(/\/+$/, '')),
    makeSubvolume: Boolean(a['make-subvolume']),
    notify: argv.includes('--no-notify') ? false : argv.includes('--notify') ? true : undefined,
    snapshotDir: one('snapshot-dir'),
    interval: one('interval') ?? 'hourly',
    machine: one('machine'),
    dryRun: Boolean(a['dry-run']),
    json: Boolean(a.json),
    sizes: Boolean(a.sizes),
    at: one('at'),
    to: one('to'),
    makeLive: Boolean(a['make-live']),
    path: one('path'),
  };
  const maxAge = one('max-age-hours');
  if (maxAge !== undefined) {
    const n = Number(maxAge);
    if (!Number.isFinite(n) || n <= 0) throw usageError(`--max-age-hours ${maxAge} is not a positive number`);
    out.maxAgeHours = n;
  }
  const bad = checkInterval(out.interval);
  if (bad) throw usageError(bad);
  if (out.machine !== undefined && !/^[A-Za-z0-9_@+][A-Za-z0-9_@+.-]{0,63}$/.test(out.machine))
    throw usageError(`--machine ${out.machine}: letters, digits and _@+.- only`);
  if (out.exclude.some((s) => !s.startsWith('/')))
    throw usageError('--exclude needs an absolute path, e.g. /home/me/.cache');
  if ((out.exclude.length || out.makeSubvolume) && out.verb !== 'install')
    throw usageError('--exclude and --make-subvolume belong to install');
  if (out.notify !== undefined && out.verb !== 'install') throw usageError('--notify belongs to install');
  if (out.makeSubvolume && !out.exclude.length)
    throw usageError('--make-subvolume needs --exclude DIR (the directory to turn into a nested subvolume)');
  if (out.verb === 'install' && !out.subvolumes.length)
    throw usageError('install needs --subvolume PATH (e.g. --subvolume /home)');
  if (out.verb === 'restore') {
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
  const sample = one('sample');
  const seed = one('seed');
  if ((sample !== undefined || seed !== undefined) && out.verb !== 'verify')
    throw usageError('--sample and --seed belong to verify');
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
  const upload = one('upload-mbit');
  const type = one('instance-type');
  if ((upload !== undefined || type !== undefined) && out.verb !== 'install')
    throw usageError("--upload-mbit and --instance-type belong to install (the first backup's estimate)");
  if (upload !== undefined) {
    out.uploadMbit = Number(upload);
    const bad = uploadMbitProblem(out.uploadMbit);
    if (bad) throw usageError(bad.what);
  }
  const badType = instanceTypeProblem(type);
  if (badType) throw usageError(badType);
  out.instanceType = type;
  if (out.verb === 'list' && out.subvolumes.length > 1) throw usageError('list takes one --subvolume at most');
  if (out.sizes && out.verb !== 'list') throw usageError('--sizes belongs to list');
  return out;
}

function defaults(): Omit<BackupArgs, 'verb'> {
  return {
    subvolumes: [],
    exclude: [],
    makeSubvolume: false,
    interval: 'hourly',
    dryRun: false,
    json: false,
    sizes: false,
    maxAgeHours: 24,
    makeLive: false,
    help: false,
  };
}
