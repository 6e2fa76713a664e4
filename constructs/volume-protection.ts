import { Construct } from 'constructs';
import { Token } from 'cdktf';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { DlmLifecyclePolicy } from '@cdktf/provider-aws/lib/dlm-lifecycle-policy/index.js';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicyAttachment } from '@cdktf/provider-aws/lib/iam-role-policy-attachment/index.js';
import { RbinRule } from '@cdktf/provider-aws/lib/rbin-rule/index.js';
// (the limits of these services are in tfvars.ts, which setup checks terraform.tfvars with)

/**
 * The tag only the data volume carries: the DLM policy snapshots exactly the volumes with it. Not on the
 * instance, its root volume or anything else the stack makes. Its value is this deployment's own id (the stack's
 * `terraform_data.deployment`), so a second deployment in the account and region, or a volume detached from an
 * earlier one, is not snapshotted by this policy.
 */
export const DATA_VOLUME_TAG_KEY = 'btrbk-data-volume';
/**
 * The tag DLM puts on every snapshot it makes (tags_to_add), with the deployment's id as its value: the Recycle Bin
 * rule selects by it. docs/RESTORE.md finds the snapshots by the data volume's id.
 */
export const SNAPSHOT_TAG_KEY = 'btrbk-snapshot';
/** The value both tags had in every deployment before they were per deployment: snapshots made then carry it, and the
 * Recycle Bin rule keeps covering them. */
export const LEGACY_SNAPSHOT_TAG_VALUE = 'dlm';
/** AWS's managed policy for DLM's default role (snapshot create/delete/describe, tags on snapshots). */
export const DLM_MANAGED_POLICY = 'policy/service-role/AWSDataLifecycleManagerServiceRole';

/** Snapshots of the data volume that nothing on the host can delete, and a recycle bin behind them. */
export interface VolumeProtectionProps {
  /** Hours between snapshots, one of SNAPSHOT_INTERVAL_HOURS. Usually a token of `snapshot_interval_hours`. */
  readonly intervalHours: number;
  /** Snapshots kept (0..1000); 0: no DLM policy and no role. Usually a token of `snapshot_retain_count`. */
  readonly retainCount: number;
  /** Days a deleted snapshot stays recoverable (0..365); 0: no recycle-bin rule. Token of `recycle_bin_days`. */
  readonly recycleBinDays: number;
  /**
   * Unlock delay in days of a locked rule (0, or 7..30). Not 0: the rule is a Region-level rule (AWS locks
   * only those) covering EVERY EBS snapshot deleted in the region. Token of `recycle_bin_lock_days`.
   * @default 0 (a tag-level rule for the DLM snapshots only, unlocked)
   */
  readonly recycleBinLockDays?: number;
  /** This deployment's id: the value of the data volume's and the snapshots' tags (see DATA_VOLUME_TAG_KEY). */
  readonly deploymentId: string;
  /** Tags for the policy, the role and the rule. @default {} */
  readonly tags?: Record<string, string>;
}

const num = (n: number): string => Token.asString(n);

/**
 * An Amazon Data Lifecycle Manager policy that snapshots the volumes tagged DATA_VOLUME_TAG_KEY = the deployment's id every
 * `intervalHours` and keeps the newest `retainCount`, with the IAM role DLM acts as (trust dlm.amazonaws.com,
 * AWS's managed DLM policy). The host has no AWS credentials: nothing on it can delete these snapshots.
 *
 * Behind it a Recycle Bin retention rule: a deleted snapshot (by DLM's retention, by a person, by anyone with
 * the account's keys) stays recoverable for `recycleBinDays`, billed like a snapshot meanwhile. AWS locks only
 * Region-level rules, so a lock (`recycleBinLockDays` > 0) switches to the Region-level rule, which keeps every
 * EBS snapshot deleted in the region, not just these. hashicorp/aws 5.100.0 accepts lock_configuration but never
 * sends it (hashicorp/terraform-provider-aws#32534): the rule carries it for a provider that does, and
 * docs/RESTORE.md gives the `aws rbin lock-rule` command that locks it today.
 */
