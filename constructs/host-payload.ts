import { Construct } from 'constructs';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket/index.js';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls/index.js';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy/index.js';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block/index.js';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration/index.js';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object/index.js';
import { METRIC_NAMESPACE } from '../user-data/host-layout.js';

/** Where the host's programs come from: one private S3 object, read by the instance's own role. */
export interface HostPayloadProps {
  /** The payload's sha256 (hex): the object's key holds it, so a changed payload is a new object. */
  readonly sha256: string;
  /** base64 of the payload's gzip (user-data/render.ts renderHostPayload). */
  readonly gzipBase64: string;
  /** Tags of the bucket, the object and the role. @default {} */
  readonly tags?: Record<string, string>;
}

/** The object's key in the bucket for a payload of this sha256. */
export const payloadObjectKey = (sha256: string): string => `host-payload/${sha256}.sh.gz`;

/** What the instance's role may do, and nothing else: read this one object, and report completed backups in the
 * project's own CloudWatch namespace. */
export const HOST_ROLE_ACTIONS = Object.freeze(['s3:GetObject', 'cloudwatch:PutMetricData']);

/**
 * The host payload's channel: the host's programs (SSH gate, btrbk-receive, sudoers, prune, scrub, manifest, host
 * identity, layout) as one gzipped shell text in a private S3 bucket of this deployment (all public access
 * blocked, owner-enforced objects, SSE-S3 encryption, TLS-only bucket policy), and the instance's role and profile,
 * whose only permissions are `s3:GetObject` on that one object and `cloudwatch:PutMetricData` in the project's own
 * namespace (btrbk-heartbeat: each completed backup, the missed-backup alarm's signal). EC2's 16 KB of user data then holds only the boot
 * script's steps and settings, with the payload's sha256 and URL; the boot script checks the sha256 before it runs
 * anything of it. The instance has no other AWS permission: nothing on the host can change or delete a snapshot, a
 * Recycle Bin rule, an alarm or the volume (a metric it puts can end an alarm, not change or delete it).
 */
export class HostPayload extends Construct {
  readonly bucket: S3Bucket;
  readonly object: S3Object;
  readonly role: IamRole;
  readonly policy: IamRolePolicy;
  readonly instanceProfile: IamInstanceProfile;
  /** The object's https URL (virtual-hosted style, the bucket's regional endpoint). */
  readonly url: string;

  constructor(scope: Construct, id: string, props: HostPayloadProps) {
    super(scope, id);
    const tags = { ...props.tags };
    const key = payloadObjectKey(props.sha256);

    const partition = new DataAwsPartition(this, 'partition');
    partition.overrideLogicalId('host_payload');

    this.bucket = new S3Bucket(this, 'bucket', {
      bucketPrefix: 'btrbk-host-payload-',
      // it holds only payloads the stack renders again from the repository: nothing to keep when the stack goes
      forceDestroy: true,
      tags: { ...tags, Name: 'btrbk-host-payload' },
    });
    this.bucket.overrideLogicalId('host_payload');
    new S3BucketPublicAccessBlock(this, 'public_access_block', {
      bucket: this.bucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    }).overrideLogicalId('host_payload');
    new S3BucketOwnershipControls(this, 'ownership', {
      bucket: this.bucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    }).overrideLogicalId('host_payload');
    new S3BucketServerSideEncryptionConfigurationA(this, 'encryption', {
      bucket: this.bucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
    }).overrideLogicalId('host_payload');
    new S3BucketPolicy(this, 'tls_only', {
      bucket: this.bucket.id,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'TlsOnly',
            Effect: 'Deny',
            Principal: '*',
            Action: 's3:*',
            Resource: [this.bucket.arn, `${this.bucket.arn}/*`],
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          },
        ],
      }),
    }).overrideLogicalId('host_payload');

    this.object = new S3Object(this, 'object', {
      bucket: this.bucket.id,
      key,
      contentBase64: props.gzipBase64,
      contentType: 'application/gzip',
      tags: { ...tags, Name: 'btrbk-host-payload' },
    });
    this.object.overrideLogicalId('host_payload');

    this.role = new IamRole(this, 'role', {
      namePrefix: 'btrbk-host-',
      description: 'The btrbk backup host: reads its own payload object, reports completed backups, nothing else',
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
      tags: { ...tags, Name: 'btrbk-backup-host' },
    });
    this.role.overrideLogicalId('backup_host');
    this.policy = new IamRolePolicy(this, 'read_payload', {
      name: 'read-host-payload',
      role: this.role.id,
      policy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'ReadHostPayload',
            Effect: 'Allow',
            Action: ['s3:GetObject'],
            Resource: `arn:${partition.partition}:s3:::${this.bucket.id}/${key}`,
          },
          {
            // PutMetricData has no resource ARN: the namespace condition is what confines it
            Sid: 'ReportCompletedBackups',
            Effect: 'Allow',
            Action: ['cloudwatch:PutMetricData'],
            Resource: '*',
            Condition: { StringEquals: { 'cloudwatch:namespace': METRIC_NAMESPACE } },
          },
        ],
      }),
    });
    this.policy.overrideLogicalId('read_host_payload');
    this.instanceProfile = new IamInstanceProfile(this, 'profile', {
      namePrefix: 'btrbk-host-',
      role: this.role.name,
      tags: { ...tags, Name: 'btrbk-backup-host' },
    });
    this.instanceProfile.overrideLogicalId('backup_host');

    this.url = `https://${this.bucket.bucketRegionalDomainName}/${key}`;
  }
}
