#!/usr/bin/env zx
// The local target: the real boot script in a Debian 12 container on this machine (see docs/LOCAL-TARGET.md).
//   npx zx scripts/local-target.mjs up [--port 2222] [--volume-size 2G] [--limits t3a.nano|none] [--link 32/40]
//   npx zx scripts/local-target.mjs limits t3a.nano|none [--link RATE_MBIT/RTT_MS|none]   (on a running target)
//   npx zx scripts/local-target.mjs instance-types [--verify [--profile P] [--region R]]   (the facts --limits uses)
//   npx zx scripts/local-target.mjs down [--purge]
//   npx zx scripts/local-target.mjs status [--json]
import { argv } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { runMain, OperatorError } = await import('./lib/core/errors.ts');
const { up, down, status, setLimits, parseLinkShape } = await import('./lib/local-target/local-target.ts');
const { BACKUP_USER, MOUNT_POINT } = await import('./lib/core/host-layout.ts');
const { palette, useColor } = await import('./lib/core/report.ts');

const c = palette(useColor(process.stdout));
const progress = (line) => console.log(c.dim(line));

function describe(s) {
  const lines = [];
  lines.push(`${s.running ? c.green('● running') : c.yellow('○ stopped')}${s.healthy ? c.green(' and healthy') : s.running ? c.red(' but not healthy') : ''}`);
  if (s.port) lines.push(`  ssh:     ${BACKUP_USER}@127.0.0.1 port ${s.port}${s.running ? (s.sshBanner ? ` (${s.sshBanner})` : c.red(' (no answer)')) : ''}`);
  lines.push(`  volume:  ${s.volumeId ?? '(none yet)'}${s.volumeImage ? ` ${s.volumeImage} (${(s.volumeBytes / 2 ** 30).toFixed(1)} GiB sparse)` : ''}${s.loopDevices.length ? ` on ${s.loopDevices.join(', ')}` : ''}`);
  if (s.running) lines.push(`  mounted: ${s.mounted ? `${MOUNT_POINT} (${s.mount.fstype} on ${s.mount.source})` : c.red('no')}`);
  if (s.boot.ready) lines.push(`  boot:    ${c.green('ready')} (boot script version ${s.boot.ready.version}, ${s.boot.ready.completed})`);
  if (s.boot.failed) lines.push(`  boot:    ${c.red(`FAILED at step ${s.boot.failed.step}`)} (${s.boot.failed.failed}); log: ${s.bootLog}`);
  if (s.limits) {
    const l = s.limits;
    lines.push(`  limits:  ${l.type ?? 'none'}${l.cpuQuotaUs ? `: CPU ${(100 * l.cpuQuotaUs / l.cpuPeriodUs).toFixed(0)} % of one core` : ''}${l.memoryBytes ? `, memory ${l.memoryBytes / 2 ** 20} MiB` : ''} (kernel threads are not limited)`);
  }
  if (s.link) lines.push(`  link:    ${s.link.rateMbit} Mbit/s, ${s.link.rttMs} ms round trip (sshd port only)`);
  if (s.envFile) lines.push(`  env:     ${s.envFile}`);
  return lines.join('\n');
}

// --limits TYPE|none, --link RATE/RTT|none: undefined when not given (keep what is set)
const limitsArg = (v) => (v === undefined ? undefined : ['none', 'off', 'false'].includes(String(v)) ? null : String(v));
const linkArg = (v) => (v === undefined ? undefined : ['none', 'off', 'false'].includes(String(v)) ? null : parseLinkShape(String(v)));

await runMain(async () => {
  const [command = 'status', arg] = argv._;
  if (command === 'instance-types') {
    const it = await import('./lib/core/instance-types.ts');
    for (const [name, f] of Object.entries(it.INSTANCE_TYPES)) {
      console.log(`${name.padEnd(12)} ${f.arch.padEnd(6)} ${f.vcpus} vCPU  ${String(f.memoryMiB).padStart(5)} MiB  baseline ${(100 * it.baselinePerVcpu(f)).toFixed(0).padStart(2)} %/vCPU  network ${f.networkBaselineGbps} Gbit/s (${it.networkBaselineMBps(f)} MB/s), burst ${f.networkBurstGbps}`);
    }
    if (!argv.verify) return 0;
    const { makeEc2Client, awsError } = await import('./lib/deploy/aws.ts');
    let diffs;
    try {
      diffs = await it.verifyInstanceTypes(makeEc2Client({ profile: argv.profile, region: argv.region }));
    } catch (err) {
      throw awsError(err, 'DescribeInstanceTypes', { profile: argv.profile });
    }
    if (!diffs.length) { console.log(c.green('✓ DescribeInstanceTypes agrees with the table (vCPUs, memory, network baseline and burst, architecture; the CPU baselines are from the EC2 User Guide\'s credit table)')); return 0; }
    for (const d of diffs) console.log(c.red(`✗ ${d.type} ${d.field}: table ${d.table}, DescribeInstanceTypes ${d.live}`));
    throw new OperatorError('the instance-type table differs from DescribeInstanceTypes', { next: 'update scripts/lib/core/instance-types.ts with the live figures above' });
  }
  if (command === 'limits') {
    if (arg === undefined && argv.link === undefined) throw new OperatorError('limits needs an instance type or none', { next: 'npx zx scripts/local-target.mjs limits t3a.nano (or: limits none)' });
    setLimits({ limits: limitsArg(arg), link: linkArg(argv.link), onProgress: progress });
    console.log(describe(await status()));
    return 0;
  }
  if (command === 'up') {
    const result = await up({ port: argv.port, volumeSize: argv['volume-size'], limits: limitsArg(argv.limits), link: linkArg(argv.link), onProgress: progress });
    if (argv.json) { console.log(JSON.stringify(result, null, 2)); return 0; }
    console.log(result.alreadyUp ? c.green('✓ the local target is already up; nothing to do') : c.green(`✓ the local target is up in ${result.timings.totalSeconds.toFixed(1)} s`));
    console.log(describe(result));
    console.log(`\nUse it with any script: --env ${result.envFile}  (or BTRBK_ENV_FILE=${result.envFile})`);
    return 0;
  }
  if (command === 'down') {
    const result = await down({ purge: Boolean(argv.purge), onProgress: progress });
    if (argv.json) { console.log(JSON.stringify(result, null, 2)); return 0; }
    console.log(c.green(`✓ the local target is down (${result.seconds.toFixed(1)} s); nothing is mounted or attached`));
    console.log(result.purged ? '  the volume image is deleted (--purge)' : `  the volume is kept: ${result.volumeImage} (down --purge deletes it)`);
    return 0;
  }
  if (command === 'status') {
    const s = await status();
    if (argv.json) console.log(JSON.stringify(s, null, 2));
    else console.log(describe(s));
    return s.running && !s.healthy ? 1 : 0;
  }
  throw new OperatorError(`unknown command ${command}`, { next: 'use: npx zx scripts/local-target.mjs up|down|status|limits|instance-types [--json]' });
});
