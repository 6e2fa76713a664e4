/// <reference path="../../node_modules/cdktf/lib/testing/adapters/jest.d.ts" />
// The synthesized JSON of the stack: a snapshot, and one assertion per safety or security property.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Testing } from 'cdktf';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import { EbsVolume } from '@cdktf/provider-aws/lib/ebs-volume/index.js';
import { VolumeAttachment } from '@cdktf/provider-aws/lib/volume-attachment/index.js';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { Eip } from '@cdktf/provider-aws/lib/eip/index.js';
import { EipAssociation } from '@cdktf/provider-aws/lib/eip-association/index.js';
import { KeyPair } from '@cdktf/provider-aws/lib/key-pair/index.js';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami/index.js';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { DataAwsEc2InstanceTypeOfferings } from '@cdktf/provider-aws/lib/data-aws-ec2-instance-type-offerings/index.js';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DlmLifecyclePolicy } from '@cdktf/provider-aws/lib/dlm-lifecycle-policy/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { RbinRule } from '@cdktf/provider-aws/lib/rbin-rule/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import {
  DATA_VOLUME_TAG_KEY,
  LEGACY_SNAPSHOT_TAG_VALUE,
  SNAPSHOT_TAG_KEY,
} from '../../constructs/volume-protection.js';
const DEPLOYMENT = '${terraform_data.deployment.id}';
import { BackupTargetStack, STACK_NAME } from '../../constructs/backup-target-stack.js';
import { VARIABLE_DEFAULTS } from '../../constructs/variables.js';
import { CANONICAL_OWNER_ID } from '../../constructs/backup-host.js';
import { SETTING_DEFAULTS, USER_DATA_DIR, renderBootScript, renderHostPayload } from '../../user-data/render.js';
import { HOST_ROLE_ACTIONS, payloadObjectKey } from '../../constructs/host-payload.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { DataResource } from 'cdktf';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';

interface SynthJson {
  resource: Record<string, Record<string, Record<string, any>>>;
  data: Record<string, Record<string, Record<string, any>>>;
  locals: Record<string, string>;
  variable: Record<
    string,
    {
      type: string;
      default?: unknown;
      description?: string;
      validation?: { condition: string; error_message: string }[];
    }
  >;
  output: Record<string, { value: string }>;
  terraform: {
    backend: Record<string, { path?: string }>;
    required_providers: Record<string, { source: string; version: string }>;
  };
}

function synthesize(): { text: string; json: SynthJson } {
  const app = Testing.app();
  const stack = new BackupTargetStack(app, STACK_NAME);
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) as SynthJson };
}

const { text, json } = synthesize();
const instance = json.resource.aws_instance.backup_host;
const volume = json.resource.aws_ebs_volume.backup_data;
const sg = json.resource.aws_security_group.backup_host;

// Validity against the real provider schema is the engine test's job (engine.test.ts): cdktf's
// toBeValidTerraform would run `terraform init` against the network.
describe('synthesized stack', () => {
  test('matches the snapshot (boot script text checked separately below)', () => {
    const copy = structuredClone(json);
    copy.locals.boot_script = '<renderBootScript(...) with references: see "user data" tests>';
    copy.locals.boot_script_size_check = '<renderBootScript(...) with stand-ins: see "user data" tests>';
    const object = copy.resource.aws_s3_object.host_payload as Record<string, unknown>;
    object.content_base64 = '<host payload: see "host payload" tests>';
    object.key = '<host-payload/SHA256.sh.gz>';
    copy.resource.aws_iam_role_policy.read_host_payload.policy = '<see "host payload" tests>';
    expect(copy).toMatchSnapshot();
  });

  test("the instance's tags are the person's: only the stack's own few (EC2 allows 50)", () => {
    const tags = Object.keys(instance.tags as Record<string, string>);
    process.stderr.write(`instance tags: ${tags.length} of 50 (${50 - tags.length} left for the person's own)\n`);
    expect(tags.sort()).toEqual(['ManagedBy', 'Name', 'Project']);
  });

  test('pins the provider to hashicorp/aws 5.100.0 (the version the provider package targets and the mirror holds)', () => {
    expect(json.terraform.required_providers.aws).toEqual({ source: 'aws', version: '5.100.0' });
    expect(text).toHaveProviderWithProperties(AwsProvider, { region: '${var.aws_region}' });
  });

  test('keeps local state inside the repository (git-ignored state/), not at cdktf’s absolute default', () => {
    expect(json.terraform.backend.local.path).toBe('../../../state/terraform.tfstate');
  });
});

