import { Construct } from 'constructs';
import {
  DataResource,
  Fn,
  LocalBackend,
  TerraformLocal,
  TerraformOutput,
  TerraformStack,
  TerraformVariable,
  Token,
} from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { DataAwsEc2InstanceTypeOfferings } from '@cdktf/provider-aws/lib/data-aws-ec2-instance-type-offerings/index.js';
import { KeyPair } from '@cdktf/provider-aws/lib/key-pair/index.js';
import { BACKUP_ROOT, BACKUP_USER } from '../user-data/host-layout.js';
import { renderBootScript, renderHostPayload } from '../user-data/render.js';
import {
  ADMIN_KEY_DIFFERS_MESSAGE,
  ARM64_INSTANCE_TYPE_SOURCE,
  BACKUP_KEY_OR_DEVICES_MESSAGE,
  DEVICE_KEY_REUSED_MESSAGE,
  DEVICE_USER_DATA_BYTES,
  DEVICES_MAX,
  VARIABLES,
  hclCondition,
  hclKeyBlob,
  hclRegex,
  type VariableName,
} from './variables.js';
import { BackupAlarm } from './backup-alarm.js';
import { BackupHost } from './backup-host.js';
import { DataVolume } from './data-volume.js';
import { HostPayload, payloadObjectKey } from './host-payload.js';
import { NetworkAccess } from './network-access.js';
import { VolumeProtection } from './volume-protection.js';

/** The stack's name: the directory under cdktf.out/stacks/ and the argument of `cdktf deploy`. */
export const STACK_NAME = 'btrbk-backup-target';
/** The user behind the SSH gate and the backup directory on the host (the boot script's contract). */
export const SSH_USER = BACKUP_USER;
export const BACKUP_PATH = BACKUP_ROOT;

/**
 * Local state file, relative to the directory the engine runs in (cdktf.out/stacks/<stack>/), so the state lives
 * in the repository's git-ignored `state/` directory rather than cdktf's absolute default.
 */
export const STATE_PATH = '../../../state/terraform.tfstate';
/** The longest user data the plan lets through: base64 of EC2's 16384 bytes is 21848 characters, less 64 for the
 * plan-time stand-ins (a zero-filled volume id and bucket name compress a little better than the real ones). */
export const USER_DATA_BASE64_MAX = 21848 - 64;
/** Tags on every resource that takes tags. */
export const TAGS = Object.freeze({ Project: STACK_NAME, ManagedBy: 'cdktf' });

/**
 * The AWS side of the backup target: provider, variables, availability zone, key pair, the host, its data
 * volume and network access, and the outputs the operator scripts read.
 */