export class VolumeProtection extends Construct {
  readonly role: IamRole;
  readonly policy: DlmLifecyclePolicy;
  /** The tag-level rule (DLM's snapshots only), made when recycle_bin_days > 0 and the lock is 0. */
  readonly taggedRule: RbinRule;
  /** The Region-level rule (every EBS snapshot in the region), made when recycle_bin_days > 0 and a lock is asked for. */
  readonly lockedRule: RbinRule;

  constructor(scope: Construct, id: string, props: VolumeProtectionProps) {
    super(scope, id);
    const tags = { ...props.tags };
    const snapshots = `${num(props.retainCount)} > 0`;
    const lock = props.recycleBinLockDays ?? 0;
    const count = (condition: string): number => Token.asNumber(`\${${condition} ? 1 : 0}`);

    const partition = new DataAwsPartition(this, 'partition');
    partition.overrideLogicalId('current');

    this.role = new IamRole(this, 'dlm_role', {
      count: count(snapshots),
      namePrefix: 'btrbk-dlm-',
      description: 'Data Lifecycle Manager: snapshots of the btrbk backup data volume',
      assumeRolePolicy: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'dlm.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      }),
      tags: { ...tags, Name: 'btrbk-dlm' },
    });
    this.role.overrideLogicalId('dlm');
    const roleRef = `${this.role.terraformResourceType}.${this.role.friendlyUniqueId}`;

    new IamRolePolicyAttachment(this, 'dlm_policy_attachment', {
      count: count(snapshots),
      role: `\${${roleRef}[0].name}`,
      policyArn: `arn:${partition.partition}:iam::aws:${DLM_MANAGED_POLICY}`,
    }).overrideLogicalId('dlm');

    this.policy = new DlmLifecyclePolicy(this, 'policy', {
      count: count(snapshots),
      description: 'btrbk backup data volume scheduled snapshots',
      executionRoleArn: `\${${roleRef}[0].arn}`,
      state: 'ENABLED',
      policyDetails: {
        policyType: 'EBS_SNAPSHOT_MANAGEMENT',
        resourceTypes: ['VOLUME'],
        targetTags: { [DATA_VOLUME_TAG_KEY]: props.deploymentId },
        schedule: [
          {
            name: 'btrbk-data-volume',
            createRule: { interval: props.intervalHours, intervalUnit: 'HOURS' },
            retainRule: { count: props.retainCount },
            copyTags: true,
            tagsToAdd: { [SNAPSHOT_TAG_KEY]: props.deploymentId },
          },
        ],
      },
      tags: { ...tags, Name: 'btrbk-backup-data-snapshots' },
    });
    this.policy.overrideLogicalId('data_volume');

    const binDays = `${num(props.recycleBinDays)} > 0`;
    const locked = `${num(lock)} > 0`;
    const retentionPeriod = { retentionPeriodValue: props.recycleBinDays, retentionPeriodUnit: 'DAYS' };
    this.taggedRule = new RbinRule(this, 'tagged_rule', {
      count: count(`${binDays} && !(${locked})`),
      description: 'btrbk: deleted DLM snapshots of the backup data volume stay recoverable',
      resourceType: 'EBS_SNAPSHOT',
      resourceTags: [
        { resourceTagKey: SNAPSHOT_TAG_KEY, resourceTagValue: props.deploymentId },
        // (a rule keeps a snapshot with any of its tags: the ones DLM made before the tags were per deployment)
        { resourceTagKey: SNAPSHOT_TAG_KEY, resourceTagValue: LEGACY_SNAPSHOT_TAG_VALUE },
      ],
      retentionPeriod,
      tags: { ...tags, Name: 'btrbk-dlm-snapshots' },
    });
    this.taggedRule.overrideLogicalId('dlm_snapshots');

    this.lockedRule = new RbinRule(this, 'locked_rule', {
      count: count(`${binDays} && ${locked}`),
      description: 'btrbk: every deleted EBS snapshot of this region stays recoverable (Region-level, lockable)',
      resourceType: 'EBS_SNAPSHOT',
      retentionPeriod,
      lockConfiguration: { unlockDelay: { unlockDelayValue: lock, unlockDelayUnit: 'DAYS' } },
      tags: { ...tags, Name: 'btrbk-region-snapshots-locked' },
    });
    this.lockedRule.overrideLogicalId('region_locked');
  }
}
