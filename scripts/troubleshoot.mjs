#!/usr/bin/env zx
// Diagnoses the backup target: each check is a list of named tests that pass or fail, and a failure says the
// cause it found and the next thing to try. Exit status 1 when anything failed.
//   npx zx scripts/troubleshoot.mjs check-ssh|check-volume|check-aws|check-logs|check-all
//        [--env FILE] [--json] [--lines N] [--profile NAME]
import { minimist } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { readConnection, resolveEnvFile } = await import('./lib/core/connection.ts');
const { OperatorError, runMain } = await import('./lib/core/errors.ts');
const { CHECKS, allPassed, expandChecks, runChecks } = await import('./lib/diagnose/checks.ts');
const { checkReportJson, formatCheckReport, useColor } = await import('./lib/core/report.ts');

const USAGE = `usage: npx zx scripts/troubleshoot.mjs <check>... [--env FILE] [--json] [--lines N] [--profile NAME]
checks:
${Object.entries(CHECKS)
  .map(([k, v]) => `  ${k.padEnd(13)} ${v}`)
  .join('\n')}
  check-all     all of the above`;

await runMain(async () => {
  const args = minimist(
    process.argv.slice(2).filter((a) => !/troubleshoot\.mjs$/.test(a)),
    {
      boolean: ['json', 'help'],
      string: ['env', 'profile', 'lines'],
      unknown: (a) => {
        if (!a.startsWith('-')) return true;
        throw new OperatorError(`unknown option ${a}`, { next: USAGE });
      },
    },
  );
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  if (!args._.length) throw new OperatorError('which check?', { next: USAGE });
  const lines = args.lines === undefined ? 40 : Number(args.lines);
  if (!Number.isInteger(lines) || lines < 1 || lines > 200)
    throw new OperatorError(`--lines ${args.lines} is not a number from 1 to 200`, {
      next: 'the gate returns the last 200 lines at most',
    });
  const names = expandChecks(args._.map(String));
  const conn = readConnection(resolveEnvFile(args.env));
  const results = await runChecks(conn, names, { lines, profile: args.profile });
  if (args.json) {
    console.log(JSON.stringify(checkReportJson(results), null, 2));
  } else {
    const color = useColor(process.stdout);
    console.log(formatCheckReport(results, { color, descriptions: CHECKS }));
  }
  return allPassed(results) ? 0 : 1;
});
