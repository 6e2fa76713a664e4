// backup: backups that happen by themselves, on the laptop (or server). install protects subvolumes with btrbk, a
// systemd timer and a pre-sleep snapshot; run, status, list, restore, verify; uninstall. README "Backups" and
// docs/RESTORE.md. Each verb's options and their checks are in laptop/args.ts.
import path from 'node:path';
import type { Connection } from '../../core/connection.js';
import { OperatorError } from '../../core/errors.js';
import type { Manifest } from '../../laptop/install.js';
import { verb, type Context, type EntryPoint, type AnyVerb, type GroupSpec, type OptionSpec } from '../command.js';
import { BROWSE_ROWS } from './backup-browse.js';

export const VERBS = Object.freeze({
  install: 'protect subvolumes: write the btrbk config, ssh settings and systemd units (--subvolume PATH ...)',
  uninstall: 'remove what install made (never a snapshot or a backup)',
  run: "one backup now, in the foreground: each first backup's size and expected time, progress, btrbk's summary",
  status: 'per subvolume: newest snapshot and backup, ages, next run, last result (exit 1 when not fresh)',
  list: 'the backups on the target, with their times (and sizes with --sizes)',
  restore: 'receive a backup here (--subvolume PATH [--at TIMESTAMP] [--to DIR] [--make-live] [--path REL])',
  verify:
    'compare the newest backup (--at: another, --all: every one) with the snapshot it was sent from (exit 1 on any difference)',
});
export type Verb = keyof typeof VERBS;

const SUBVOLUMES: OptionSpec = {
  name: 'subvolume',
  type: 'list',
  valueName: 'PATH',
  help: 'a protected subvolume (absolute path, e.g. /home)',
};
const ONE_SUBVOLUME: OptionSpec = { ...SUBVOLUMES, type: 'string' };
const DEVICE: OptionSpec = {
  name: 'device',
  type: 'string',
  valueName: 'NAME',
  help: "the device whose backups: with a device's connection file its own (--env connection-NAME.env, NAME's key; another device's key is refused); default: the connection's device, else the installed one, else this machine's short host name",
};
const MACHINE: OptionSpec = {
  name: 'machine',
  type: 'string',
  valueName: 'NAME',
  help: '--device by its earlier name (the same value; give one of them)',
};

