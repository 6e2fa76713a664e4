// setup: one command from nothing to a verified backup target (docs/SETUP.md).
import path from 'node:path';
import { OperatorError } from '../../core/errors.js';
import { bool, list, num, str, verb, type EntryPoint } from '../command.js';

const TARGETS = ['aws', 'local'] as const;

export const setupCommand = verb({
  name: 'setup',
  summary:
    'one command from nothing to a verified backup target: prerequisites, terraform.tfvars, synth/init/plan, plan safety, cost, confirm and apply, SSH and host key pinning, smoke tests, the connection file and a btrbk.conf',
  options: [
    {
      name: 'target',
      type: 'string',
      choices: TARGETS,
      default: 'aws',
      help: 'aws: deploy with the engine; local: the local target (no AWS account)',
    },
    {
      name: 'yes',
      type: 'boolean',
      help: 'apply without the prompt (unattended runs); without a terminal it is required',
    },
    {
      name: 'profile',
      type: 'string',
      valueName: 'NAME',
      help: 'AWS profile (default: AWS_PROFILE, then the default credential chain)',
    },
    {
      name: 'var-file',
      type: 'string',
      valueName: 'FILE',
      help: "the stack's inputs (default: terraform.tfvars, else terraform.tfvars.json)",
    },
    {
      name: 'ssh-key',
      type: 'string',
      valueName: 'FILE',
      help: 'private key of ssh_public_key (default: found by its .pub in ~/.ssh)',
    },
    {
      name: 'known-hosts',
      type: 'string',
      valueName: 'FILE',
      help: 'where the pinned host key is written (default: state/known_hosts)',
    },
    {
      name: 'expected-transfer-gb',
      type: 'number',
      valueName: 'N',
      help: 'GB per month you expect to read back out (restores), for the cost estimate',
    },
    {
      name: 'data-used-gib',
      type: 'number',
      valueName: 'N',
      help: 'cost estimate: GiB the backups will hold (default: the whole data volume)',
    },
    {
      name: 'daily-change-percent',
      type: 'number',
      valueName: 'N',
      help: 'cost estimate: % of that data changed per day, for the snapshots (default 2)',
    },
    {
      name: 'source',
      type: 'list',
      valueName: 'PATH',
      help: 'a btrfs path you will back up: checks it is mounted noatime, and sizes it for the first-backup estimate (btrfs filesystem du: metadata only)',
    },
    {
      name: 'upload-mbit',
      type: 'number',
      valueName: 'N',
      help: 'your upload rate in Mbit/s, for the first-backup estimate',
    },
    {
      name: 'first-backup',
      type: 'string',
      valueName: 'TYPE',
      optionalValue: true,
      help: 'the fast lane: run the host as TYPE (default: picked from your upload rate, else t3a.medium) for the first backup, an in-place change; setup without it goes back',
    },
    {
      name: 'allow-data-volume-replacement',
      type: 'boolean',
      help: 'let the plan delete or replace the data volume and ALL ITS BACKUPS (spelled out in full)',
    },
  ],
  connection: {
    default: 'none',
    required: false,
    help: 'connection file to write (aws: aws_connection.env) or read (local: local_connection.env)',
  },
  async run(ctx) {
    const { checkOptions, consoleReporter, nextSteps, runSetup } = await import('../../deploy/setup.js');
    const { pickFastLane } = await import('../../deploy/first-backup.js');
    const a = ctx.args;
    const upload = num(a, 'upload-mbit');
    const firstBackup = str(a, 'first-backup');
    const knownHosts = str(a, 'known-hosts');
    const opts = checkOptions({
      target: str(a, 'target') as (typeof TARGETS)[number],
      yes: bool(a, 'yes'),
      profile: str(a, 'profile'),
      varFile: str(a, 'var-file'),
      sshKey: str(a, 'ssh-key'),
      envFile: ctx.envFile,
      knownHosts: knownHosts ? path.resolve(knownHosts) : undefined,
      expectedTransferGb: num(a, 'expected-transfer-gb'),
      dataUsedGib: num(a, 'data-used-gib'),
      dailyChangePercent: num(a, 'daily-change-percent'),
      sources: list(a, 'source'),
      uploadMbit: upload,
      // --first-backup alone: the type the estimate picks
      firstBackupType:
        firstBackup === undefined ? undefined : firstBackup || pickFastLane(upload !== undefined ? upload / 8 : null),
      allowDataVolumeReplacement: bool(a, 'allow-data-volume-replacement'),
    });
    // what setup runs from the other parts (deploy/ imports nothing of diagnose/ or local-target/)
    const { runChecks } = await import('../../diagnose/checks.js');
    const localTarget = opts.target === 'local' ? await import('../../local-target/local-target.js') : undefined;
    const result = await runSetup(opts, {
      reporter: consoleReporter({ stream: ctx.out, paint: ctx.paint }),
      runChecks,
      localTarget,
    });
    return { result, next: nextSteps(result.connection, result.envFile, { local: result.target === 'local' }) };
  },
  // the result, and the next steps made from it (the setup module loads with the run, never for --help)
  json: (r) => r.result,
  text: ({ result, next }, { paint: c }) =>
    `\n${c.bold('Next steps')}\n${next}\n\n${c.bold('btrbk.conf')}\n${result.btrbkConf.trimEnd()}`,
  exit({ result: r }) {
    if (!r.smoke.ok)
      throw new OperatorError(`the target is deployed but ${r.smoke.failed} smoke test(s) failed`, {
        cause: 'see the failed tests above, each with its cause',
        next: `npx zx scripts/troubleshoot.mjs check-all${r.target === 'local' ? ` --env ${path.relative(process.cwd(), r.envFile)}` : ''}; then re-run setup (it changes nothing that is already right)`,
      });
    return 0;
  },
});

export const SETUP: EntryPoint = { name: 'setup', summary: setupCommand.summary, command: setupCommand };