export class BackupTargetStack extends TerraformStack {
  constructor(scope: Construct, id: string = STACK_NAME) {
    super(scope, id);
    const tags = { ...TAGS };
    new LocalBackend(this, { path: STATE_PATH });

    const v = variables(this);
    new AwsProvider(this, 'aws', { region: v.aws_region.stringValue });

    // The zone of a NEW data volume is chosen before the instance and the volume exist, so the boot script can carry
    // the volume id without a dependency cycle: availability_zone when set, else the first (sorted) available zone
    // where EC2 offers instance_type (else the first available zone, where the instance's precondition explains).
    // Once the volume exists its zone is pinned: the volume ignores changes of this choice (a zone appearing first,
    // another instance_type, the first-backup fast lane) and the instance is placed in the volume's real zone.
    const zones = new DataAwsAvailabilityZones(this, 'zones', {
      state: 'available',
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });
    zones.overrideLogicalId('available');
    const offerings = new DataAwsEc2InstanceTypeOfferings(this, 'instance_type_offerings', {
      locationType: 'availability-zone',
      filter: [{ name: 'instance-type', values: [v.instance_type.stringValue] }],
    });
    offerings.overrideLogicalId('instance_type');
    const zone = new TerraformLocal(
      this,
      'chosen_zone',
      // (Raw expressions where an empty string is compared: cdktf's Op.eq(x, '') renders `undefined`.)
      `\${var.availability_zone != "" ? var.availability_zone : concat(sort(setintersection(${Token.asString(zones.names)}, ${Token.asString(offerings.locations)})), sort(${Token.asString(zones.names)}))[0]}`,
    );
    zone.overrideLogicalId('availability_zone');

    const access = new NetworkAccess(this, 'network_access', { allowedSshCidrs: v.allowed_ssh_cidrs.listValue, tags });
    // This deployment's own id (a UUID the engine makes once and keeps in the state): the value of the tags the
    // snapshot policy and the Recycle Bin rule select by, so that two deployments never act on each other's volume.
    const deployment = new DataResource(this, 'deployment', {});
    deployment.overrideLogicalId('deployment');
    const data = new DataVolume(this, 'data_volume', {
      deploymentId: deployment.id,
      availabilityZone: zone.asString,
      requestedAvailabilityZone: v.availability_zone.stringValue,
      sizeGib: v.ebs_volume_size.numberValue,
      restoreSnapshotId: v.restore_snapshot_id.stringValue,
      tags,
    });
    const protection = new VolumeProtection(this, 'volume_protection', {
      deploymentId: deployment.id,
      intervalHours: v.snapshot_interval_hours.numberValue,
      retainCount: v.snapshot_retain_count.numberValue,
      recycleBinDays: v.recycle_bin_days.numberValue,
      recycleBinLockDays: v.recycle_bin_lock_days.numberValue,
      tags,
    });
    const alarm = new BackupAlarm(this, 'backup_alarm', {
      volumeId: data.volume.id,
      hours: v.backup_alarm_hours.numberValue,
      email: v.alert_email.stringValue,
      devices: 'var.devices',
      tags,
    });

    // The image's architecture follows the instance type (t4g: Graviton, arm64); the same rule as tfvars.ts
    // instanceArchitecture, from the same regex source.
    const architecture = new TerraformLocal(
      this,
      'ami_architecture',
      `\${can(regex(${hclRegex(ARM64_INSTANCE_TYPE_SOURCE)}, var.instance_type)) ? "arm64" : "x86_64"}`,
    );
    architecture.overrideLogicalId('ami_architecture');
    // A type of another architecture (t3a <-> t4g) needs another image, and `ami` is in ignore_changes: planned as an
    // in-place type change, the provider would stop the instance and ModifyInstanceAttribute would fail, leaving it
    // stopped. So an architecture change replaces the instance (volume, address and host key kept, as for a changed
    // boot script); a type change within the architecture (the first-backup fast lane) stays in place.
    const architectureTrigger = new DataResource(this, 'ami_architecture_trigger', {
      input: { architecture: architecture.asString },
    });
    architectureTrigger.overrideLogicalId('ami_architecture');

    // The EC2 key pair holds the ADMIN key only (the image's default user, full shell). The backup key is never
    // registered as a key pair: it must reach the host only through the btrbk user's forced-command gate.
    const noAdminKey = 'var.admin_ssh_public_key == ""';
    const keyPair = new KeyPair(this, 'admin_key_pair', {
      count: Token.asNumber(`\${${noAdminKey} ? 0 : 1}`),
      keyName: v.key_pair_name.stringValue,
      publicKey: v.admin_ssh_public_key.stringValue,
      tags: { ...tags, Name: 'btrbk-backup-admin' },
    });
    keyPair.overrideLogicalId('admin');

    // The host's programs: one S3 object the instance's role may read, and nothing else (EC2's 16 KB of user data
    // holds the boot script's steps and settings, and the payload's sha256 and URL).
    const hostPayload = renderHostPayload();
    const payload = new HostPayload(this, 'host_payload', {
      sha256: hostPayload.sha256,
      gzipBase64: hostPayload.base64,
      tags,
    });

    // The plain boot script (static text escaped for a Terraform template; the settings resolve to references)
    // stays in a local so the engine tests can compare it with the renderer's output; EC2 gets gzip+base64.
    const settings = {
      volumeId: data.volume.id,
      backupSshPublicKey: v.ssh_public_key.stringValue,
      adminSshPublicKey: v.admin_ssh_public_key.stringValue,
      // A bool in a Terraform string template renders as true or false: BTRBK_APPEND_ONLY='true' / 'false'.
      appendOnly: v.append_only.stringValue,
      retention: v.retention.stringValue,
      retentionMin: v.retention_min.stringValue,
    };
    // The devices' keys: one `NAME KEY` line each, sorted by name (the same text whatever order the map was written
    // in), rendered by the engine as BTRBK_DEVICES='...' only when there is a device (no devices: the same user data).
    const deviceLines = new TerraformLocal(
      this,
      'device_lines',
      '${join("\\n", [for name in sort(keys(var.devices)) : "${name} ${var.devices[name]}"])}',
    );
    deviceLines.overrideLogicalId('device_lines');
    const options = {
      forTerraform: true,
      payload: 's3' as const,
      payloadUrl: payload.url,
      payloadRegion: v.aws_region.stringValue,
      devicesExpression: 'local.device_lines',
    };
    const bootScript = new TerraformLocal(this, 'boot_script', renderBootScript(settings, options));
    bootScript.overrideLogicalId('boot_script');

    // EC2 takes at most 16 KB of user data (before base64). The key comments are the person's, so the size is
    // checked at plan time, on the same script with the values a plan does not know yet (the volume id, the
    // bucket's name) stood in for by ones of their full length.
    const sizeCheck = new TerraformLocal(
      this,
      'boot_script_size_check',
      renderBootScript(
        { ...settings, volumeId: `vol-${'0'.repeat(17)}` },
        {
          ...options,
          payloadUrl: `https://btrbk-host-payload-${'0'.repeat(26)}.s3.\${var.aws_region}.amazonaws.com/${payloadObjectKey(hostPayload.sha256)}`,
        },
      ),
    );
    sizeCheck.overrideLogicalId('boot_script_size_check');

    const host = new BackupHost(this, 'backup_host', {
      instanceType: v.instance_type.stringValue,
      architecture: architecture.asString,
      // The volume's own zone: the one in the state once it exists (its zone is in ignore_changes), never a new choice.
      availabilityZone: data.volume.availabilityZone,
      securityGroupIds: [access.securityGroup.id],
      userDataBase64: Fn.base64gzip(bootScript.asString),
      instanceProfileName: payload.instanceProfile.name,
      dependsOn: [payload.object, payload.policy],
      // A reference to the key pair (not to the variable), so the instance waits for it.
      keyName: `\${length(${keyPair.terraformResourceType}.${keyPair.friendlyUniqueId}) > 0 ? ${keyPair.terraformResourceType}.${keyPair.friendlyUniqueId}[0].key_name : null}`,
      tags,
    });
    const offered = `${ref(offerings, 'data')}.locations`;
    const volumeZone = `${ref(data.volume)}.availability_zone`;
    // Checks across two variables, and of the instance type against the volume's zone: preconditions (variable
    // validations may only reference their own variable in older engines), still refused at plan time.
    host.instance.lifecycle = {
      ...host.instance.lifecycle,
      // (a plain address: cdktf renders a resource object here as an interpolation, which the engine refuses)
      replaceTriggeredBy: [`${architectureTrigger.terraformResourceType}.${architectureTrigger.friendlyUniqueId}`],
      precondition: [
        {
          // base64 of 16384 bytes is 21848 characters; 64 of them are left for the stand-ins' compressing better
          condition: `\${length(base64gzip(local.boot_script_size_check)) <= ${USER_DATA_BASE64_MAX}}`,
          errorMessage: `the instance's user data would be over EC2's 16 KB (gzipped) with \${length(var.devices)} devices: each device takes about ${DEVICE_USER_DATA_BYTES} bytes of it (its name, key and comment; about ${DEVICES_MAX} devices fit with 20-character names and comments). Shorten the comments of the keys in devices, ssh_public_key or admin_ssh_public_key (everything after the key itself), or the device names, or serve fewer devices from this host (a second deployment).`,
        },
        {
          condition: '${var.admin_ssh_public_key == "" || var.admin_ssh_public_key != var.ssh_public_key}',
          errorMessage: ADMIN_KEY_DIFFERS_MESSAGE,
        },
        {
          condition: '${var.ssh_public_key != "" || length(var.devices) > 0}',
          errorMessage: BACKUP_KEY_OR_DEVICES_MESSAGE,
        },
        {
          // the host compares key blobs (the key without its comment), so does this
          condition: `\${length(setintersection([for key in values(var.devices) : ${hclKeyBlob('key')}], [${hclKeyBlob('var.ssh_public_key')}, ${hclKeyBlob('var.admin_ssh_public_key')}])) == 0}`,
          errorMessage: DEVICE_KEY_REUSED_MESSAGE,
        },
        {
          condition: `\${contains(${offered}, ${volumeZone})}`,
          errorMessage: `instance_type \${var.instance_type} is not offered in \${${volumeZone}}, the availability zone of the data volume (a volume cannot move to another zone, so the instance must be in the volume's). Zones of \${var.aws_region} that offer \${var.instance_type}: \${length(${offered}) > 0 ? join(", ", sort(${offered})) : "none"}. Choose an instance_type offered in \${${volumeZone}} (aws ec2 describe-instance-type-offerings --region \${var.aws_region} --location-type availability-zone --filters Name=location,Values=\${${volumeZone}}); before the first deploy, availability_zone may name one of the zones listed instead.`,
        },
      ],
    };
    data.attachTo(host.instance.id);

    const out = (name: string, value: string, description: string) =>
      new TerraformOutput(this, `output_${name}`, { value, description }).overrideLogicalId(name);
    out('instance_id', host.instance.id, 'EC2 instance id of the backup host');
    out('public_ip', host.eip.publicIp, 'Elastic IP of the backup host (stable across stop/start and replacement)');
    out('volume_id', data.volume.id, 'EBS volume id of the data volume');
    out('region', v.aws_region.stringValue, 'AWS region');
    out('availability_zone', data.volume.availabilityZone, 'availability zone of the instance and the data volume');
    out('ssh_user', SSH_USER, 'the user behind the SSH gate');
    out('backup_path', BACKUP_PATH, 'directory on the host that holds the backups');
    // btrbk's URL grammar is ssh://HOST[:PORT]/PATH with no user part (btrbk 0.32.5 refuses 'btrbk@'); the user
    // goes into btrbk.conf as ssh_user, which the ssh_user output gives.
    out(
      'btrbk_target',
      `ssh://${host.eip.publicIp}${BACKUP_PATH}/`,
      'btrbk target URL (set ssh_user from the ssh_user output)',
    );
    // Strings, "" when the variable turned the part off (setup's summary reads them).
    out(
      'snapshot_policy_id',
      firstOrEmpty(protection.policy, 'id'),
      'Data Lifecycle Manager policy that snapshots the data volume ("" when snapshot_retain_count is 0)',
    );
    out(
      'recycle_bin_rule_id',
      `\${join("", concat(${ref(protection.taggedRule)}[*].id, ${ref(protection.lockedRule)}[*].id))}`,
      'Recycle Bin retention rule for the snapshots ("" when recycle_bin_days is 0)',
    );
    out(
      'recycle_bin_rule_scope',
      `\${length(${ref(protection.lockedRule)}) > 0 ? "region" : length(${ref(protection.taggedRule)}) > 0 ? "dlm-snapshots" : ""}`,
      'what the Recycle Bin rule keeps: "dlm-snapshots" (tag-level), "region" (every EBS snapshot of the region, lockable), or ""',
    );
    out(
      'backup_alarm_name',
      firstOrEmpty(alarm.alarm, 'alarm_name'),
      'CloudWatch alarm that fires when the data volume sees no writes ("" when backup_alarm_hours is 0)',
    );
    out(
      'alert_topic_arn',
      firstOrEmpty(alarm.topic, 'arn'),
      'SNS topic the alarm notifies ("" when alert_email is empty)',
    );
    out(
      'alert_email',
      v.alert_email.stringValue,
      'address subscribed to the alarm topic (the subscription stays pending until its confirmation link is clicked)',
    );
  }
}