/** Each verb's own options (the runner adds --env, --json and --help as the verb's row says). */
export const VERB_OPTIONS: Readonly<Record<Verb, readonly OptionSpec[]>> = Object.freeze({
  install: [
    {
      ...SUBVOLUMES,
      help: 'a subvolume to protect (absolute path, e.g. /home); at least one. Added to those an earlier install protects (--replace: only these)',
    },
    {
      name: 'replace',
      type: 'boolean',
      help: 'protect only the --subvolume paths given: the others an earlier install protects are dropped (their snapshots and backups are kept)',
    },
    {
      name: 'snapshot-dir',
      type: 'string',
      valueName: 'DIR',
      help: "where the local snapshots go (default: .btrbk_snapshots on the subvolume's filesystem)",
    },
    {
      name: 'interval',
      type: 'string',
      valueName: 'hourly|daily|ONCALENDAR',
      default: 'hourly',
      help: 'how often the timer backs up (each run starts after a random delay of up to a sixth of the interval, at most 1 h: 10 min for hourly, 1 h for daily)',
    },
    {
      ...DEVICE,
      help: "the device this machine backs up as, with that device's key (the connection file's key). A device's connection file names it, and the backups go to its own directory backups/NAME (where a machine directory of that name already is: it carries on incrementally); with the single key's file, backups/NAME too. Default: the connection's device, else the installed one, else the short host name. A key the target does not know: install prints the line to add to terraform.tfvars's devices",
    },
    MACHINE,
    { name: 'dry-run', type: 'boolean', help: 'show what would change, change nothing' },
    { name: 'notify', type: 'boolean', help: 'a desktop notification when a scheduled run fails (off by default)' },
    { name: 'no-notify', type: 'boolean', help: 'turn that notification off again' },
    { name: 'exclude', type: 'list', valueName: 'DIR', help: 'leave DIR out of the backups (a nested subvolume)' },
    {
      name: 'make-subvolume',
      type: 'boolean',
      help: 'with --exclude: convert a plain DIR into a nested subvolume (the steps are printed first, the original kept)',
    },
    {
      name: 'upload-mbit',
      type: 'number',
      valueName: 'N',
      help: "your upload in Mbit/s, for the first backup's estimate (run uses it for its expected time)",
    },
    {
      name: 'instance-type',
      type: 'string',
      valueName: 'TYPE',
      help: "the host's instance type, for the same estimate (default t3a.nano)",
    },
  ],
  uninstall: [],
  run: [],
  status: [
    { ...SUBVOLUMES, help: 'only these protected subvolumes (default: every one)' },
    {
      name: 'max-age-hours',
      type: 'number',
      valueName: 'N',
      default: 24,
      help: 'a backup older than this is not fresh (exit 1)',
    },
  ],
  list: [
    { ...ONE_SUBVOLUME, help: 'only this protected subvolume' },
    MACHINE,
    {
      name: 'sizes',
      type: 'boolean',
      help: "each backup's data, measured on the local snapshot it was sent from (btrfs filesystem du reads every file's extents: slow for many files)",
    },
    DEVICE,
  ],
  restore: [
    { ...ONE_SUBVOLUME, help: 'the subvolume whose backup to restore (required)' },
    {
      name: 'at',
      type: 'string',
      valueName: 'TIMESTAMP|DATE',
      help: 'the backup at or before this time (default: the newest)',
    },
    {
      name: 'to',
      type: 'string',
      valueName: 'DIR',
      help: 'receive into DIR (with --path: where the copy goes, default beside the original)',
    },
    {
      name: 'make-live',
      type: 'boolean',
      help: 'make the backup the live subvolume again (the current one is kept renamed, never deleted)',
    },
    {
      name: 'path',
      type: 'string',
      valueName: 'REL/PATH',
      help: 'copy out one file or directory (relative to the subvolume): to its own path when nothing is there, else beside it as NAME.restored-TIMESTAMP',
    },
    {
      name: 'from-target',
      type: 'boolean',
      help: 'receive the backup from the target even when the same snapshot is here (by default a local snapshot of the same name is used: nothing to transfer)',
    },
    {
      ...DEVICE,
      help: "the device whose backup to restore; another device's (a lost laptop's) only with its connection file and key: --device OLD --env connection-OLD.env. Default: the connection's device, else the installed one, else the short host name",
    },
    MACHINE,
  ],
  verify: [
    { ...SUBVOLUMES, help: 'only these protected subvolumes (default: every one)' },
    {
      name: 'sample',
      type: 'string',
      valueName: 'PERCENT',
      help: 'percent of the files compared, 1 to 100 (default 5; 100: every file)',
    },
    { name: 'seed', type: 'string', valueName: 'N', help: 'repeat a sample: the seed the last run printed' },
    {
      name: 'at',
      type: 'string',
      valueName: 'TIMESTAMP|DATE',
      help: "verify the backup at or before this time instead of the newest; without its local snapshot (local retention keeps fewer) it is read back on the host only ('readable')",
    },
    {
      name: 'all',
      type: 'boolean',
      help: 'verify every complete backup: each is read on the host, so this costs one verify per backup (a 5 % sample of 100 GB: about 6.5 min of the host at a t3a.nano, docs/PERFORMANCE.md)',
    },
  ],
});

/** The verbs that read a connection (--env). */
export const ENV_VERBS: readonly Verb[] = ['install', 'status', 'list', 'restore', 'verify'];

/** A verb's options checked across (laptop/args.ts: loaded with the run, not for --help). */
const toBackupArgs = async (verb: Verb, ctx: Context) =>
  (await import('../../laptop/args.js')).toBackupArgs(verb, ctx.args);