describe('the instance', () => {
  test('requires IMDSv2 tokens (hop limit 1: nothing in a container on it reaches the role); its tags stay out of the metadata', () => {
    expect(text).toHaveResourceWithProperties(Instance, {
      metadata_options: {
        http_endpoint: 'enabled',
        http_tokens: 'required',
        http_put_response_hop_limit: 1,
        instance_metadata_tags: 'disabled',
      },
    });
  });

  test('has an encrypted gp3 root volume', () => {
    expect(text).toHaveResourceWithProperties(Instance, {
      root_block_device: expect.objectContaining({ encrypted: true, volume_type: 'gp3', delete_on_termination: true }),
    });
  });

  test('uses standard CPU credits (no surplus-credit charges from a long compressed send)', () => {
    expect(text).toHaveResourceWithProperties(Instance, { credit_specification: { cpu_credits: 'standard' } });
  });

  test('ignores a newer AMI and is replaced by a changed boot script', () => {
    expect(instance.lifecycle.ignore_changes).toEqual(['ami']);
    expect(instance.user_data_replace_on_change).toBe(true);
  });

  test('is replaced when the instance type changes architecture (another image), not when it changes size', () => {
    expect(json.resource.terraform_data.ami_architecture).toEqual({
      input: { architecture: '${local.ami_architecture}' },
    });
    expect(instance.lifecycle.replace_triggered_by).toEqual(['terraform_data.ami_architecture']);
  });

  test("refuses at plan time a user data over EC2's 16 KB (the key comments are the person's)", () => {
    expect(instance.lifecycle.precondition[0].condition).toBe(
      `\${length(base64gzip(local.boot_script_size_check)) <= ${21848 - 64}}`,
    );
    expect(instance.lifecycle.precondition[0].error_message).toMatch(
      /over EC2's 16 KB \(gzipped\) with \$\{length\(var.devices\)\} devices: each device takes about 75 bytes .* Shorten the comments of the keys in devices, ssh_public_key or admin_ssh_public_key/,
    );
    // the same script as the instance's, with stand-ins of full length for what a plan does not know yet
    const standIns = (json.locals.boot_script as string)
      .replace('${aws_ebs_volume.backup_data.id}', `vol-${'0'.repeat(17)}`)
      .replace(
        '${aws_s3_bucket.host_payload.bucket_regional_domain_name}',
        `btrbk-host-payload-${'0'.repeat(26)}.s3.\${var.aws_region}.amazonaws.com`,
      );
    expect(json.locals.boot_script_size_check).toBe(standIns);
  });

  test('comes from Canonical’s Ubuntu 24.04 images of the instance type’s architecture (t4g: arm64)', () => {
    expect(text).toHaveDataSourceWithProperties(DataAwsAmi, {
      most_recent: true,
      owners: [CANONICAL_OWNER_ID],
      filter: expect.arrayContaining([
        {
          name: 'name',
          values: [
            'ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${local.ami_architecture == "arm64" ? "arm64" : "amd64"}-server-*',
          ],
        },
        { name: 'architecture', values: ['${local.ami_architecture}'] },
      ]),
    });
    expect(json.locals.ami_architecture).toBe(
      '${can(regex("^(t4g)\\\\..+$", var.instance_type)) ? "arm64" : "x86_64"}',
    );
    expect(instance.ami).toBe('${data.aws_ami.ubuntu.id}');
  });

  test('registers only the admin key as an EC2 key pair, never the backup key', () => {
    expect(text).toHaveResourceWithProperties(KeyPair, {
      count: '${var.admin_ssh_public_key == "" ? 0 : 1}',
      public_key: '${var.admin_ssh_public_key}',
    });
    expect(JSON.stringify(json.resource.aws_key_pair)).not.toContain('var.ssh_public_key');
    expect(instance.key_name).toBe('${length(aws_key_pair.admin) > 0 ? aws_key_pair.admin[0].key_name : null}');
    expect(instance.lifecycle.precondition[1].condition).toBe(
      '${var.admin_ssh_public_key == "" || var.admin_ssh_public_key != var.ssh_public_key}',
    );
  });
});

