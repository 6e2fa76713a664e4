// check-aws: the EC2 instance (found, in the right region, running, status checks) and its data volume
// (attached, encrypted), through the AWS API.
// The AWS SDK and deploy/aws.ts load when an AWS target is checked (import() below): loading them costs every
// troubleshoot call about a CPU second, the local target's too.
import type { EC2Client, Instance } from '@aws-sdk/client-ec2';
import { CONNECTION_KEYS, isLocalTarget, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { DATA_VOLUME_DEVICE_NAME } from '../../../user-data/host-layout.js';
import type { TestResult } from '../core/report.js';
import type { CheckDeps } from './deps.js';
import { errorFields, fail, fromError, pass } from './results.js';

const awsNext = (region: string) => ` --region ${region}`;

/** The AWS error code of a thrown SDK error ('' when it has none). */
function awsErrorName(err: unknown): string {
  const e = errorFields(err) as { name?: string; Code?: string };
  return e.name ?? e.Code ?? '';
}

/** Finds which other regions hold the instance (when the configured one does not). */
export async function findInstanceRegions(
  instanceId: string,
  { ec2, ec2ForRegion }: { ec2: EC2Client; ec2ForRegion?: (region: string) => EC2Client },
): Promise<string[]> {
  if (!ec2ForRegion) return [];
  const { DescribeInstancesCommand, DescribeRegionsCommand } = await import('@aws-sdk/client-ec2');
  const regions =
    (await ec2.send(new DescribeRegionsCommand({}))).Regions?.map((r) => r.RegionName).filter((r): r is string =>
      Boolean(r),
    ) ?? [];
  const answers = await Promise.allSettled(
    regions.map((region) => ec2ForRegion(region).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))),
  );
  // a rejection means "not there" (InvalidInstanceID.NotFound) or a region that is not enabled
  const found = regions.filter((_, i) => {
    const a = answers[i];
    return (
      a.status === 'fulfilled' &&
      a.value.Reservations?.some((res) => res.Instances?.some((x) => x.InstanceId === instanceId))
    );
  });
  return found;
}

