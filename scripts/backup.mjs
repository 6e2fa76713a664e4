#!/usr/bin/env zx
// Backups that happen by themselves, on the laptop (or server): install protects subvolumes with btrbk, a systemd
// timer and a pre-sleep snapshot; run, status, list and restore; uninstall. See README "Backups" and docs/RESTORE.md.
//   npx zx scripts/backup.mjs install --subvolume /home [--subvolume /srv] [--env FILE] [--interval hourly]
//                                     [--upload-mbit N] [--instance-type TYPE]   (the first backup's estimate)
//   npx zx scripts/backup.mjs uninstall | run | status [--json] | list | restore --subvolume /home [...]
//   npx zx scripts/backup.mjs verify [--subvolume /home] [--sample PERCENT] [--seed N] [--json]
import { register } from 'tsx/esm/api';
import path from 'node:path';

register();
const { readConnection, resolveEnvFile } = await import('./lib/core/connection.ts');
const { runMain } = await import('./lib/core/errors.ts');
const { palette, useColor } = await import('./lib/core/report.ts');
const { parseBackupArgs, USAGE } = await import('./lib/laptop/args.ts');
const { install, uninstall, runBackup, installedOrNull } = await import('./lib/laptop/commands.ts');
const { formatFirstSends, runSendPlan, formatRunSendPlan } = await import('./lib/laptop/first-sends.ts');
const { requireRoot } = await import('./lib/laptop/system.ts');
const { backupStatus, formatStatus, statusJson } = await import('./lib/laptop/status.ts');
const { listTargetBackups, formatList } = await import('./lib/laptop/list.ts');
const { restore, formatRestore } = await import('./lib/laptop/restore.ts');
const { verifyBackups, formatVerify } = await import('./lib/laptop/verify.ts');

