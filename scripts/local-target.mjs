#!/usr/bin/env zx
// The local target: the real boot script in a Debian 12 container on this machine (see docs/LOCAL-TARGET.md).
//   npx zx scripts/local-target.mjs up [--port 2222] [--volume-size 2G] [--limits t3a.nano|none] [--link 32/40]
//   npx zx scripts/local-target.mjs limits t3a.nano|none [--link RATE_MBIT/RTT_MS|none]   (on a running target)
//   npx zx scripts/local-target.mjs instance-types [--verify [--profile P] [--region R]]   (the facts --limits uses)
//   npx zx scripts/local-target.mjs down [--purge]
//   npx zx scripts/local-target.mjs status [--json]
// and the laptop container that backs up to it (Debian 13, its own btrfs disk; see docs/LOCAL-TARGET.md):
//   npx zx scripts/local-target.mjs laptop up [--env local_connection.env] [--disk-size 1G]
//   npx zx scripts/local-target.mjs laptop down [--purge]
//   npx zx scripts/local-target.mjs laptop status [--json]
//   npx zx scripts/local-target.mjs laptop exec -- CMD [ARG...]      (as root inside, in the project directory)
//   npx zx scripts/local-target.mjs laptop network down|up          (cut or restore the laptop's link to the target)
//   npx zx scripts/local-target.mjs laptop demo [--env FILE]        (npm run demo's laptop half)
import { spawnSync } from 'node:child_process';
import { argv } from 'zx';
// the operator library is TypeScript: tsx's ESM loader compiles it on import
import { register } from 'tsx/esm/api';

register();
const { runMain, OperatorError } = await import('./lib/core/errors.ts');
const { up, down, status, setLimits, parseLinkShape } = await import('./lib/local-target/local-target.ts');
const { BACKUP_USER, MOUNT_POINT } = await import('./lib/core/host-layout.ts');
const { palette, useColor } = await import('./lib/core/report.ts');
const laptop = await import('./lib/local-target/laptop.ts');

const c = palette(useColor(process.stdout));
const progress = (line) => console.log(c.dim(line));

function describe(s) {
  const lines = [];
  lines.push(
    `${s.running ? c.green('● running') : c.yellow('○ stopped')}${s.healthy ? c.green(' and healthy') : s.running ? c.red(' but not healthy') : ''}`,
  );
  if (s.port)
    lines.push(
      `  ssh:     ${BACKUP_USER}@127.0.0.1 port ${s.port}${s.running ? (s.sshBanner ? ` (${s.sshBanner})` : c.red(' (no answer)')) : ''}`,
    );
  lines.push(
    `  volume:  ${s.volumeId ?? '(none yet)'}${s.volumeImage ? ` ${s.volumeImage} (${(s.volumeBytes / 2 ** 30).toFixed(1)} GiB sparse)` : ''}${s.loopDevices.length ? ` on ${s.loopDevices.join(', ')}` : ''}`,
  );
  if (s.running)
    lines.push(`  mounted: ${s.mounted ? `${MOUNT_POINT} (${s.mount.fstype} on ${s.mount.source})` : c.red('no')}`);
  if (s.boot.ready)
    lines.push(
      `  boot:    ${c.green('ready')} (boot script version ${s.boot.ready.version}, ${s.boot.ready.completed})`,
    );
  if (s.boot.failed)
    lines.push(
      `  boot:    ${c.red(`FAILED at step ${s.boot.failed.step}`)} (${s.boot.failed.failed}); log: ${s.bootLog}`,
    );
  if (s.limits) {
    const l = s.limits;
    lines.push(
      `  limits:  ${l.type ?? 'none'}${l.cpuQuotaUs ? `: CPU ${((100 * l.cpuQuotaUs) / l.cpuPeriodUs).toFixed(0)} % of one core` : ''}${l.memoryBytes ? `, memory ${l.memoryBytes / 2 ** 20} MiB` : ''} (kernel threads are not limited)`,
    );
  }
  if (s.link) lines.push(`  link:    ${s.link.rateMbit} Mbit/s, ${s.link.rttMs} ms round trip (sshd port only)`);
  if (s.envFile) lines.push(`  env:     ${s.envFile}`);
  return lines.join('\n');
}

