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
import { BACKUP_ROOT, BACKUP_USER } from '../scripts/lib/core/host-layout.js';
import { renderBootScript, renderHostPayload } from '../user-data/render.js';
import {
  ARM64_INSTANCE_TYPE_SOURCE,
  AVAILABILITY_ZONE_SOURCE,
  BACKUP_ALARM_HOURS_MAX,
  ED25519_KEY_SOURCE,
  EMAIL_SOURCE,
  GP3_MAX_GIB,
  GP3_MIN_GIB,
  INSTANCE_TYPE_SOURCE,
  KEY_PAIR_NAME_SOURCE,
  RECYCLE_BIN_DAYS_MAX,
  RECYCLE_BIN_LOCK_DAYS_MAX,
  RECYCLE_BIN_LOCK_DAYS_MIN,
  REGION_SOURCE,
  RETENTION_MIN_SOURCE,
  RETENTION_SOURCE,
  SNAPSHOT_ID_SOURCE,
  SNAPSHOT_INTERVAL_HOURS,
  SNAPSHOT_RETAIN_MAX,
  T2_REFUSED_MESSAGE,
  XEN_INSTANCE_TYPE_SOURCE,
} from '../scripts/lib/deploy/tfvars.js';
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

/** Defaults of the stack's variables (the engine tests and the docs read them from here). */
export const VARIABLE_DEFAULTS = Object.freeze({
  admin_ssh_public_key: '',
  aws_region: 'us-west-1',
  availability_zone: '',
  key_pair_name: 'btrbk-backup-key',
  ebs_volume_size: 100,
  allowed_ssh_cidrs: Object.freeze(['0.0.0.0/0']),
  instance_type: 't3a.nano',
  append_only: true,
  retention: '48h 14d 8w 12m',
  retention_min: '1d',
  snapshot_interval_hours: 24,
  snapshot_retain_count: 7,
  recycle_bin_days: 7,
  recycle_bin_lock_days: 0,
  restore_snapshot_id: '',
  backup_alarm_hours: 26,
  alert_email: '',
});