describe('user data', () => {
  test('is gzip+base64 of the boot_script local (EC2 takes 16 KB raw; the real script is larger)', () => {
    expect(instance.user_data_base64).toBe('${base64gzip(local.boot_script)}');
    expect(instance.user_data).toBeUndefined();
  });

  test('is renderBootScript() for Terraform, with the settings as references to the volume and the variables', () => {
    const expected = renderBootScript(
      {
        volumeId: '${aws_ebs_volume.backup_data.id}',
        backupSshPublicKey: '${var.ssh_public_key}',
        adminSshPublicKey: '${var.admin_ssh_public_key}',
        appendOnly: '${var.append_only}',
        retention: '${var.retention}',
        retentionMin: '${var.retention_min}',
      },
      {
        forTerraform: true,
        payload: 's3',
        payloadUrl: `https://\${aws_s3_bucket.host_payload.bucket_regional_domain_name}/${payloadObjectKey(renderHostPayload().sha256)}`,
        payloadRegion: '${var.aws_region}',
        devicesExpression: 'local.device_lines',
      },
    );
    expect(json.locals.boot_script).toBe(expected);
  });

  test("carries the devices' keys as BTRBK_DEVICES, one sorted NAME KEY line each, and no such line without devices", () => {
    expect(json.locals.device_lines).toBe(
      '${join("\\n", [for name in sort(keys(var.devices)) : "${name} ${var.devices[name]}"])}',
    );
    const script = json.locals.boot_script as string;
    const line = `\${local.device_lines == "" ? "" : "BTRBK_DEVICES='\${local.device_lines}'\\n"}BTRBK_PAYLOAD_SHA256=`;
    expect(script.split(line)).toHaveLength(2);
    expect(script.match(/BTRBK_DEVICES='/g)).toHaveLength(1);
    expect((json.locals.boot_script_size_check as string).split(line)).toHaveLength(2);
    // the settings the host reads: the engine renders the map's lines only when there are some (engine tests)
    expect(script.indexOf(line)).toBeGreaterThan(script.indexOf("BTRBK_RETENTION_MIN='${var.retention_min}'"));
  });

  test('for the defaults (no devices), the user data is the single-key script as before devices existed', () => {
    const withoutDevices = renderBootScript(
      { volumeId: 'vol-0123456789abcdef0', backupSshPublicKey: 'k' },
      { payload: 's3', payloadUrl: 'https://b/o', payloadRegion: 'r' },
    );
    const withNone = (json.locals.boot_script as string)
      .replace(/\$\{local\.device_lines == "" \? "" : "BTRBK_DEVICES='\$\{local\.device_lines\}'\\n"\}/, '')
      .replace('${aws_ebs_volume.backup_data.id}', 'vol-0123456789abcdef0')
      .replace('${var.ssh_public_key}', 'k')
      .replace('${var.admin_ssh_public_key}', '')
      .replace('${var.append_only}', 'true')
      .replace('${var.retention}', '48h 14d 8w 12m')
      .replace('${var.retention_min}', '1d')
      .replace(/'https:\/\/\$\{aws_s3_bucket[^']*'/, "'https://b/o'")
      .replace("'${var.aws_region}'", "'r'")
      .replaceAll('$${', '${')
      .replaceAll('%%{', '%{');
    expect(withNone).toBe(withoutDevices);
    expect(withoutDevices).not.toContain("BTRBK_DEVICES='");
  });

  test('the host payload is one private, encrypted S3 object whose key and sha256 the boot script pins; the instance waits for it', () => {
    const payload = renderHostPayload();
    const object = json.resource.aws_s3_object.host_payload;
    expect(object).toMatchObject({
      bucket: '${aws_s3_bucket.host_payload.id}',
      key: `host-payload/${payload.sha256}.sh.gz`,
      content_base64: payload.base64,
    });
    // (after the devices' line, which the engine renders only when there are devices)
    expect(json.locals.boot_script).toContain(`"}BTRBK_PAYLOAD_SHA256='${payload.sha256}'\nBTRBK_PAYLOAD_FILE=''\n`);
    expect(json.resource.aws_s3_bucket_public_access_block.host_payload).toMatchObject({
      block_public_acls: true,
      block_public_policy: true,
      ignore_public_acls: true,
      restrict_public_buckets: true,
    });
    expect(json.resource.aws_s3_bucket_server_side_encryption_configuration.host_payload.rule[0]).toEqual({
      apply_server_side_encryption_by_default: { sse_algorithm: 'AES256' },
    });
    expect(json.resource.aws_s3_bucket_ownership_controls.host_payload.rule).toEqual({
      object_ownership: 'BucketOwnerEnforced',
    });
    const tlsOnly = JSON.parse(json.resource.aws_s3_bucket_policy.host_payload.policy);
    expect(tlsOnly.Statement).toEqual([
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    ]);
    expect(instance.depends_on).toEqual(['aws_s3_object.host_payload', 'aws_iam_role_policy.read_host_payload']);
  });

  test("the instance's only AWS permissions: s3:GetObject on its own payload object, PutMetricData in its own namespace (nothing on snapshots, rules, alarms or the volume)", () => {
    expect(instance.iam_instance_profile).toBe('${aws_iam_instance_profile.backup_host.name}');
    expect(json.resource.aws_iam_instance_profile.backup_host.role).toBe('${aws_iam_role.backup_host.name}');
    expect(JSON.parse(json.resource.aws_iam_role.backup_host.assume_role_policy).Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
    // the role's one inline policy, and no managed policy attached to it
    expect(Object.keys(json.resource.aws_iam_role_policy)).toEqual(['read_host_payload']);
    expect(json.resource.aws_iam_role_policy.read_host_payload.role).toBe('${aws_iam_role.backup_host.id}');
    const attachments = Object.values(json.resource.aws_iam_role_policy_attachment ?? {}) as Array<{ role: string }>;
    expect(attachments.map((a) => a.role).filter((r) => r.includes('backup_host'))).toEqual([]);
    const policy = JSON.parse(json.resource.aws_iam_role_policy.read_host_payload.policy);
    expect(policy.Statement).toEqual([
      {
        Sid: 'ReadHostPayload',
        Effect: 'Allow',
        Action: ['s3:GetObject'],
        Resource: `arn:\${data.aws_partition.host_payload.partition}:s3:::\${aws_s3_bucket.host_payload.id}/${payloadObjectKey(renderHostPayload().sha256)}`,
      },
      {
        Sid: 'ReportCompletedBackups',
        Effect: 'Allow',
        Action: ['cloudwatch:PutMetricData'],
        Resource: '*',
        Condition: { StringEquals: { 'cloudwatch:namespace': 'BtrbkBackupHost' } },
      },
    ]);
    expect(HOST_ROLE_ACTIONS).toEqual(policy.Statement.flatMap((st: { Action: string[] }) => st.Action));
  });

  test('carries append_only, retention and retention_min as references (the engine renders the bool as true/false)', () => {
    expect(json.locals.boot_script).toContain(
      "\nBTRBK_APPEND_ONLY='${var.append_only}'\nBTRBK_RETENTION='${var.retention}'\nBTRBK_RETENTION_MIN='${var.retention_min}'\n",
    );
    expect(json.variable.append_only.type).toBe('bool');
  });

  test('fits EC2’s 16 KB user-data limit once gzipped (the limit applies to the raw, decoded bytes)', () => {
    const plain = renderBootScript(
      {
        volumeId: 'vol-0123456789abcdef0',
        backupSshPublicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'A'.repeat(43)} backup@laptop`,
        adminSshPublicKey: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'B'.repeat(43)} admin@laptop`,
      },
      {
        payload: 's3',
        payloadUrl: `https://btrbk-host-payload-${'0'.repeat(26)}.s3.us-west-1.amazonaws.com/${payloadObjectKey('0'.repeat(64))}`,
        payloadRegion: 'us-west-1',
      },
    );
    expect(zlib.gzipSync(plain, { level: 9 }).length).toBeLessThan(16 * 1024);
  });

  test('carries the data volume id', () => {
    expect(json.locals.boot_script).toContain("BTRBK_VOLUME_ID='${aws_ebs_volume.backup_data.id}'");
  });
});

describe('the data volume', () => {
  test('is encrypted gp3 and cannot be destroyed by the engine', () => {
    expect(text).toHaveResourceWithProperties(EbsVolume, {
      type: 'gp3',
      encrypted: true,
      size: '${var.ebs_volume_size}',
      lifecycle: expect.objectContaining({ prevent_destroy: true }),
    });
  });

  test('is made from restore_snapshot_id when given; an existing volume is never replaced for it, nor is it ignored silently', () => {
    expect(volume.snapshot_id).toBe('${var.restore_snapshot_id == "" ? null : var.restore_snapshot_id}');
    expect(volume.lifecycle.ignore_changes).toContain('snapshot_id');
    expect(volume.lifecycle.postcondition).toContainEqual({
      condition: '${var.restore_snapshot_id == "" || self.snapshot_id == var.restore_snapshot_id}',
      error_message: expect.stringMatching(
        /^restore_snapshot_id is set, but the data volume already exists.*never replaces.*docs\/RESTORE\.md/,
      ),
    });
  });

  test("alone carries the tag the snapshot policy selects, with this deployment's own id as its value", () => {
    expect(volume.tags[DATA_VOLUME_TAG_KEY]).toBe(DEPLOYMENT);
    expect(json.resource.terraform_data.deployment).toEqual({});
    const others = JSON.stringify({ ...json.resource, aws_ebs_volume: undefined, aws_dlm_lifecycle_policy: undefined });
    expect(others).not.toContain(DATA_VOLUME_TAG_KEY);
  });
});

describe('snapshots the host cannot touch', () => {
  test('a DLM policy snapshots the volumes with the data volume’s tag, every snapshot_interval_hours, keeping snapshot_retain_count', () => {
    expect(text).toHaveResourceWithProperties(DlmLifecyclePolicy, {
      count: '${var.snapshot_retain_count > 0 ? 1 : 0}',
      state: 'ENABLED',
      execution_role_arn: '${aws_iam_role.dlm[0].arn}',
      policy_details: {
        policy_type: 'EBS_SNAPSHOT_MANAGEMENT',
        resource_types: ['VOLUME'],
        target_tags: { [DATA_VOLUME_TAG_KEY]: DEPLOYMENT },
        schedule: [
          expect.objectContaining({
            create_rule: { interval: '${var.snapshot_interval_hours}', interval_unit: 'HOURS' },
            retain_rule: { count: '${var.snapshot_retain_count}' },
            tags_to_add: { [SNAPSHOT_TAG_KEY]: DEPLOYMENT },
          }),
        ],
      },
    });
  });

  test('DLM acts as its own role: trusted by dlm.amazonaws.com only, with AWS’s managed DLM policy; none when snapshot_retain_count is 0', () => {
    expect(text).toHaveResourceWithProperties(IamRole, { count: '${var.snapshot_retain_count > 0 ? 1 : 0}' });
    const trust = JSON.parse(json.resource.aws_iam_role.dlm.assume_role_policy);
    expect(trust.Statement).toEqual([
      { Effect: 'Allow', Principal: { Service: 'dlm.amazonaws.com' }, Action: 'sts:AssumeRole' },
    ]);
    expect(text).toHaveResourceWithProperties(IamRolePolicyAttachment, {
      count: '${var.snapshot_retain_count > 0 ? 1 : 0}',
      role: '${aws_iam_role.dlm[0].name}',
      policy_arn:
        'arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSDataLifecycleManagerServiceRole',
    });
    expect(text).toHaveDataSource(DataAwsPartition);
  });

  test('a tag-level Recycle Bin rule keeps deleted DLM snapshots for recycle_bin_days, unless a lock is asked for', () => {
    expect(text).toHaveResourceWithProperties(RbinRule, {
      count: '${var.recycle_bin_days > 0 && !(var.recycle_bin_lock_days > 0) ? 1 : 0}',
      resource_type: 'EBS_SNAPSHOT',
      // this deployment's snapshots, and those DLM made before the tag was per deployment
      resource_tags: [
        { resource_tag_key: SNAPSHOT_TAG_KEY, resource_tag_value: DEPLOYMENT },
        { resource_tag_key: SNAPSHOT_TAG_KEY, resource_tag_value: LEGACY_SNAPSHOT_TAG_VALUE },
      ],
      retention_period: { retention_period_value: '${var.recycle_bin_days}', retention_period_unit: 'DAYS' },
    });
    expect(json.resource.aws_rbin_rule.dlm_snapshots.lock_configuration).toBeUndefined();
  });

  test('a lock makes it Region-level (AWS locks no tag-level rule), with the unlock delay in days', () => {
    expect(text).toHaveResourceWithProperties(RbinRule, {
      count: '${var.recycle_bin_days > 0 && var.recycle_bin_lock_days > 0 ? 1 : 0}',
      resource_type: 'EBS_SNAPSHOT',
      lock_configuration: {
        unlock_delay: { unlock_delay_value: '${var.recycle_bin_lock_days}', unlock_delay_unit: 'DAYS' },
      },
    });
    expect(json.resource.aws_rbin_rule.region_locked.resource_tags).toBeUndefined();
  });
});

describe('the missed-backup alarm', () => {
  /** What every missed-backup alarm watches, and how. */
  const watching = {
    namespace: 'BtrbkBackupHost',
    metric_name: 'CompletedBackups',
    statistic: 'Sum',
    period: 3600,
    evaluation_periods: '${var.backup_alarm_hours}',
    datapoints_to_alarm: '${var.backup_alarm_hours}',
    comparison_operator: 'LessThanThreshold',
    threshold: 1,
    treat_missing_data: 'breaching',
    alarm_actions: '${aws_sns_topic.alerts[*].arn}',
    ok_actions: '${aws_sns_topic.alerts[*].arn}',
  };
  test('watches the completed backups the host reports for this data volume: hourly Sum below 1 for backup_alarm_hours hours, missing data breaching', () => {
    expect(text).toHaveResourceWithProperties(CloudwatchMetricAlarm, {
      ...watching,
      count: '${var.backup_alarm_hours > 0 ? 1 : 0}',
      alarm_name: 'btrbk-no-completed-backup-${aws_ebs_volume.backup_data.id}',
      dimensions: { VolumeId: '${aws_ebs_volume.backup_data.id}' },
    });
  });

  test('watches each device too: one alarm per device, with its Device dimension and name, none when backup_alarm_hours is 0', () => {
    expect(text).toHaveResourceWithProperties(CloudwatchMetricAlarm, {
      for_each: '${var.backup_alarm_hours > 0 ? var.devices : {}}',
      ...watching,
      alarm_name: 'btrbk-no-completed-backup-${aws_ebs_volume.backup_data.id}-${each.key}',
      dimensions: { VolumeId: '${aws_ebs_volume.backup_data.id}', Device: '${each.key}' },
    });
    const alarm = json.resource.aws_cloudwatch_metric_alarm.no_device_backup;
    expect(alarm.alarm_description).toMatch(/^No backup of device \$\{each.key\} has completed/);
    // the dimension names the host's heartbeat reports under
    const heartbeat = fs.readFileSync(path.join(USER_DATA_DIR, 'btrbk-heartbeat.sh'), 'utf8');
    for (const name of Object.keys(alarm.dimensions as object))
      expect([name, new RegExp(`Dimensions\\.member\\.\\d\\.Name=${name}&`).test(heartbeat)]).toEqual([name, true]);
  });

  test('mails through an SNS topic and an email subscription only when alert_email is set', () => {
    expect(text).toHaveResourceWithProperties(SnsTopic, { count: '${var.alert_email != "" ? 1 : 0}' });
    expect(text).toHaveResourceWithProperties(SnsTopicSubscription, {
      count: '${var.alert_email != "" ? 1 : 0}',
      protocol: 'email',
      endpoint: '${var.alert_email}',
      topic_arn: '${aws_sns_topic.alerts[0].arn}',
    });
  });

  test('is created in a zone that offers the instance type, chosen before the instance or the volume exists', () => {
    expect(volume.availability_zone).toBe('${local.availability_zone}');
    expect(json.locals.availability_zone).toBe(
      '${var.availability_zone != "" ? var.availability_zone : concat(sort(setintersection(data.aws_availability_zones.available.names, data.aws_ec2_instance_type_offerings.instance_type.locations)), sort(data.aws_availability_zones.available.names))[0]}',
    );
    expect(text).toHaveDataSourceWithProperties(DataAwsAvailabilityZones, {
      state: 'available',
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });
    expect(text).toHaveDataSourceWithProperties(DataAwsEc2InstanceTypeOfferings, {
      location_type: 'availability-zone',
      filter: [{ name: 'instance-type', values: ['${var.instance_type}'] }],
    });
  });

  test('keeps its zone once it exists, and the instance follows the volume, not a new choice', () => {
    expect(volume.lifecycle.ignore_changes).toEqual(['snapshot_id', 'availability_zone']);
    expect(instance.availability_zone).toBe('${aws_ebs_volume.backup_data.availability_zone}');
    expect(json.output.availability_zone.value).toBe('${aws_ebs_volume.backup_data.availability_zone}');
    expect(instance.lifecycle.precondition).toContainEqual(
      expect.objectContaining({
        condition:
          '${contains(data.aws_ec2_instance_type_offerings.instance_type.locations, aws_ebs_volume.backup_data.availability_zone)}',
      }),
    );
    expect(volume.lifecycle.postcondition).toContainEqual({
      condition: '${var.availability_zone == "" || self.availability_zone == var.availability_zone}',
      error_message: expect.stringMatching(
        /^availability_zone is \$\{var\.availability_zone\}, but the data volume already exists in \$\{self\.availability_zone\}.*cannot move/,
      ),
    });
  });

  test('is attached separately; the instance stops before a detach', () => {
    expect(text).toHaveResourceWithProperties(VolumeAttachment, {
      volume_id: '${aws_ebs_volume.backup_data.id}',
      instance_id: '${aws_instance.backup_host.id}',
      stop_instance_before_detaching: true,
    });
    expect(instance.ebs_block_device).toBeUndefined();
  });
});

describe('network access', () => {
  test('lets SSH in from allowed_ssh_cidrs only', () => {
    expect(sg.ingress).toHaveLength(1);
    expect(sg.ingress[0]).toMatchObject({
      protocol: 'tcp',
      from_port: 22,
      to_port: 22,
      cidr_blocks: '${local.ssh_ipv4_cidrs}',
      ipv6_cidr_blocks: '${local.ssh_ipv6_cidrs}',
      security_groups: [],
      prefix_list_ids: [],
      self: false,
    });
    expect(json.locals.ssh_ipv4_cidrs).toBe('${[for c in var.allowed_ssh_cidrs : c if !strcontains(c, ":")]}');
    expect(json.locals.ssh_ipv6_cidrs).toBe('${[for c in var.allowed_ssh_cidrs : c if strcontains(c, ":")]}');
  });

  test('lets only HTTP and HTTPS out', () => {
    expect(
      sg.egress.map((r: { from_port: number; to_port: number; protocol: string }) => [
        r.protocol,
        r.from_port,
        r.to_port,
      ]),
    ).toEqual([
      ['tcp', 80, 80],
      ['tcp', 443, 443],
    ]);
    expect(instance.vpc_security_group_ids).toEqual(['${aws_security_group.backup_host.id}']);
    expect(text).toHaveResource(SecurityGroup);
  });

  test('gives the host a stable Elastic IP', () => {
    expect(text).toHaveResourceWithProperties(Eip, { domain: 'vpc' });
    expect(text).toHaveResourceWithProperties(EipAssociation, {
      allocation_id: '${aws_eip.backup_host.allocation_id}',
      instance_id: '${aws_instance.backup_host.id}',
    });
  });
});

test('tags every resource whose type takes tags', () => {
  const classes: Record<string, { prototype: object }> = {
    aws_instance: Instance,
    aws_ebs_volume: EbsVolume,
    aws_volume_attachment: VolumeAttachment,
    aws_security_group: SecurityGroup,
    aws_eip: Eip,
    aws_eip_association: EipAssociation,
    aws_key_pair: KeyPair,
    aws_iam_role: IamRole,
    aws_iam_role_policy_attachment: IamRolePolicyAttachment,
    aws_dlm_lifecycle_policy: DlmLifecyclePolicy,
    aws_rbin_rule: RbinRule,
    aws_cloudwatch_metric_alarm: CloudwatchMetricAlarm,
    aws_sns_topic: SnsTopic,
    aws_sns_topic_subscription: SnsTopicSubscription,
    aws_s3_bucket: S3Bucket,
    aws_s3_bucket_public_access_block: S3BucketPublicAccessBlock,
    aws_s3_bucket_ownership_controls: S3BucketOwnershipControls,
    aws_s3_bucket_server_side_encryption_configuration: S3BucketServerSideEncryptionConfigurationA,
    aws_s3_bucket_policy: S3BucketPolicy,
    aws_s3_object: S3Object,
    aws_iam_role_policy: IamRolePolicy,
    aws_iam_instance_profile: IamInstanceProfile,
    terraform_data: DataResource,
  };
  const tagged: string[] = [];
  for (const [type, byName] of Object.entries(json.resource)) {
    expect(classes[type]).toBeDefined(); // a new resource type must be added here and checked
    const takesTags = 'putTags' in classes[type].prototype || 'tags' in classes[type].prototype;
    for (const [name, config] of Object.entries(byName)) {
      if (!takesTags) continue;
      expect({ [`${type}.${name}`]: config.tags }).toEqual({
        [`${type}.${name}`]: expect.objectContaining({
          Project: STACK_NAME,
          ManagedBy: 'cdktf',
          Name: expect.any(String),
        }),
      });
      tagged.push(type);
    }
  }
  expect(instance.root_block_device.tags).toMatchObject({ Project: STACK_NAME });
  expect([...new Set(tagged)].sort()).toEqual([
    'aws_cloudwatch_metric_alarm',
    'aws_dlm_lifecycle_policy',
    'aws_ebs_volume',
    'aws_eip',
    'aws_iam_instance_profile',
    'aws_iam_role',
    'aws_instance',
    'aws_key_pair',
    'aws_rbin_rule',
    'aws_s3_bucket',
    'aws_s3_object',
    'aws_security_group',
    'aws_sns_topic',
  ]);
});

describe('variables', () => {
  test('have the documented defaults', () => {
    const defaults = Object.fromEntries(Object.entries(json.variable).map(([name, v]) => [name, v.default]));
    expect(defaults).toEqual({
      ...VARIABLE_DEFAULTS,
      allowed_ssh_cidrs: [...VARIABLE_DEFAULTS.allowed_ssh_cidrs],
      ssh_public_key: undefined,
    });
  });

  test('default to what the boot script assumes when a setting is not given', () => {
    expect({
      appendOnly: String(VARIABLE_DEFAULTS.append_only),
      retention: VARIABLE_DEFAULTS.retention,
      retentionMin: VARIABLE_DEFAULTS.retention_min,
      adminSshPublicKey: VARIABLE_DEFAULTS.admin_ssh_public_key,
      // an empty map renders no device lines
      devices: Object.keys(VARIABLE_DEFAULTS.devices).join('\n'),
    }).toEqual(SETTING_DEFAULTS);
  });

  test('each has a description', () => {
    for (const [name, v] of Object.entries(json.variable))
      expect({ name, described: (v.description ?? '').length > 20 }).toEqual({ name, described: true });
  });

  test('each has a validation that says what is expected (a bool: its type is the validation)', () => {
    for (const [name, v] of Object.entries(json.variable)) {
      if (v.type === 'bool') {
        expect({ name, validation: v.validation }).toEqual({ name, validation: undefined });
        continue;
      }
      expect(v.validation?.length).toBeGreaterThan(0);
      for (const rule of v.validation ?? []) {
        expect(rule.condition).toContain(`var.${name}`);
        expect(rule.error_message).toMatch(new RegExp(`^${name} must `));
      }
    }
  });
});

test('outputs what the scripts read', () => {
  expect(Object.keys(json.output).sort()).toEqual(
    [
      'availability_zone',
      'backup_path',
      'btrbk_target',
      'instance_id',
      'public_ip',
      'region',
      'ssh_user',
      'volume_id',
      'snapshot_policy_id',
      'recycle_bin_rule_id',
      'recycle_bin_rule_scope',
      'backup_alarm_name',
      'alert_topic_arn',
      'alert_email',
    ].sort(),
  );
  expect(json.output.backup_alarm_name.value).toBe(
    '${length(aws_cloudwatch_metric_alarm.no_backup_writes) > 0 ? aws_cloudwatch_metric_alarm.no_backup_writes[0].alarm_name : ""}',
  );
  expect(json.output.btrbk_target.value).toBe('ssh://${aws_eip.backup_host.public_ip}/backup_volume/backups/');
  expect(json.output.public_ip.value).toBe('${aws_eip.backup_host.public_ip}');
  expect(json.output.ssh_user.value).toBe('btrbk');
  expect(json.output.backup_path.value).toBe('/backup_volume/backups');
});
