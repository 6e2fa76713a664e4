// The local target's and the laptop's state as text (local-target.mjs status, up, limits; laptop status, up, down):
// pure functions of the status objects, so the output is tested without root or a container.
import { baselinePerVcpu, INSTANCE_TYPES, networkBaselineMBps } from '../core/instance-types.js';
import { BACKUP_USER, MOUNT_POINT } from '../../../user-data/host-layout.js';
import { palette, type Palette } from '../core/report.js';
import type { FactMismatch } from '../core/instance-types.js';
import type { LaptopStatus } from './laptop.js';
import type { DownResult, LocalTargetStatus, UpResult } from './local-target.js';

/** The laptop's disk mount point and uplink unit (laptop.ts LAPTOP_DISK_MOUNT, UPLINK_UNIT). */
export interface LaptopNames {
  diskMount: string;
  uplinkUnit: string;
}

const plain = palette(false);
const gib = (bytes: number | null): string => ((bytes ?? 0) / 2 ** 30).toFixed(1);
const health = (s: { running: boolean; healthy: boolean }, c: Palette): string =>
  s.healthy ? c.green(' and healthy') : s.running ? c.red(' but not healthy') : '';

/** The target's state: running and healthy, ssh, volume, mount, boot, limits, link, connection file. */
export function describeTarget(s: LocalTargetStatus, c: Palette = plain): string {
  const lines = [`${s.running ? c.green('● running') : c.yellow('○ stopped')}${health(s, c)}`];
  if (s.port)
    lines.push(
      `  ssh:     ${BACKUP_USER}@127.0.0.1 port ${s.port}${s.running ? (s.sshBanner ? ` (${s.sshBanner})` : c.red(' (no answer)')) : ''}`,
    );
  lines.push(
    `  volume:  ${s.volumeId ?? '(none yet)'}${s.volumeImage ? ` ${s.volumeImage} (${gib(s.volumeBytes)} GiB sparse)` : ''}${s.loopDevices.length ? ` on ${s.loopDevices.join(', ')}` : ''}`,
  );
  if (s.running)
    lines.push(
      `  mounted: ${s.mounted && s.mount ? `${MOUNT_POINT} (${s.mount.fstype} on ${s.mount.source})` : c.red('no')}`,
    );
  if (s.boot.ready)
    lines.push(
      `  boot:    ${c.green('ready')} (Debian ${s.release}, boot script version ${s.boot.ready.version}, ${s.boot.ready.completed})`,
    );
  if (s.boot.failed)
    lines.push(
      `  boot:    ${c.red(`FAILED at step ${s.boot.failed.step}`)} (${s.boot.failed.failed}); log: ${s.bootLog}`,
    );
  if (s.limits) {
    const l = s.limits;
    lines.push(
      `  limits:  ${l.type ?? 'none'}${l.cpuQuotaUs && l.cpuPeriodUs ? `: CPU ${((100 * l.cpuQuotaUs) / l.cpuPeriodUs).toFixed(0)} % of one core` : ''}${l.memoryBytes ? `, memory ${l.memoryBytes / 2 ** 20} MiB` : ''} (kernel threads are not limited)`,
    );
  }
  if (s.link) lines.push(`  link:    ${s.link.rateMbit} Mbit/s, ${s.link.rttMs} ms round trip (sshd port only)`);
  if (s.envFile) lines.push(`  env:     ${s.envFile}`);
  return lines.join('\n');
}

/** After up: what happened, the state, how to use it. */
export function describeUp(r: UpResult, c: Palette = plain): string {
  return [
    r.alreadyUp
      ? c.green('✓ the local target is already up; nothing to do')
      : c.green(`✓ the local target is up in ${(r.timings.totalSeconds ?? 0).toFixed(1)} s`),
    describeTarget(r, c),
    `\nUse it with any script: --env ${r.envFile}  (or BTRBK_ENV_FILE=${r.envFile})`,
  ].join('\n');
}

