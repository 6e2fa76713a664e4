// Plan safety: read the saved plan as JSON (`show -json state/plan.tfplan`) and refuse a plan that would
// delete or replace the data volume unless the person passed --allow-data-volume-replacement; warn about a
// replaced host or address, about a removed protection (snapshot policy, Recycle Bin rule, alarm), and about any
// change to a locked Recycle Bin rule (AWS refuses it: the apply would fail half-way).
// Plan JSON format: https://developer.hashicorp.com/terraform/internals/json-format (resource_changes[] with
// address, mode, type, change.actions; actions is one of ["no-op"], ["create"], ["read"], ["update"],
// ["delete","create"], ["create","delete"], ["delete"], ["forget"]).
import { OperatorError } from '../core/errors.js';

/** The part of the plan JSON this module reads. */
export interface PlanJson {
  format_version?: string;
  resource_changes?: {
    address: string;
    mode?: string;
    type: string;
    change?: { actions?: string[]; before?: Record<string, unknown> | null };
    action_reason?: string;
  }[];
  output_changes?: Record<string, { actions?: string[] }>;
}

/** One resource change of the plan, managed resources only. */
export interface PlannedChange {
  address: string;
  type: string;
  actions: string[];
  description: string;
  /** The engine's action_reason, e.g. replace_because_cannot_update. */
  reason?: string;
  /** A Recycle Bin rule's lock_state before the change (locked, pending_unlock, unlocked), when the plan has it. */
  lockState?: string;
}

export interface PlanAnalysis {
  formatVersion: string;
  /** The changes that do something (not no-op, not read). */
  changes: PlannedChange[];
  hasChanges: boolean;
  outputChanged: boolean;
  counts: { create: number; update: number; replace: number; delete: number; forget: number };
  /** Every change of the data volume, including no-op. */
  dataVolume: PlannedChange[];
  /** The data volume changes that delete, replace or forget it. */
  dataVolumeAtRisk: PlannedChange[];
  /** Managed resources by type that exist once the plan is applied (what the cost estimate prices). */
  resourceCounts: Record<string, number>;
  warnings: string[];
}

export const ALLOW_FLAG = '--allow-data-volume-replacement';
/** The resource type that holds the backups. */
export const DATA_VOLUME_TYPE = 'aws_ebs_volume';
/** Resource types whose replacement is disruptive but loses no backup data. */
export const DISRUPTIVE_TYPES: Readonly<Record<string, string>> = Object.freeze({
  aws_instance:
    'the backup host is re-created: the boot script runs again on the kept volume, and the host answers with the SSH host key kept there (the laptops keep working)',
  aws_volume_attachment: 'the data volume is detached (the instance is stopped first) and attached again',
  aws_eip: 'the public address changes: aws_connection.env and btrbk.conf must be updated',
});

/** Resource types that protect the backups from outside the host: removing one (a plain delete, not a replacement)
 * loses no backup data, but the person should read what it stops doing before applying. */
export const PROTECTION_TYPES: Readonly<Record<string, string>> = Object.freeze({
  aws_dlm_lifecycle_policy:
    'no new EBS snapshots of the data volume are taken; the snapshots it already made are kept, and nothing deletes them any more (delete them yourself when you no longer want them)',
  aws_rbin_rule:
    'EBS snapshots deleted from now on are gone at once, not kept in the Recycle Bin (what the bin already holds stays until its retention ends)',
  aws_cloudwatch_metric_alarm: 'nobody is told any more when backups stop arriving',
  aws_sns_topic_subscription: 'the missed-backup alarm no longer mails that address',
});

const key = (a: readonly string[]): string => a.join(',');
const DESCRIBE: Record<string, string> = {
  'no-op': 'unchanged',
  read: 'read',
  create: 'create',
  update: 'update in place',
  delete: 'DELETE',
  'delete,create': 'REPLACE (delete, then create)',
  'create,delete': 'REPLACE (create new, then delete old)',
  forget: 'forget (removed from state, kept in AWS)',
};
export const describeActions = (actions: string[]): string => DESCRIBE[key(actions)] ?? actions.join('+');

/** Whether actions delete the existing object: delete, or either replace order. */
export const deletes = (actions: unknown): boolean => Array.isArray(actions) && actions.includes('delete');

