import { Construct } from 'constructs';
import { Token, type ITerraformDependable } from 'cdktf';
import { DataAwsAmi } from '@cdktf/provider-aws/lib/data-aws-ami/index.js';
import { Instance } from '@cdktf/provider-aws/lib/instance/index.js';
import { Eip } from '@cdktf/provider-aws/lib/eip/index.js';
import { EipAssociation } from '@cdktf/provider-aws/lib/eip-association/index.js';

/** Canonical's AWS account: the owner of the official Ubuntu images. */
export const CANONICAL_OWNER_ID = '099720109477';
/**
 * Ubuntu 24.04 LTS (noble), gp3 root volume, for one Debian architecture (amd64 or arm64); standard support
 * until 2029 (22.04's ends April 2027).
 */
export const ubuntuAmiName = (debianArch: string): string =>
  `ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${debianArch}-server-*`;
/** The image of the default (x86_64) instance types. */
export const UBUNTU_AMI_NAME = ubuntuAmiName('amd64');
/** Root volume size in GiB: the OS only; backups live on the data volume. */
export const ROOT_VOLUME_GIB = 8;

/** The EC2 instance that receives the backups. */
export interface BackupHostProps {
  /** Instance type: a Nitro burstable type (CPU credits are set to standard). */
  readonly instanceType: string;
  /**
   * The type's EC2 architecture, x86_64 or arm64 (the image's `architecture` filter), usually an expression on
   * the `instance_type` variable (tfvars.ts instanceArchitecture has the same rule). @default 'x86_64'
   */
  readonly architecture?: string;
  /** Availability zone; the data volume's. */
  readonly availabilityZone: string;
  /** Security groups of the instance. */
  readonly securityGroupIds: string[];
  /** The boot script, base64 of its gzip (EC2 takes at most 16 KB of raw user data). */
  readonly userDataBase64: string;
  /** EC2 key pair for the image's default user. @default no key pair */
  readonly keyName?: string;
  /** Tags for the instance, its root volume and the Elastic IP. @default {} */
  readonly tags?: Record<string, string>;
  /**
   * The instance profile whose role reads the host payload (constructs/host-payload.ts). @default none (a boot
   * script with everything inline)
   */
  readonly instanceProfileName?: string;
  /** What must exist before the instance boots (the payload object and its role's policy). @default [] */
  readonly dependsOn?: ITerraformDependable[];
}

/**
 * The backup host: Ubuntu 24.04 from Canonical (amd64 or arm64, as the instance type needs), IMDSv2 only, encrypted root volume, standard CPU credits, and an
 * Elastic IP so a stop/start or a re-created instance keeps the address the connection file and btrbk.conf hold.
 *
 * A changed boot script replaces the instance (user_data_replace_on_change): the data volume is separate and the
 * boot script never formats a volume that holds a filesystem. A newer AMI does not (ignore_changes = [ami]).
 */
export class BackupHost extends Construct {
  readonly ami: DataAwsAmi;
  readonly instance: Instance;
  readonly eip: Eip;

  constructor(scope: Construct, id: string, props: BackupHostProps) {
    super(scope, id);
    const tags = { ...props.tags, Name: 'btrbk-backup-host' };

    const arch = Token.asString(props.architecture ?? 'x86_64');
    this.ami = new DataAwsAmi(this, 'ami', {
      mostRecent: true,
      owners: [CANONICAL_OWNER_ID],
      filter: [
        // Ubuntu names its images by the Debian architecture (amd64, arm64); EC2 filters by its own (x86_64, arm64)
        { name: 'name', values: [ubuntuAmiName(`\${${arch} == "arm64" ? "arm64" : "amd64"}`)] },
        { name: 'architecture', values: [arch] },
        { name: 'virtualization-type', values: ['hvm'] },
        { name: 'root-device-type', values: ['ebs'] },
      ],
    });
    this.ami.overrideLogicalId('ubuntu');

    this.instance = new Instance(this, 'instance', {
      ami: this.ami.id,
      instanceType: props.instanceType,
      availabilityZone: props.availabilityZone,
      vpcSecurityGroupIds: props.securityGroupIds,
      keyName: props.keyName,
      iamInstanceProfile: props.instanceProfileName,
      userDataBase64: props.userDataBase64,
      userDataReplaceOnChange: true,
      metadataOptions: {
        httpEndpoint: 'enabled',
        httpTokens: 'required',
        httpPutResponseHopLimit: 1,
        // the boot script reads its role's credentials, not its tags (the tags are the person's)
        instanceMetadataTags: 'disabled',
      },
      creditSpecification: { cpuCredits: 'standard' },
      rootBlockDevice: {
        volumeType: 'gp3',
        volumeSize: ROOT_VOLUME_GIB,
        encrypted: true,
        deleteOnTermination: true,
        tags: { ...props.tags, Name: 'btrbk-backup-root' },
      },
      tags,
      lifecycle: { ignoreChanges: ['ami'] },
      dependsOn: props.dependsOn,
    });
    this.instance.overrideLogicalId('backup_host');

    this.eip = new Eip(this, 'eip', { domain: 'vpc', tags });
    this.eip.overrideLogicalId('backup_host');
    new EipAssociation(this, 'eip_association', {
      allocationId: this.eip.allocationId,
      instanceId: this.instance.id,
    }).overrideLogicalId('backup_host');
  }
}