export async function checkAws(conn: Connection, deps: CheckDeps = {}): Promise<TestResult[]> {
  if (isLocalTarget(conn)) {
    return [
      pass('AWS instance and volume', 'not applicable: this is the local target (no AWS account involved)', {
        skipped: true,
      }),
    ];
  }
  const { DescribeInstanceStatusCommand, DescribeInstancesCommand, DescribeVolumesCommand } =
    await import('@aws-sdk/client-ec2');
  const { awsError, makeEc2Client } = await import('../deploy/aws.js');
  const { region, instanceId: id, volumeId: vol } = conn;
  const ec2 = deps.ec2 ?? makeEc2Client({ region, profile: deps.profile });
  const ec2ForRegion = deps.ec2ForRegion ?? ((r: string) => makeEc2Client({ region: r, profile: deps.profile }));
  const results: TestResult[] = [];
  const awsFail = (name: string, err: unknown) =>
    fromError(name, err instanceof OperatorError ? err : awsError(err, name, { profile: deps.profile }));

  let instance: Instance | null = null;
  const foundName = `instance ${id} found in ${region}`;
  try {
    const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    instance = r.Reservations?.flatMap((x) => x.Instances ?? []).find((i) => i.InstanceId === id) ?? null;
    if (!instance)
      throw Object.assign(new Error(`The instance ID '${id}' does not exist`), { name: 'InvalidInstanceID.NotFound' });
    results.push(
      pass(foundName, `${instance.InstanceType ?? ''} ${instance.Placement?.AvailabilityZone ?? ''}`.trim()),
    );
  } catch (err) {
    if (!/InvalidInstanceID\.(NotFound|Malformed)/.test(awsErrorName(err))) {
      results.push(awsFail(foundName, err));
      return results;
    }
    let elsewhere: string[] = [];
    let searched = false;
    try {
      elsewhere = (await findInstanceRegions(id, { ec2, ec2ForRegion })).filter((r) => r !== region);
      searched = true;
    } catch {
      /* the search is a courtesy; the main diagnosis stands */
    }
    results.push(
      elsewhere.length
        ? fail(
            foundName,
            `region mismatch: the instance is in ${elsewhere.join(', ')}, but the connection file says ${CONNECTION_KEYS.region}=${region}`,
            `set ${CONNECTION_KEYS.region}='${elsewhere[0]}' in the connection file (or re-run setup with aws_region = "${elsewhere[0]}" in terraform.tfvars)`,
          )
        : fail(
            foundName,
            `no instance ${id} in ${region}${searched ? ' or any other enabled region' : ' (other regions could not be searched)'}: it was terminated or destroyed, or the connection file is for another account or region`,
            're-run setup (it recreates the instance; the data volume is kept unless you destroyed it); check AWS_PROFILE is the account you deployed with',
          ),
    );
    return results;
  }

  const state = instance.State?.Name ?? 'unknown';
  results.push(
    state === 'running'
      ? pass('instance running', state)
      : fail(
          'instance running',
          `the instance is ${state}${instance.StateReason?.Message ? ` (${instance.StateReason.Message})` : ''}`,
          state === 'stopped' || state === 'stopping'
            ? `start it: aws ec2 start-instances --instance-ids ${id}${awsNext(region)} (the address may change unless an Elastic IP is attached; re-run setup to update the connection file)`
            : state === 'pending'
              ? 'wait a minute and check again'
              : 're-run setup to create a new instance (the data volume is kept)',
          state,
        ),
  );

  if (state === 'running') {
    try {
      const r = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id], IncludeAllInstances: true }));
      const st = r.InstanceStatuses?.find((x) => x.InstanceId === id);
      const sys = st?.SystemStatus?.Status ?? 'unknown';
      const inst = st?.InstanceStatus?.Status ?? 'unknown';
      const name = 'status checks ok (system, instance)';
      const detail = `system ${sys}, instance ${inst}`;
      if (sys === 'ok' && inst === 'ok') results.push(pass(name, detail));
      else if ([sys, inst].includes('impaired')) {
        results.push(
          fail(
            name,
            `status check impaired (${detail}): ${sys === 'impaired' ? 'AWS hardware or network trouble' : 'the operating system does not respond (kernel panic, full root disk, boot failure)'}`,
            sys === 'impaired'
              ? `stop and start the instance to move it to other hardware: aws ec2 stop-instances --instance-ids ${id}${awsNext(region)}, then start-instances`
              : 'read the console output (troubleshoot check-logs falls back to it), then reboot the instance',
            detail,
          ),
        );
      } else {
        results.push(
          pass(name, detail, {
            warn: true,
            cause: 'status checks are still initializing (the first minutes after a start)',
            next: 'check again in a few minutes',
          }),
        );
      }
    } catch (err) {
      results.push(awsFail('status checks ok (system, instance)', err));
    }
  }

  const volName = `data volume ${vol} attached to ${id}`;
  try {
    const r = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol] }));
    const v = r.Volumes?.find((x) => x.VolumeId === vol);
    if (!v) throw Object.assign(new Error(`The volume '${vol}' does not exist.`), { name: 'InvalidVolume.NotFound' });
    const att = (v.Attachments ?? []).find((a) => a.InstanceId === id);
    const other = (v.Attachments ?? []).find((a) => a.InstanceId !== id);
    if (v.State === 'error') {
      results.push(
        fail(
          volName,
          `the volume is in state "error"`,
          'contact AWS support and restore from an EBS snapshot if you have one',
          `${v.Size} GiB ${v.VolumeType}`,
        ),
      );
    } else if (att && att.State === 'attached') {
      results.push(
        pass(volName, `${v.Size} GiB ${v.VolumeType}, ${att.Device}, ${v.Encrypted ? 'encrypted' : 'NOT encrypted'}`),
      );
      if (!v.Encrypted)
        results.push(
          pass('data volume encrypted', 'not encrypted', {
            warn: true,
            cause: 'the volume was created without encryption',
            next: 'backups are stored unencrypted at rest; see docs/SETUP.md to migrate to an encrypted volume',
          }),
        );
    } else if (att) {
      results.push(
        fail(
          volName,
          `the attachment is ${att.State}`,
          'wait a minute and check again; if it stays, stop and start the instance',
          `${v.Size} GiB ${v.VolumeType}`,
        ),
      );
    } else if (other) {
      results.push(
        fail(
          volName,
          `the volume is attached to another instance, ${other.InstanceId}`,
          `detach it there (aws ec2 detach-volume --volume-id ${vol}${awsNext(region)}) and re-run setup, or fix ${CONNECTION_KEYS.instanceId}`,
          `${v.State}`,
        ),
      );
    } else {
      results.push(
        fail(
          volName,
          `the volume is detached (state "${v.State}"): backups cannot reach it`,
          `re-run setup (terraform apply restores the attachment), or: aws ec2 attach-volume --volume-id ${vol} --instance-id ${id} --device ${DATA_VOLUME_DEVICE_NAME}${awsNext(region)}; then run check-volume`,
          `${v.Size} GiB ${v.VolumeType}`,
        ),
      );
    }
  } catch (err) {
    if (/InvalidVolume\.NotFound/.test(errorFields(err).name ?? '')) {
      results.push(
        fail(
          volName,
          `no volume ${vol} in ${region}: it was deleted, or the connection file is for another region or account`,
          'if you still have EBS snapshots, restore one; otherwise re-run setup to create a new, empty volume',
          '',
        ),
      );
    } else {
      results.push(awsFail(volName, err));
    }
  }
  return results;
}
