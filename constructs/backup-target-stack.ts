import { Construct } from 'constructs';
import { Fn, LocalBackend, TerraformLocal, TerraformOutput, TerraformStack, TerraformVariable, Token } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones/index.js';
import { KeyPair } from '@cdktf/provider-aws/lib/key-pair/index.js';
import { BACKUP_ROOT, BACKUP_USER } from '../scripts/lib/core/host-layout.js';
import { renderBootScript, renderHostPayload } from '../user-data/render.js';
import {
  AVAILABILITY_ZONE_SOURCE,
  ED25519_KEY_SOURCE,
  GP3_MAX_GIB,
  GP3_MIN_GIB,
  INSTANCE_TYPE_SOURCE,
  KEY_PAIR_NAME_SOURCE,
  REGION_SOURCE,
  RETENTION_MIN_SOURCE,
  RETENTION_SOURCE,
} from '../scripts/lib/deploy/tfvars.js';
import { BackupHost } from './backup-host.js';
import { DataVolume } from './data-volume.js';
import { NetworkAccess } from './network-access.js';

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

    // The zone is chosen before the instance and the volume exist, so the boot script can carry the volume id
    // without a dependency cycle. Sorted, so a zone appearing later does not move the choice.
    const zones = new DataAwsAvailabilityZones(this, 'zones', {
      state: 'available',
      filter: [{ name: 'opt-in-status', values: ['opt-in-not-required'] }],
    });
    zones.overrideLogicalId('available');
    const zone = new TerraformLocal(
      this,
      'chosen_zone',
      // (Raw expressions where an empty string is compared: cdktf's Op.eq(x, '') renders `undefined`.)
      `\${var.availability_zone != "" ? var.availability_zone : sort(${Token.asString(zones.names)})[0]}`,
    );
    zone.overrideLogicalId('availability_zone');

    const access = new NetworkAccess(this, 'network_access', { allowedSshCidrs: v.allowedSshCidrs.listValue, tags });
    const data = new DataVolume(this, 'data_volume', {
      availabilityZone: zone.asString,
      sizeGib: v.ebsVolumeSize.numberValue,
      tags,
    });

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

    // The plain boot script (static text escaped for a Terraform template; the settings resolve to references)
    // stays in a local so the engine tests can compare it with the renderer's output; EC2 gets gzip+base64.
    const bootScript = new TerraformLocal(
      this,
      'boot_script',
      renderBootScript(
        {
          volumeId: data.volume.id,
          backupSshPublicKey: v.sshPublicKey.stringValue,
          adminSshPublicKey: v.adminSshPublicKey.stringValue,
          // A bool in a Terraform string template renders as true or false: BTRBK_APPEND_ONLY='true' / 'false'.
          appendOnly: v.appendOnly.stringValue,
          retention: v.retention.stringValue,
          retentionMin: v.retentionMin.stringValue,
        },
        // the host payload (what does not fit in EC2's 16 KB of user data) rides in the instance's tags
        { forTerraform: true, payload: 'tags' },
      ),
    );
    bootScript.overrideLogicalId('boot_script');

    const host = new BackupHost(this, 'backup_host', {
      instanceType: v.instanceType.stringValue,
      availabilityZone: zone.asString,
      securityGroupIds: [access.securityGroup.id],
      userDataBase64: Fn.base64gzip(bootScript.asString),
      payloadTags: renderHostPayload().tags,
      // A reference to the key pair (not to the variable), so the instance waits for it.
      keyName: `\${length(${keyPair.terraformResourceType}.${keyPair.friendlyUniqueId}) > 0 ? ${keyPair.terraformResourceType}.${keyPair.friendlyUniqueId}[0].key_name : null}`,
      tags,
    });
    // A check across two variables: a precondition (variable validations may only reference their own
    // variable in older engines), still refused at plan time.
    host.instance.lifecycle = {
      ...host.instance.lifecycle,
      precondition: [
        {
          condition: '${var.admin_ssh_public_key == "" || var.admin_ssh_public_key != var.ssh_public_key}',
          errorMessage:
            'admin_ssh_public_key must differ from ssh_public_key: the backup key reaches the host only through the SSH gate; use a second key for admin login.',
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
    out('availability_zone', zone.asString, 'availability zone of the instance and the data volume');
    out('ssh_user', SSH_USER, 'the user behind the SSH gate');
    out('backup_path', BACKUP_PATH, 'directory on the host that holds the backups');
    // btrbk's URL grammar is ssh://HOST[:PORT]/PATH with no user part (btrbk 0.32.5 refuses 'btrbk@'); the user
    // goes into btrbk.conf as ssh_user, which the ssh_user output gives.
    out('btrbk_target', `ssh://${host.eip.publicIp}${BACKUP_PATH}/`, 'btrbk target URL (set ssh_user from the ssh_user output)');
  }
}

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
      description: 'Optional admin key (full shell as the image default user, registered as the EC2 key pair); empty: no admin login',
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
        'Availability zone of the host and its data volume; empty: the first available zone of the region (alphabetically). Pin it to the zone in state if the region ever offers a different first zone.',
      validation: [
        {
          condition: `\${var.availability_zone == "" || can(regex(${hclRegex(AVAILABILITY_ZONE_SOURCE)}, var.availability_zone))}`,
          errorMessage: 'availability_zone must be empty (first available zone) or a zone name such as us-west-1a, in aws_region.',
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
          errorMessage: 'key_pair_name must be 1-255 characters: letters, digits, ".", "_" and "-", starting with a letter or digit.',
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
          condition: '${length(var.allowed_ssh_cidrs) > 0 && alltrue([for c in var.allowed_ssh_cidrs : can(cidrhost(c, 0))])}',
          errorMessage: 'allowed_ssh_cidrs must be a non-empty list of CIDR blocks such as ["203.0.113.7/32"] or ["0.0.0.0/0"].',
        },
      ],
    }),
    instanceType: variable('instance_type', {
      type: 'string',
      default: d.instance_type,
      description: 'EC2 instance type; an x86_64 burstable type (t3a, t3, t2), as the image is amd64 and CPU credits are standard',
      validation: [
        {
          condition: `\${can(regex(${hclRegex(INSTANCE_TYPE_SOURCE)}, var.instance_type))}`,
          errorMessage: 'instance_type must be an x86_64 burstable type such as t3a.nano, t3a.micro or t3.small (the image is amd64; CPU credits are set to standard).',
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
          errorMessage: 'retention_min must be a count (up to 4 digits) followed by h, d, w, m or y (such as "1d"), or "latest", or "no".',
        },
      ],
    }),
  };
}
