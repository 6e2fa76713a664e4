// prereqs (what setup needs on this machine) and troubleshoot (the target's diagnostics): both print a report of
// named checks, as text or --json, and exit 1 when one failed.
import { OperatorError } from '../../core/errors.js';
import { CHECKS } from '../../diagnose/check-names.js';
import { checkReportJson, formatCheckReport, useColor } from '../../core/report.js';
import { list, num, str, verb, type EntryPoint } from '../command.js';

const prereqsCommand = verb({
  name: 'prereqs',
  summary:
    'checks what setup needs: tofu or terraform, AWS credentials (STS), the ssh client; btrfs-progs and btrbk (optional, the laptop side); with --source, that a btrfs source is mounted noatime',
  options: [
    { name: 'target', type: 'string', choices: ['aws', 'local'], default: 'aws', help: 'what setup will deploy to' },
    { name: 'profile', type: 'string', valueName: 'NAME', help: 'AWS profile for the credentials check' },
    { name: 'region', type: 'string', valueName: 'REGION', help: 'AWS region for the credentials check' },
    { name: 'source', type: 'list', valueName: 'PATH', help: 'a btrfs path you will back up: mounted noatime?' },
  ],
  async run({ args }) {
    const { runPrereqs } = await import('../../deploy/prereqs.js');
    return runPrereqs({
      target: str(args, 'target') as 'aws' | 'local',
      profile: str(args, 'profile'),
      region: str(args, 'region'),
      sources: list(args, 'source'),
    });
  },
  json: (r) => r,
  text: async (r, { paint }) => (await import('../../deploy/prereqs.js')).formatPrereqReport(r, paint),
  exit: (r) => (r.ok ? 0 : 1),
});

export const PREREQS: EntryPoint = { name: 'prereqs', summary: prereqsCommand.summary, command: prereqsCommand };

const CHECK_LIST: Record<string, string> = { ...CHECKS, 'check-all': 'all of the above' };

const troubleshootCommand = verb({
  name: 'troubleshoot',
  summary:
    'diagnoses the backup target: each check is a list of named tests that pass or fail, and a failure says the cause it found and the next thing to try (exit status 1 when anything failed)',
  positionals: [
    {
      name: 'check',
      required: true,
      variadic: true,
      help: `one or more of:\n${Object.entries(CHECK_LIST)
        .map(([k, v]) => `${k.padEnd(13)} ${v}`)
        .join('\n')}`,
    },
  ],
  options: [
    {
      name: 'lines',
      type: 'number',
      valueName: 'N',
      default: 40,
      help: 'check-logs: how many of the last log lines to show (1 to 200)',
    },
    { name: 'profile', type: 'string', valueName: 'NAME', help: 'AWS profile for check-aws' },
  ],
  connection: {
    default: 'aws',
    required: true,
    help: 'the connection file (default: BTRBK_ENV_FILE, else aws_connection.env)',
  },
  async run(ctx) {
    const { expandChecks, runChecks } = await import('../../diagnose/checks.js');
    const lines = num(ctx.args, 'lines')!;
    if (!Number.isInteger(lines) || lines < 1 || lines > 200)
      throw new OperatorError(`--lines ${lines} is not a number from 1 to 200`, {
        next: 'the gate returns the last 200 lines at most',
      });
    const names = expandChecks(ctx.args.positionals.check as string[]);
    return runChecks(ctx.connection(), names, { lines, profile: str(ctx.args, 'profile') });
  },
  json: (r) => checkReportJson(r),
  text: (results, { out }) => formatCheckReport(results, { color: useColor(out), descriptions: CHECKS }),
  exit: (results) => (checkReportJson(results).ok ? 0 : 1),
});

export const TROUBLESHOOT: EntryPoint = {
  name: 'troubleshoot',
  summary: troubleshootCommand.summary,
  command: troubleshootCommand,
};