/** Summarises a plan JSON object (as parsed from `show -json`; checked here). */
export function analysePlan(input: unknown): PlanAnalysis {
  const plan = input as PlanJson | null;
  if (!plan || typeof plan !== 'object' || !plan.format_version) {
    throw new OperatorError('the saved plan is not plan JSON', {
      cause:
        'show -json printed something without format_version; the engine version may not support the JSON plan format',
      next: "run the engine's `show -json state/plan.tfplan` by hand and check its output; use Terraform >= 1.0 or OpenTofu",
    });
  }
  const major = String(plan.format_version).split('.')[0];
  if (major !== '1') {
    throw new OperatorError(`plan JSON format_version ${plan.format_version} is not supported`, {
      cause: 'this tool reads format 1.x (Terraform >= 1.0, OpenTofu)',
      next: 'use a supported engine version, or check the plan by hand before applying',
    });
  }
  const changes = (plan.resource_changes ?? [])
    .filter((rc) => (rc.mode ?? 'managed') === 'managed')
    .map((rc): PlannedChange => {
      const actions = rc.change?.actions ?? ['no-op'];
      const lockState = rc.type === 'aws_rbin_rule' ? rc.change?.before?.lock_state : undefined;
      return {
        address: rc.address,
        type: rc.type,
        actions,
        description: describeActions(actions),
        reason: rc.action_reason,
        ...(typeof lockState === 'string' ? { lockState } : {}),
      };
    });
  const real = changes.filter((c) => !['no-op', 'read'].includes(key(c.actions)));
  const outputChanged = Object.values(plan.output_changes ?? {}).some((oc) => key(oc.actions ?? ['no-op']) !== 'no-op');
  const counts = { create: 0, update: 0, replace: 0, delete: 0, forget: 0 };
  for (const c of real) {
    const k = key(c.actions);
    if (k === 'create') counts.create += 1;
    else if (k === 'update') counts.update += 1;
    else if (k === 'delete') counts.delete += 1;
    else if (k === 'forget') counts.forget += 1;
    else if (c.actions.includes('delete') && c.actions.includes('create')) counts.replace += 1;
  }
  const dataVolume = changes.filter((c) => c.type === DATA_VOLUME_TYPE);
  const resourceCounts: Record<string, number> = {};
  for (const c of changes) {
    if (['delete', 'forget'].includes(key(c.actions))) continue;
    resourceCounts[c.type] = (resourceCounts[c.type] ?? 0) + 1;
  }
  const dataVolumeAtRisk = dataVolume.filter((c) => deletes(c.actions) || key(c.actions) === 'forget');
  const warnings = [
    ...real
      .filter((c) => c.type in DISRUPTIVE_TYPES && deletes(c.actions))
      .map((c) => `${c.address} will be ${c.description}: ${DISRUPTIVE_TYPES[c.type]}`),
    ...real
      .filter((c) => c.type in PROTECTION_TYPES && ['delete', 'forget'].includes(key(c.actions)))
      .map((c) => `${c.address} will be ${c.description}, a protection removed: ${PROTECTION_TYPES[c.type]}`),
    // AWS refuses to change or delete a locked rule (and one whose unlock delay is running) until it is unlocked:
    // the apply would stop half-way, after the changes before it
    ...real
      .filter((c) => c.lockState && c.lockState !== 'unlocked' && key(c.actions) !== 'forget')
      .map(
        (c) =>
          `${c.address} will be ${c.description}, but it is ${c.lockState === 'locked' ? 'locked' : 'still locked (its unlock delay is running)'}: AWS refuses to change or delete a locked Recycle Bin rule, so the apply would fail half-way. Undo the change in terraform.tfvars (recycle_bin_days, recycle_bin_lock_days), or unlock the rule first (aws rbin unlock-rule --identifier RULE-ID) and apply after its unlock delay`,
      ),
  ];
  return {
    formatVersion: plan.format_version,
    changes: real,
    hasChanges: real.length > 0 || outputChanged,
    outputChanged,
    counts,
    dataVolume,
    dataVolumeAtRisk,
    resourceCounts,
    warnings,
  };
}

/**
 * Throws an OperatorError when the plan deletes or replaces the data volume and the person did not allow it.
 * Returns the analysis otherwise (with a warning added when the replacement was allowed).
 */
export function assertPlanSafe(
  plan: unknown,
  { allowDataVolumeReplacement = false }: { allowDataVolumeReplacement?: boolean } = {},
): PlanAnalysis {
  const a = analysePlan(plan);
  if (!a.dataVolumeAtRisk.length) return a;
  const list = a.dataVolumeAtRisk
    .map((c) => `${c.address}: ${c.description}${c.reason ? ` (${c.reason})` : ''}`)
    .join('\n');
  if (!allowDataVolumeReplacement) {
    throw new OperatorError(
      'the plan would delete or replace the data volume that holds your backups; nothing was applied',
      {
        details: list,
        cause:
          "a change to the volume's encryption or type forces a new volume (its zone is pinned once it exists), or it was removed from the stack (the stack's prevent_destroy normally makes the engine refuse such a plan; this is the second guard)",
        next: `undo the change (terraform.tfvars, or the stack's code) and re-run setup; to really replace it, copy the backups away first and re-run with ${ALLOW_FLAG}`,
      },
    );
  }
  return {
    ...a,
    warnings: [
      ...a.warnings,
      `data volume replacement ALLOWED by ${ALLOW_FLAG}: ${list.replace(/\n/g, '; ')}; its backups will be lost`,
    ],
  };
}