/** `type.name` of a resource (`data.type.name` of a data source), for raw expressions. */
const ref = (r: { terraformResourceType: string; friendlyUniqueId: string }, mode: 'data' | '' = ''): string =>
  `${mode ? 'data.' : ''}${r.terraformResourceType}.${r.friendlyUniqueId}`;
/** An expression: an attribute of a counted resource's first instance, or "" when its count is 0. */
const firstOrEmpty = (r: { terraformResourceType: string; friendlyUniqueId: string }, attribute: string): string =>
  `\${length(${ref(r)}) > 0 ? ${ref(r)}[0].${attribute} : ""}`;
/**
 * The stack's input variables, made from the one table (constructs/variables.ts): type, default, description, and
 * each rule as a validation block with its message.
 */
function variables(scope: Construct): Readonly<Record<VariableName, TerraformVariable>> {
  const made = {} as Record<VariableName, TerraformVariable>;
  for (const [name, d] of Object.entries(VARIABLES) as [VariableName, (typeof VARIABLES)[VariableName]][]) {
    const tv = new TerraformVariable(scope, name, {
      nullable: false,
      type: d.type,
      ...(d.default === undefined
        ? {}
        : {
            default: Array.isArray(d.default)
              ? [...d.default]
              : typeof d.default === 'object'
                ? { ...d.default }
                : d.default,
          }),
      description: d.description,
      ...(d.rules.length === 0
        ? {}
        : { validation: d.rules.map((r) => ({ condition: `\${${hclCondition(name, r)}}`, errorMessage: r.message })) }),
    });
    tv.overrideLogicalId(name);
    made[name] = tv;
  }
  return made;
}