/** A well-formed ssh-ed25519 public key line: type, the 68-character key blob, an optional plain comment. */
// The validation rules are the ones setup checks terraform.tfvars with before any engine call (one source).
/** A regex source as the quoted, anchored argument of HCL's regex(): backslashes and quotes escaped. */
const hclRegex = (source: string) => `"^${source.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}$"`;
const ED25519 = hclRegex(ED25519_KEY_SOURCE);

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
    new AwsProvider(this, 'aws', { region: v.awsRegion.stringValue });

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
      filter: [{ name: 'instance-type', values: [v.instanceType.stringValue] }],
    });
    offerings.overrideLogicalId('instance_type');
    const zone = new TerraformLocal(
      this,
      'chosen_zone',
      // (Raw expressions where an empty string is compared: cdktf's Op.eq(x, '') renders `undefined`.)
      `\${var.availability_zone != "" ? var.availability_zone : concat(sort(setintersection(${Token.asString(zones.names)}, ${Token.asString(offerings.locations)})), sort(${Token.asString(zones.names)}))[0]}`,
    );
    zone.overrideLogicalId('availability_zone');

    const access = new NetworkAccess(this, 'network_access', { allowedSshCidrs: v.allowedSshCidrs.listValue, tags });
    // This deployment's own id (a UUID the engine makes once and keeps in the state): the value of the tags the
    // snapshot policy and the Recycle Bin rule select by, so that two deployments never act on each other's volume.
    const deployment = new DataResource(this, 'deployment', {});
    deployment.overrideLogicalId('deployment');
    const data = new DataVolume(this, 'data_volume', {
      deploymentId: deployment.id,
      availabilityZone: zone.asString,
      requestedAvailabilityZone: v.availabilityZone.stringValue,
      sizeGib: v.ebsVolumeSize.numberValue,
      restoreSnapshotId: v.restoreSnapshotId.stringValue,
      tags,
    });
    const protection = new VolumeProtection(this, 'volume_protection', {
      deploymentId: deployment.id,
      intervalHours: v.snapshotIntervalHours.numberValue,
      retainCount: v.snapshotRetainCount.numberValue,
      recycleBinDays: v.recycleBinDays.numberValue,
      recycleBinLockDays: v.recycleBinLockDays.numberValue,
      tags,
    });
    const alarm = new BackupAlarm(this, 'backup_alarm', {
      volumeId: data.volume.id,
      hours: v.backupAlarmHours.numberValue,
      email: v.alertEmail.stringValue,
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
      keyName: v.keyPairName.stringValue,
      publicKey: v.adminSshPublicKey.stringValue,
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
      backupSshPublicKey: v.sshPublicKey.stringValue,
      adminSshPublicKey: v.adminSshPublicKey.stringValue,
      // A bool in a Terraform string template renders as true or false: BTRBK_APPEND_ONLY='true' / 'false'.
      appendOnly: v.appendOnly.stringValue,
      retention: v.retention.stringValue,
      retentionMin: v.retentionMin.stringValue,
    };
    const options = {
      forTerraform: true,
      payload: 's3' as const,
      payloadUrl: payload.url,
      payloadRegion: v.awsRegion.stringValue,
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
      instanceType: v.instanceType.stringValue,
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
          errorMessage:
            "the instance's user data would be over EC2's 16 KB (gzipped): shorten the comment of ssh_public_key or admin_ssh_public_key (everything after the key itself).",
        },
        {
          condition: '${var.admin_ssh_public_key == "" || var.admin_ssh_public_key != var.ssh_public_key}',
          errorMessage:
            'admin_ssh_public_key must differ from ssh_public_key: the backup key reaches the host only through the SSH gate; use a second key for admin login.',
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
    out('region', v.awsRegion.stringValue, 'AWS region');
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
      v.alertEmail.stringValue,
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
/** An HCL condition: a number variable is a whole number from min to max. */
const wholeIn = (name: string, min: number, max: number): string =>
  `var.${name} >= ${min} && var.${name} <= ${max} && floor(var.${name}) == var.${name}`;

/** The stack's input variables, each with a validation that says what is expected. */
function variables(scope: Construct) {
  const variable = (name: string, config: ConstructorParameters<typeof TerraformVariable>[2]) => {
    const tv = new TerraformVariable(scope, name, { nullable: false, ...config });
    tv.overrideLogicalId(name);
    return tv;
  };
  const d = VARIABLE_DEFAULTS;
  return {
    sshPublicKey: variable('ssh_public_key', {
      type: 'string',
      description: 'The backup key: an ssh-ed25519 public key line, installed for the btrbk user behind the SSH gate',
      validation: [
        {
          condition: `\${can(regex(${ED25519}, var.ssh_public_key))}`,
          errorMessage:
            'ssh_public_key must be one ssh-ed25519 public key line: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..." (68 base64 characters) and an optional comment of letters, digits and @._+:=,/- ; no trailing newline. Create one with: ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws',
        },
      ],
    }),
    adminSshPublicKey: variable('admin_ssh_public_key', {
      type: 'string',
      default: d.admin_ssh_public_key,
      description:
        'Optional admin key (full shell as the image default user, registered as the EC2 key pair); empty: no admin login',
      validation: [
        {
          condition: `\${var.admin_ssh_public_key == "" || can(regex(${ED25519}, var.admin_ssh_public_key))}`,
          errorMessage:
            'admin_ssh_public_key must be empty (no admin login) or one ssh-ed25519 public key line, like ssh_public_key; it must not be the backup key.',
        },
      ],
    }),
    awsRegion: variable('aws_region', {
      type: 'string',
      default: d.aws_region,
      description: 'AWS region of the backup host',
      validation: [
        {
          condition: `\${can(regex(${hclRegex(REGION_SOURCE)}, var.aws_region))}`,
          errorMessage: 'aws_region must be an AWS region code such as us-west-1 or eu-central-1.',
        },
      ],
    }),
    availabilityZone: variable('availability_zone', {
      type: 'string',
      default: d.availability_zone,
      description:
        "Availability zone of the data volume when it is created, and so of the host; empty: the first available zone of the region (alphabetically) where EC2 offers instance_type. Once the volume exists its zone is kept: neither a change of the region's zones nor of instance_type moves it, and a zone set here that differs from the volume's stops the plan",
      validation: [
        {
          condition: `\${var.availability_zone == "" || can(regex(${hclRegex(AVAILABILITY_ZONE_SOURCE)}, var.availability_zone))}`,
          errorMessage:
            'availability_zone must be empty (first available zone) or a zone name such as us-west-1a, in aws_region.',
        },
      ],
    }),
    keyPairName: variable('key_pair_name', {
      type: 'string',
      default: d.key_pair_name,
      description: 'Name of the EC2 key pair created for admin_ssh_public_key (unused when that is empty)',
      validation: [
        {
          condition: `\${can(regex(${hclRegex(KEY_PAIR_NAME_SOURCE)}, var.key_pair_name))}`,
          errorMessage:
            'key_pair_name must be 1-255 characters: letters, digits, ".", "_" and "-", starting with a letter or digit.',
        },
      ],
    }),
    ebsVolumeSize: variable('ebs_volume_size', {
      type: 'number',
      default: d.ebs_volume_size,
      description: 'Size of the data volume in GiB (gp3: 1 to 16384); it can grow later, never shrink',
      validation: [
        {
          condition: `\${var.ebs_volume_size >= ${GP3_MIN_GIB} && var.ebs_volume_size <= ${GP3_MAX_GIB} && floor(var.ebs_volume_size) == var.ebs_volume_size}`,
          errorMessage: 'ebs_volume_size must be a whole number of GiB from 1 to 16384 (the gp3 limits).',
        },
      ],
    }),
    allowedSshCidrs: variable('allowed_ssh_cidrs', {
      type: 'list(string)',
      default: [...d.allowed_ssh_cidrs],
      description: 'CIDR blocks (IPv4 or IPv6) allowed to reach SSH; narrow it to your own addresses when you can',
      validation: [
        {
          condition:
            '${length(var.allowed_ssh_cidrs) > 0 && alltrue([for c in var.allowed_ssh_cidrs : can(cidrhost(c, 0))])}',
          errorMessage:
            'allowed_ssh_cidrs must be a non-empty list of CIDR blocks such as ["203.0.113.7/32"] or ["0.0.0.0/0"].',
        },
      ],
    }),
    instanceType: variable('instance_type', {
      type: 'string',
      default: d.instance_type,
      description:
        'EC2 instance type: a Nitro burstable type, t3a, t3 or t4g (Graviton, arm64: the image follows the type), nano to 2xlarge; CPU credits are standard. t2 is refused (Xen, no NVMe: the boot script finds the data volume by its NVMe serial)',
      validation: [
        {
          condition: `\${!can(regex(${hclRegex(XEN_INSTANCE_TYPE_SOURCE)}, var.instance_type))}`,
          errorMessage: T2_REFUSED_MESSAGE,
        },
        {
          condition: `\${can(regex(${hclRegex(INSTANCE_TYPE_SOURCE)}, var.instance_type))}`,
          errorMessage:
            'instance_type must be a Nitro burstable type: t3a, t3 or t4g, nano to 2xlarge, such as t3a.nano, t3.small or t4g.nano (CPU credits are set to standard).',
        },
      ],
    }),
    // A bool needs no validation block: the engine refuses anything that does not convert to true or false.
    appendOnly: variable('append_only', {
      type: 'bool',
      default: d.append_only,
      description:
        'true (default): the backup key can add and read backups but never delete them, and the host deletes old backups itself, by its own clock, following retention and retention_min. false: the backup key may also delete backups (btrbk on your machine prunes the target).',
    }),
    retention: variable('retention', {
      type: 'string',
      default: d.retention,
      description:
        'How many backups the host keeps when append_only is true, in btrbk retention syntax: "48h 14d 8w 12m" (default) keeps hourly backups for 48 hours, daily for 14 days, weekly for 8 weeks, monthly for 12 months; "*" instead of a count keeps every backup of that kind forever ("*d": one per day, forever). Units h d w m y, each at most once, in that order.',
      validation: [
        {
          condition: `\${can(regex(${hclRegex(RETENTION_SOURCE)}, var.retention))}`,
          errorMessage:
            'retention must be btrbk retention terms separated by single spaces: a count (up to 4 digits) or * followed by h, d, w, m or y, each unit at most once and in the order h d w m y, such as "48h 14d 8w 12m", "7d 4w" or "*d".',
        },
      ],
    }),
    retentionMin: variable('retention_min', {
      type: 'string',
      default: d.retention_min,
      description:
        'Every backup younger than this is kept whatever retention says: a count and a unit h d w m y ("1d", the default, keeps everything from the last day), or "latest" (only the newest backup is always kept), or "no" (retention alone decides).',
      validation: [
        {
          condition: `\${can(regex(${hclRegex(RETENTION_MIN_SOURCE)}, var.retention_min))}`,
          errorMessage:
            'retention_min must be a count (up to 4 digits) followed by h, d, w, m or y (such as "1d"), or "latest", or "no".',
        },
      ],
    }),
    snapshotIntervalHours: variable('snapshot_interval_hours', {
      type: 'number',
      default: d.snapshot_interval_hours,
      description: 'Hours between snapshots of the data volume by Data Lifecycle Manager: 1, 2, 3, 4, 6, 8, 12 or 24',
      validation: [
        {
          condition: `\${contains([${SNAPSHOT_INTERVAL_HOURS.join(', ')}], var.snapshot_interval_hours)}`,
          errorMessage: `snapshot_interval_hours must be one of ${SNAPSHOT_INTERVAL_HOURS.join(', ')}: the intervals in hours Data Lifecycle Manager accepts.`,
        },
      ],
    }),
    snapshotRetainCount: variable('snapshot_retain_count', {
      type: 'number',
      default: d.snapshot_retain_count,
      description:
        'How many snapshots of the data volume Data Lifecycle Manager keeps (the oldest is deleted when a new one is made); 0: no snapshots, no policy, no role',
      validation: [
        {
          condition: `\${${wholeIn('snapshot_retain_count', 0, SNAPSHOT_RETAIN_MAX)}}`,
          errorMessage: `snapshot_retain_count must be a whole number from 0 (no snapshots) to ${SNAPSHOT_RETAIN_MAX} (Data Lifecycle Manager's limit).`,
        },
      ],
    }),
    recycleBinDays: variable('recycle_bin_days', {
      type: 'number',
      default: d.recycle_bin_days,
      description:
        'Days a deleted snapshot of the data volume stays recoverable in the Recycle Bin (billed like a snapshot meanwhile); 0: no Recycle Bin rule',
      validation: [
        {
          condition: `\${${wholeIn('recycle_bin_days', 0, RECYCLE_BIN_DAYS_MAX)}}`,
          errorMessage: `recycle_bin_days must be a whole number of days from 0 (no Recycle Bin rule) to ${RECYCLE_BIN_DAYS_MAX} (the Recycle Bin's limit).`,
        },
      ],
    }),
    recycleBinLockDays: variable('recycle_bin_lock_days', {
      type: 'number',
      default: d.recycle_bin_lock_days,
      description:
        'Unlock delay in days of a locked Recycle Bin rule: 0 (default) unlocked; 7 to 30: a Region-level rule (AWS locks no tag-level rule) that keeps EVERY EBS snapshot deleted in the region, lockable so nobody can remove it before the delay has passed. hashicorp/aws 5.100.0 does not send the lock: see docs/RESTORE.md',
      validation: [
        {
          condition: `\${var.recycle_bin_lock_days == 0 || (${wholeIn('recycle_bin_lock_days', RECYCLE_BIN_LOCK_DAYS_MIN, RECYCLE_BIN_LOCK_DAYS_MAX)})}`,
          errorMessage: `recycle_bin_lock_days must be 0 (unlocked) or a whole number of days from ${RECYCLE_BIN_LOCK_DAYS_MIN} to ${RECYCLE_BIN_LOCK_DAYS_MAX} (the Recycle Bin's unlock delay limits).`,
        },
      ],
    }),
    restoreSnapshotId: variable('restore_snapshot_id', {
      type: 'string',
      default: d.restore_snapshot_id,
      description:
        'Disaster recovery: a snapshot id (snap-...) the data volume is created from on a FRESH deployment; "" (default): an empty volume. An existing data volume is never replaced for it: the plan stops with a message instead (docs/RESTORE.md)',
      validation: [
        {
          condition: `\${var.restore_snapshot_id == "" || can(regex(${hclRegex(SNAPSHOT_ID_SOURCE)}, var.restore_snapshot_id))}`,
          errorMessage:
            'restore_snapshot_id must be "" (a new, empty data volume) or a snapshot id such as snap-0123456789abcdef0.',
        },
      ],
    }),
    backupAlarmHours: variable('backup_alarm_hours', {
      type: 'number',
      default: d.backup_alarm_hours,
      description: `Hours without a single write to the data volume before the CloudWatch alarm fires (26: a day's backup plus 2 hours' slack); 1 to ${BACKUP_ALARM_HOURS_MAX}; 0: no alarm`,
      validation: [
        {
          condition: `\${${wholeIn('backup_alarm_hours', 0, BACKUP_ALARM_HOURS_MAX)}}`,
          errorMessage: `backup_alarm_hours must be 0 (no alarm) or a whole number of hours from 1 to ${BACKUP_ALARM_HOURS_MAX}: CloudWatch evaluates an alarm over at most 7 days (period x evaluation periods <= 604800 seconds; the period here is one hour).`,
        },
      ],
    }),
    alertEmail: variable('alert_email', {
      type: 'string',
      default: d.alert_email,
      description:
        'Email address the backup alarm mails (an SNS subscription: AWS sends a confirmation link that must be clicked); "" (default): no topic, no mail',
      validation: [
        {
          condition: `\${var.alert_email == "" || can(regex(${hclRegex(EMAIL_SOURCE)}, var.alert_email))}`,
          errorMessage: 'alert_email must be "" (no mail) or one email address such as you@example.org.',
        },
      ],
    }),
  };
}