/** A verb's row without what it runs: its summary, options, --env and --json as args.ts says. */
const shape = (name: Verb) => ({
  name,
  summary: VERBS[name],
  options: VERB_OPTIONS[name],
  ...(ENV_VERBS.includes(name)
    ? {
        connection: {
          default: 'aws' as const,
          required: name === 'install',
          help:
            name === 'install'
              ? 'the connection file to install (default: BTRBK_ENV_FILE, else aws_connection.env)'
              : 'the connection file (default: the installed settings when install has run, else BTRBK_ENV_FILE, else aws_connection.env)',
        },
      }
    : {}),
});

/**
 * The installed settings and the connection the verbs other than install use: --env's file when given, else the
 * installed one (root's: its key and snapshot directories are), else the default file.
 */
async function installed(ctx: Context, verbName: Verb): Promise<{ manifest: Manifest | null; conn: () => Connection }> {
  const { installedOrNull } = await import('../../laptop/commands.js');
  const { requireRoot, readConnectionHere } = await import('../../laptop/system.js');
  const { sshParams } = await import('../../remote/ssh.js');
  const manifest = installedOrNull();
  const conn = (): Connection => {
    if (ctx.args.options.env !== undefined || !manifest) return readConnectionHere(ctx.connection, verbName);
    requireRoot(
      verbName,
      `the installed backup key (${sshParams(manifest.connection).keyFile}) and the snapshot directories are root's`,
    );
    return manifest.connection;
  };
  return { manifest, conn };
}

const RUN_ROOT = 'btrbk snapshots subvolumes and reads the installed backup key, both root only';
const VERIFY_ROOT = 'the snapshots are read in full, and the result is recorded for status in /etc/btrbk/btrbk-aws';

const install = verb({
  ...shape('install'),
  root: 'it writes under /etc, snapshots subvolumes and enables systemd units',
  async run(ctx) {
    const a = await toBackupArgs('install', ctx);
    const { install } = await import('../../laptop/commands.js');
    const { formatExclusions } = await import('../../laptop/report.js');
    const { readConnectionHere } = await import('../../laptop/system.js');
    return install({
      conn: readConnectionHere(ctx.connection, 'install'),
      envFile: ctx.envFile!,
      subvolumes: a.subvolumes,
      replace: a.replace,
      snapshotDir: a.snapshotDir,
      interval: a.interval,
      device: a.device,
      dryRun: a.dryRun,
      exclude: a.exclude,
      makeSubvolume: a.makeSubvolume,
      notify: a.notify,
      uploadMbit: a.uploadMbit,
      instanceType: a.instanceType,
      onExclusions: (plans) => formatExclusions(plans, a.dryRun).forEach(ctx.say),
    });
  },
  text: async (r, { paint }) => (await import('../../laptop/report.js')).formatInstall(r, paint),
  exit: (r) => (r.steps.every((s) => s.ok) ? 0 : 1),
});

const uninstall = verb({
  ...shape('uninstall'),
  root: 'it removes files under /etc and stops systemd units',
  async run() {
    return (await import('../../laptop/commands.js')).uninstall();
  },
  text: async (r, { paint }) => (await import('../../laptop/report.js')).formatUninstall(r, paint),
});

const run = verb({
  ...shape('run'),
  root: RUN_ROOT,
  async run(ctx) {
    const { installedOrNull, runBackup } = await import('../../laptop/commands.js');
    const { formatRunSendPlan, runSendPlan } = await import('../../laptop/first-sends.js');
    const { requireRoot } = await import('../../laptop/system.js');
    // full sends of known size get an ETA in the progress line (btrbk names snapshots after the subvolume)
    const fullSizes = new Map<string, number>();
    const manifest = installedOrNull();
    if (manifest) {
      requireRoot('run', RUN_ROOT);
      const plan = await runSendPlan(manifest);
      formatRunSendPlan(plan).forEach(ctx.say);
      for (const x of plan.full) if (x.bytes !== null) fullSizes.set(path.posix.basename(x.subvolume), x.bytes);
    }
    const r = await runBackup({ fullSizes });
    if (r.error) throw r.error;
    if (r.status !== 0) throw (await import('../../laptop/report.js')).runFailure(r);
  },
});