function describeLaptop(s) {
  const lines = [
    `${s.running ? c.green('● laptop running') : c.yellow('○ laptop stopped')}${s.healthy ? c.green(' and healthy') : s.running ? c.red(' but not healthy') : ''} (${s.name})`,
  ];
  lines.push(
    `  disk:    ${s.diskImage ? `${s.diskImage} (${(s.diskBytes / 2 ** 30).toFixed(1)} GiB sparse)${s.loopDevices.length ? ` on ${s.loopDevices.join(', ')}` : ''}` : '(none yet)'}${s.running ? (s.diskMounted ? ` at ${laptop.LAPTOP_DISK_MOUNT}` : c.red(' not mounted')) : ''}`,
  );
  if (s.port)
    lines.push(
      `  network: 127.0.0.1:${s.port} -> the local target${s.running ? (s.uplink.unit && s.uplink.host ? c.green(' (up)') : c.yellow(` (down: ${!s.uplink.unit ? `${laptop.UPLINK_UNIT} stopped` : "this machine's socat is gone"})`)) : ''}`,
    );
  if (s.envFile) lines.push(`  env:     ${s.envFile} (inside the laptop)`);
  return lines.join('\n');
}

async function laptopCommand(verb, rest) {
  if (verb === 'up') {
    const r = await laptop.laptopUp({ envFile: argv.env, diskSize: argv['disk-size'], onProgress: progress });
    if (argv.json) {
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    console.log(
      r.alreadyUp
        ? c.green('✓ the laptop is already up; nothing to do')
        : c.green(`✓ the laptop is up in ${r.seconds.toFixed(1)} s`),
    );
    console.log(describeLaptop(r));
    console.log(
      `\nRun things in it: npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs --help`,
    );
    return 0;
  }
  if (verb === 'down') {
    const r = await laptop.laptopDown({ purge: Boolean(argv.purge), onProgress: progress });
    if (argv.json) {
      console.log(JSON.stringify(r, null, 2));
      return 0;
    }
    console.log(c.green(`✓ the laptop is down (${r.seconds.toFixed(1)} s); nothing is mounted or attached`));
    console.log(
      r.purged
        ? '  its disk image is deleted (--purge)'
        : `  its disk is kept: ${r.diskImage} (laptop down --purge deletes it)`,
    );
    return 0;
  }
  if (verb === 'status') {
    const s = laptop.laptopStatus();
    console.log(argv.json ? JSON.stringify(s, null, 2) : describeLaptop(s));
    return s.running && !s.healthy ? 1 : 0;
  }
  if (verb === 'exec') {
    if (!rest.length)
      throw new OperatorError('laptop exec needs a command', {
        next: 'npx zx scripts/local-target.mjs laptop exec -- btrbk --version',
      });
    const r = spawnSync('nsenter', laptop.laptopExecArgs(rest.map(String)), { stdio: 'inherit' });
    if (r.error) throw new OperatorError('cannot run nsenter', { cause: r.error.message, next: 'install util-linux' });
    return r.status ?? 1;
  }
  if (verb === 'demo') {
    const { laptopDemo } = await import('./lib/local-target/laptop-demo.ts');
    await laptopDemo({ envFile: argv.env, c });
    return 0;
  }
  if (verb === 'network' && ['up', 'down'].includes(rest[0])) {
    await laptop.laptopNetwork(rest[0]);
    console.log(c.green(`✓ the laptop's network is ${rest[0]}`));
    return 0;
  }
  throw new OperatorError(`unknown laptop command ${[verb, ...rest].join(' ')}`, {
    next: 'use: npx zx scripts/local-target.mjs laptop up|down|status|exec -- CMD|network down|up|demo',
  });
}

// --limits TYPE|none, --link RATE/RTT|none: undefined when not given (keep what is set)
const limitsArg = (v) =>
  v === undefined ? undefined : ['none', 'off', 'false'].includes(String(v)) ? null : String(v);
const linkArg = (v) =>
  v === undefined ? undefined : ['none', 'off', 'false'].includes(String(v)) ? null : parseLinkShape(String(v));

await runMain(async () => {
  const [command = 'status', arg] = argv._;
  if (command === 'laptop') {
    // everything after `--` is the command for exec, as given (zx's argv keeps it in argv._ after the verb)
    const dash = process.argv.indexOf('--');
    return laptopCommand(String(argv._[1] ?? 'status'), dash >= 0 ? process.argv.slice(dash + 1) : argv._.slice(2));
  }
  if (command === 'instance-types') {
    const it = await import('./lib/core/instance-types.ts');
    for (const [name, f] of Object.entries(it.INSTANCE_TYPES)) {
      console.log(
        `${name.padEnd(12)} ${f.arch.padEnd(6)} ${f.vcpus} vCPU  ${String(f.memoryMiB).padStart(5)} MiB  baseline ${(100 * it.baselinePerVcpu(f)).toFixed(0).padStart(2)} %/vCPU  network ${f.networkBaselineGbps} Gbit/s (${it.networkBaselineMBps(f)} MB/s), burst ${f.networkBurstGbps}`,
      );
    }
    if (!argv.verify) return 0;
    const { makeEc2Client, awsError } = await import('./lib/deploy/aws.ts');
    let diffs;
    try {
      diffs = await it.verifyInstanceTypes(makeEc2Client({ profile: argv.profile, region: argv.region }));
    } catch (err) {
      throw awsError(err, 'DescribeInstanceTypes', { profile: argv.profile });
    }
    if (!diffs.length) {
      console.log(
        c.green(
          "✓ DescribeInstanceTypes agrees with the table (vCPUs, memory, network baseline and burst, architecture; the CPU baselines are from the EC2 User Guide's credit table)",
        ),
      );
      return 0;
    }
    for (const d of diffs)
      console.log(c.red(`✗ ${d.type} ${d.field}: table ${d.table}, DescribeInstanceTypes ${d.live}`));
    throw new OperatorError('the instance-type table differs from DescribeInstanceTypes', {
      next: 'update scripts/lib/core/instance-types.ts with the live figures above',
    });
  }
  if (command === 'limits') {
    if (arg === undefined && argv.link === undefined)
      throw new OperatorError('limits needs an instance type or none', {
        next: 'npx zx scripts/local-target.mjs limits t3a.nano (or: limits none)',
      });
    setLimits({ limits: limitsArg(arg), link: linkArg(argv.link), onProgress: progress });
    console.log(describe(await status()));
    return 0;
  }
  if (command === 'up') {
    const result = await up({
      port: argv.port,
      volumeSize: argv['volume-size'],
      limits: limitsArg(argv.limits),
      link: linkArg(argv.link),
      onProgress: progress,
    });
    if (argv.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    console.log(
      result.alreadyUp
        ? c.green('✓ the local target is already up; nothing to do')
        : c.green(`✓ the local target is up in ${result.timings.totalSeconds.toFixed(1)} s`),
    );
    console.log(describe(result));
    console.log(`\nUse it with any script: --env ${result.envFile}  (or BTRBK_ENV_FILE=${result.envFile})`);
    return 0;
  }
  if (command === 'down') {
    const result = await down({ purge: Boolean(argv.purge), onProgress: progress });
    if (argv.json) {
      console.log(JSON.stringify(result, null, 2));
      return 0;
    }
    console.log(c.green(`✓ the local target is down (${result.seconds.toFixed(1)} s); nothing is mounted or attached`));
    console.log(
      result.purged
        ? '  the volume image is deleted (--purge)'
        : `  the volume is kept: ${result.volumeImage} (down --purge deletes it)`,
    );
    return 0;
  }
  if (command === 'status') {
    const s = await status();
    if (argv.json) console.log(JSON.stringify(s, null, 2));
    else console.log(describe(s));
    return s.running && !s.healthy ? 1 : 0;
  }
  throw new OperatorError(`unknown command ${command}`, {
    next: 'use: npx zx scripts/local-target.mjs up|down|status|limits|instance-types [--json], or laptop up|down|status|exec|network|demo',
  });
});
