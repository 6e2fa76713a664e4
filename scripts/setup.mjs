#!/usr/bin/env zx
// One command from nothing to a verified backup target (issue 4): prerequisites, terraform.tfvars, synth/init/plan,
// plan safety, cost, confirm + apply, SSH + host key pinning, smoke tests, aws_connection.env and a btrbk.conf.
//   npx zx scripts/setup.mjs [--target aws|local] [--yes] [--profile NAME] [--json] ...   (--help for all)
import { minimist } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { OperatorError, runMain } = await import('./lib/core/errors.ts');
const { checkOptions, consoleReporter, nextSteps, runSetup } = await import('./lib/deploy/setup.ts');
const { palette, useColor } = await import('./lib/core/report.ts');
const { pickFastLane } = await import('./lib/deploy/first-backup.ts');

const USAGE = `usage: npx zx scripts/setup.mjs [options]

  --target aws|local               aws (default): deploy with the engine; local: the local target (no AWS account)
  --yes                            apply without the prompt (unattended runs); without a terminal it is required
  --profile NAME                   AWS profile (default: AWS_PROFILE, then the default credential chain)
  --var-file FILE                  the stack's inputs (default: terraform.tfvars, else terraform.tfvars.json)
  --ssh-key FILE                   private key of ssh_public_key (default: found by its .pub in ~/.ssh)
  --env FILE                       connection file to write (aws: aws_connection.env) or read (local: local_connection.env)
  --known-hosts FILE               where the pinned host key is written (default: state/known_hosts)
  --expected-transfer-gb N         GB per month you expect to read back out (restores), for the cost estimate
  --data-used-gib N                cost estimate: GiB the backups will hold (default: the whole data volume)
  --daily-change-percent N         cost estimate: % of that data changed per day, for the snapshots (default 2)
  --source PATH                    a btrfs path you will back up: checks it is mounted noatime, and sizes it for
                                   the first-backup estimate (btrfs filesystem du: metadata only) (repeatable)
  --upload-mbit N                  your upload rate in Mbit/s, for the first-backup estimate
  --first-backup [TYPE]            the fast lane: run the host as TYPE (default: picked from your upload rate, else
                                   t3a.medium) for the first backup, an in-place change; setup without it goes back
  --allow-data-volume-replacement  let the plan delete or replace the data volume and ALL ITS BACKUPS
  --json                           print the result as JSON on stdout (progress goes to stderr)
`;
const BOOLEANS = ['yes', 'json', 'allow-data-volume-replacement', 'help'];
const STRINGS = [
  'target',
  'profile',
  'var-file',
  'ssh-key',
  'env',
  'known-hosts',
  'expected-transfer-gb',
  'data-used-gib',
  'daily-change-percent',
  'source',
  'upload-mbit',
  'first-backup',
];

await runMain(async () => {
  const args = minimist(
    process.argv.slice(2).filter((a) => !/scripts\/setup\.mjs$/.test(a)),
    {
      boolean: BOOLEANS,
      string: STRINGS,
      default: { target: 'aws' },
      unknown: (a) => {
        if (a.startsWith('-'))
          throw new OperatorError(`unknown option ${a}`, {
            details: USAGE,
            next: 'see the options above (the data-volume flag must be spelled out in full)',
          });
        throw new OperatorError(`unexpected argument ${a}`, { details: USAGE });
      },
    },
  );
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const opts = checkOptions({
    target: args.target,
    yes: args.yes,
    profile: args.profile,
    varFile: args['var-file'],
    sshKey: args['ssh-key'],
    envFile: args.env ? path.resolve(args.env) : undefined,
    knownHosts: args['known-hosts'] ? path.resolve(args['known-hosts']) : undefined,
    expectedTransferGb: args['expected-transfer-gb'] !== undefined ? Number(args['expected-transfer-gb']) : undefined,
    dataUsedGib: args['data-used-gib'] !== undefined ? Number(args['data-used-gib']) : undefined,
    dailyChangePercent: args['daily-change-percent'] !== undefined ? Number(args['daily-change-percent']) : undefined,
    sources: [args.source ?? []].flat(),
    uploadMbit: args['upload-mbit'] !== undefined ? Number(args['upload-mbit']) : undefined,
    // --first-backup alone: the type the estimate picks
    firstBackupType:
      args['first-backup'] === undefined
        ? undefined
        : args['first-backup'] ||
          pickFastLane(args['upload-mbit'] !== undefined ? Number(args['upload-mbit']) / 8 : null),
    allowDataVolumeReplacement: args['allow-data-volume-replacement'],
  });
  const out = args.json ? process.stderr : process.stdout;
  const c = palette(useColor(out));
  const reporter = consoleReporter({ stream: out, paint: c });
  const result = await runSetup(opts, { reporter });

  if (args.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    out.write(
      `\n${c.bold('Next steps')}\n${nextSteps(result.connection, result.envFile, { local: result.target === 'local' })}\n`,
    );
    out.write(`\n${c.bold('btrbk.conf')}\n${result.btrbkConf}`);
  }
  if (!result.smoke.ok) {
    throw new OperatorError(`the target is deployed but ${result.smoke.failed} smoke test(s) failed`, {
      cause: 'see the failed tests above, each with its cause',
      next: `npx zx scripts/troubleshoot.mjs check-all${result.target === 'local' ? ` --env ${path.relative(process.cwd(), result.envFile)}` : ''}; then re-run setup (it changes nothing that is already right)`,
    });
  }
  return 0;
});
