#!/usr/bin/env zx
// Checks what setup needs: tofu or terraform, AWS credentials (STS), the ssh client; btrfs-progs and btrbk
// (optional, the laptop side); with --source, that a btrfs source is mounted noatime.
//   npx zx scripts/prereqs.mjs [--target aws|local] [--profile NAME] [--source PATH]... [--json]
import { minimist } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { OperatorError, runMain } = await import('./lib/core/errors.ts');
const { formatPrereqReport, runPrereqs } = await import('./lib/deploy/prereqs.ts');
const { palette, useColor } = await import('./lib/core/report.ts');

await runMain(async () => {
  const args = minimist(
    process.argv.slice(2).filter((a) => !/scripts\/prereqs\.mjs$/.test(a)),
    {
      boolean: ['json', 'help'],
      string: ['target', 'profile', 'region', 'source'],
      default: { target: 'aws' },
      unknown: (a) => {
        throw new OperatorError(`unknown argument ${a}`, {
          next: 'options: --target aws|local, --profile NAME, --region REGION, --source PATH, --json',
        });
      },
    },
  );
  if (args.help) {
    console.log(
      'usage: npx zx scripts/prereqs.mjs [--target aws|local] [--profile NAME] [--region REGION] [--source PATH]... [--json]',
    );
    return 0;
  }
  if (!['aws', 'local'].includes(args.target))
    throw new OperatorError(`unknown --target ${args.target}`, { next: 'use aws or local' });
  const report = await runPrereqs({
    target: args.target,
    profile: args.profile,
    region: args.region,
    sources: [args.source ?? []].flat(),
  });
  console.log(
    args.json ? JSON.stringify(report, null, 2) : formatPrereqReport(report, palette(useColor(process.stdout))),
  );
  return report.ok ? 0 : 1;
});