/** After down: what was kept. */
export function describeDown(r: DownResult, c: Palette = plain): string {
  return [
    c.green(`✓ the local target is down (${r.seconds.toFixed(1)} s); nothing is mounted or attached`),
    r.purged
      ? '  the volume image is deleted (--purge)'
      : `  the volume is kept: ${r.volumeImage} (down --purge deletes it)`,
  ].join('\n');
}

/** The laptop's state: running and healthy, disk, network, connection file. */
export function describeLaptop(s: LaptopStatus, names: LaptopNames, c: Palette = plain): string {
  const lines = [
    `${s.running ? c.green('● laptop running') : c.yellow('○ laptop stopped')}${health(s, c)} (${s.name})`,
  ];
  lines.push(
    `  disk:    ${s.diskImage ? `${s.diskImage} (${gib(s.diskBytes)} GiB sparse)${s.loopDevices.length ? ` on ${s.loopDevices.join(', ')}` : ''}` : '(none yet)'}${s.running ? (s.diskMounted ? ` at ${names.diskMount}` : c.red(' not mounted')) : ''}`,
  );
  if (s.port)
    lines.push(
      `  network: 127.0.0.1:${s.port} -> the local target${s.running ? (s.uplink.unit && s.uplink.host ? c.green(' (up)') : c.yellow(` (down: ${!s.uplink.unit ? `${names.uplinkUnit} stopped` : "this machine's socat is gone"})`)) : ''}`,
    );
  if (s.envFile) lines.push(`  env:     ${s.envFile} (inside the laptop)`);
  return lines.join('\n');
}

/** After laptop up: what happened, the state, how to run things in it. */
export function describeLaptopUp(
  r: LaptopStatus & { alreadyUp: boolean; seconds: number },
  names: LaptopNames,
  c: Palette = plain,
): string {
  return [
    r.alreadyUp
      ? c.green('✓ the laptop is already up; nothing to do')
      : c.green(`✓ the laptop is up in ${r.seconds.toFixed(1)} s`),
    describeLaptop(r, names, c),
    `\nRun things in it: npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs --help`,
  ].join('\n');
}

/** After laptop down: what was kept. */
export function describeLaptopDown(
  r: { purged: boolean; diskImage: string; seconds: number },
  c: Palette = plain,
): string {
  return [
    c.green(`✓ the laptop is down (${r.seconds.toFixed(1)} s); nothing is mounted or attached`),
    r.purged
      ? '  its disk image is deleted (--purge)'
      : `  its disk is kept: ${r.diskImage} (laptop down --purge deletes it)`,
  ].join('\n');
}

/** The instance-type table --limits uses, one line per type. */
export function formatInstanceTypes(): string {
  return Object.entries(INSTANCE_TYPES)
    .map(
      ([name, f]) =>
        `${name.padEnd(12)} ${f.arch.padEnd(6)} ${f.vcpus} vCPU  ${String(f.memoryMiB).padStart(5)} MiB  baseline ${(100 * baselinePerVcpu(f)).toFixed(0).padStart(2)} %/vCPU  network ${f.networkBaselineGbps} Gbit/s (${networkBaselineMBps(f)} MB/s), burst ${f.networkBurstGbps}`,
    )
    .join('\n');
}

/** DescribeInstanceTypes against the table: agreement, or one line per difference. */
export function formatInstanceTypeCheck(diffs: readonly FactMismatch[], c: Palette = plain): string {
  if (!diffs.length)
    return c.green(
      "✓ DescribeInstanceTypes agrees with the table (vCPUs, memory, network baseline and burst, architecture; the CPU baselines are from the EC2 User Guide's credit table)",
    );
  return diffs
    .map((d) => c.red(`✗ ${d.type} ${d.field}: table ${d.table}, DescribeInstanceTypes ${d.live}`))
    .join('\n');
}