const status = verb({
  ...shape('status'),
  async run(ctx) {
    const a = await toBackupArgs('status', ctx);
    const { manifest, conn } = await installed(ctx, 'status');
    const { backupStatus } = await import('../../laptop/status.js');
    // the connection is read only when something is installed (after uninstall: "nothing is installed")
    return backupStatus({ conn, manifest, maxAgeHours: a.maxAgeHours, subvolumes: a.subvolumes });
  },
  json: async (s) => (await import('../../laptop/status.js')).statusJson(s),
  text: async (s, { paint }) => (await import('../../laptop/status.js')).formatStatus(s, paint),
  exit: (s) => (s.ok ? 0 : 1),
});

const list = verb({
  ...shape('list'),
  async run(ctx) {
    const a = await toBackupArgs('list', ctx);
    const { manifest, conn } = await installed(ctx, 'list');
    const { listTargetBackups } = await import('../../laptop/list.js');
    if (a.sizes && !ctx.json)
      process.stderr.write('measuring the backups on their local snapshots (btrfs filesystem du) ...\n');
    return listTargetBackups({
      conn: conn(),
      manifest,
      subvolume: a.subvolumes[0],
      device: a.device,
      sizes: a.sizes,
    });
  },
  json: (l) => l,
  text: async (l) => (await import('../../laptop/list.js')).formatList(l),
});

const restore = verb({
  ...shape('restore'),
  root: 'btrfs receive, and the installed backup key',
  async run(ctx) {
    const a = await toBackupArgs('restore', ctx);
    const { manifest, conn } = await installed(ctx, 'restore');
    const { restore } = await import('../../laptop/restore.js');
    return restore({
      conn: conn(),
      manifest,
      subvolume: a.subvolumes[0],
      at: a.at,
      to: a.to,
      makeLive: a.makeLive,
      path: a.path,
      device: a.device,
      fromTarget: a.fromTarget,
    });
  },
  text: async (r) => (await import('../../laptop/restore.js')).formatRestore(r),
});

const verify = verb({
  ...shape('verify'),
  root: VERIFY_ROOT,
  async run(ctx) {
    const a = await toBackupArgs('verify', ctx);
    if (a.at !== undefined && ctx.args.options.all === true)
      throw new OperatorError('--at or --all, not both', {
        next: '--at TIMESTAMP verifies one backup, --all every one',
        exitCode: 2,
      });
    const { requireRoot } = await import('../../laptop/system.js');
    requireRoot('verify', VERIFY_ROOT);
    const { manifest, conn } = await installed(ctx, 'verify');
    const { verifyBackups } = await import('../../laptop/verify.js');
    // with --json the running commentary goes to stderr (ctx.say's stream), stdout holds the report alone
    return verifyBackups({
      conn: conn(),
      manifest,
      subvolumes: a.subvolumes,
      sample: a.sample,
      seed: a.seed,
      at: a.at,
      all: ctx.args.options.all === true,
      say: ctx.json ? ctx.say : undefined,
    });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await import('../../laptop/verify.js')).formatVerify(r, paint),
  exit: (r) => (r.ok ? 0 : 1),
});

const VERB_ROWS: readonly AnyVerb[] = [install, uninstall, run, status, list, restore, verify, ...BROWSE_ROWS];

export const BACKUP: EntryPoint = {
  name: 'backup',
  summary:
    'backups that happen by themselves, on this machine: install protects subvolumes (btrbk, a systemd timer, a pre-sleep snapshot); run, status, list, restore, verify; ls, find, diff (browse the backups); uninstall (as root)',
  command: { name: 'backup', summary: 'backups', verbs: VERB_ROWS } satisfies GroupSpec,
  usageExit: 2,
};