await runMain(async () => {
  const args = parseBackupArgs(process.argv.slice(2).filter((a) => !/backup\.mjs$/.test(a)));
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const c = palette(useColor(process.stdout));
  // install reads the connection file; the other verbs use the installed settings unless --env names a file
  const manifest = args.verb === 'install' ? null : installedOrNull();
  const envFile = resolveEnvFile(args.env);
  const conn = () => {
    if (args.env || !manifest) return readConnection(envFile);
    requireRoot(
      args.verb,
      `the installed backup key (${manifest.connection.BTRBK_AWS_SSH_KEY}) and the snapshot directories are root's`,
    );
    return manifest.connection;
  };

  switch (args.verb) {
    case 'install': {
      const r = await install({
        conn: readConnection(envFile),
        envFile,
        subvolumes: args.subvolumes,
        snapshotDir: args.snapshotDir,
        interval: args.interval,
        machine: args.machine,
        dryRun: args.dryRun,
        exclude: args.exclude,
        makeSubvolume: args.makeSubvolume,
        notify: args.notify,
        uploadMbit: args.uploadMbit,
        instanceType: args.instanceType,
        onExclusions: (plans) => {
          for (const x of plans) {
            console.log(
              `--exclude ${x.dir}${x.action === 'convert' ? (args.dryRun ? ' (dry run: would do)' : ' (doing now):') : ':'}`,
            );
            x.steps.forEach((s, i) => console.log(`  ${x.action === 'convert' ? `${i + 1}. ` : ''}${s}`));
          }
        },
      });
      if (r.dryRun) console.log(c.bold('dry run: nothing written'));
      for (const s of r.sources)
        console.log(`${c.green('✓')} ${s.subvolume} is a btrfs subvolume; snapshots in ${s.snapshotDir}`);
      for (const d of r.snapshotDirsCreated)
        console.log(`  ${r.dryRun ? 'would create' : 'created'} the snapshot directory ${d}`);
      console.log(`  backups go to ${r.targetDir} on the target (host mode: ${r.hostMode ?? 'not reachable now'})`);
      for (const f of r.files) if (f.action !== 'unchanged') console.log(`  ${f.action.padEnd(9)} ${f.path}`);
      const same = r.files.filter((f) => f.action === 'unchanged').length;
      if (same) console.log(`  unchanged ${same} file(s)`);
      for (const s of r.steps)
        console.log(
          `${s.ok ? c.green('✓') : c.red('✗')} ${s.what}${s.detail && !s.ok ? `\n    ${s.detail.split('\n').join('\n    ')}` : ''}`,
        );
      for (const w of r.warnings) console.log(`${c.yellow('!')} ${w}`);
      for (const l of formatFirstSends(r.firstSends, r.firstBackup, r.instanceType)) console.log(l);
      const changed = r.files.filter((f) => f.action !== 'unchanged' && f.action !== 'absent').length;
      for (const x of r.exclusions)
        if (x.keptAs && !r.dryRun)
          console.log(
            `${c.yellow('!')} ${x.dir} is now a nested subvolume (not in the backups). The original is kept at ${x.keptAs}: look, then delete it (rm -rf ${x.keptAs})`,
          );
      if (!r.dryRun)
        console.log(changed ? `${changed} file(s) changed.` : 'Nothing changed: already installed like this.');
      if (!r.dryRun)
        console.log(`Next: npx zx scripts/backup.mjs run   (one backup now), then: npx zx scripts/backup.mjs status`);
      return r.steps.every((s) => s.ok) ? 0 : 1;
    }
    case 'uninstall': {
      const r = await uninstall();
      if (!r.installed) console.log('no install manifest found; removed any of the known files that were there');
      for (const s of r.steps)
        console.log(`${s.ok ? c.green('✓') : c.yellow('!')} ${s.what}${s.ok ? '' : ` (${s.detail})`}`);
      for (const f of r.files) if (f.action !== 'absent') console.log(`  ${f.action.padEnd(9)} ${f.path}`);
      for (const d of r.keptSnapshotDirs)
        console.log(`  kept      ${d} (your snapshots; delete them with btrfs subvolume delete if you want)`);
      if (r.targetDir) console.log(`  kept      the backups in ${r.targetDir} on the target`);
      return 0;
    }
    case 'run': {
      // full sends of known size get an ETA in the progress line (btrbk names snapshots after the subvolume)
      const fullSizes = new Map();
      if (manifest) {
        requireRoot('run', 'btrbk snapshots subvolumes and reads the installed backup key, both root only');
        const plan = await runSendPlan(manifest);
        for (const l of formatRunSendPlan(plan)) console.log(l);
        for (const x of plan.full) if (x.bytes !== null) fullSizes.set(path.posix.basename(x.subvolume), x.bytes);
      }
      const r = await runBackup({ fullSizes });
      if (r.error) throw r.error;
      if (r.status !== 0) {
        console.error(`${c.red('✗')} btrbk run failed (exit ${r.status ?? r.signal})`);
        console.error("  cause: see btrbk's messages above (ERROR lines)");
        console.error(
          '  next:  npx zx scripts/backup.mjs status; npx zx scripts/troubleshoot.mjs check-ssh --env /etc/btrbk/btrbk-aws/connection.env',
        );
        return 1;
      }
      return 0;
    }
    case 'status': {
      const s = await backupStatus({
        conn: conn(),
        manifest,
        maxAgeHours: args.maxAgeHours,
        subvolumes: args.subvolumes,
      });
      console.log(args.json ? JSON.stringify(statusJson(s), null, 2) : formatStatus(s, c));
      return s.ok ? 0 : 1;
    }
    case 'list': {
      if (args.sizes && !args.json)
        console.error('measuring the backups on their local snapshots (btrfs filesystem du) ...');
      const l = await listTargetBackups({
        conn: conn(),
        manifest,
        subvolume: args.subvolumes[0],
        machine: args.machine,
        sizes: args.sizes,
      });
      console.log(args.json ? JSON.stringify(l, null, 2) : formatList(l));
      return 0;
    }
    case 'restore': {
      const r = await restore({
        conn: conn(),
        manifest,
        subvolume: args.subvolumes[0],
        at: args.at,
        to: args.to,
        makeLive: args.makeLive,
        path: args.path,
        machine: args.machine,
      });
      console.log(formatRestore(r));
      return 0;
    }
    case 'verify': {
      requireRoot(
        'verify',
        'the snapshots are read in full, and the result is recorded for status in /etc/btrbk/btrbk-aws',
      );
      // with --json, stdout is the report alone: the running commentary goes to stderr
      const say = args.json ? (l) => console.error(l) : undefined;
      const r = await verifyBackups({
        conn: conn(),
        manifest,
        subvolumes: args.subvolumes,
        sample: args.sample,
        seed: args.seed,
        say,
      });
      console.log(args.json ? JSON.stringify(r, null, 2) : formatVerify(r, c));
      return r.ok ? 0 : 1;
    }
  }
  return 2;
});
