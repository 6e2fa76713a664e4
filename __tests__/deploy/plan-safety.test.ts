// Plan safety on plan JSON shaped like `terraform show -json state/plan.tfplan` (Terraform 1.11 / OpenTofu 1.x,
// format_version 1.2) for this stack's resources. A real plan needs AWS credentials (the provider reads the AMI
// and the zones), so the fixtures are written by hand after the JSON output format documentation.
import { ALLOW_FLAG, analysePlan, assertPlanSafe } from '../../scripts/lib/deploy/plan-safety.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';

type Actions = string[];
const PROVIDER = 'registry.terraform.io/hashicorp/aws';

function resourceChange(type: string, name: string, actions: Actions, extra: Record<string, unknown> = {}) {
  const before =
    actions[0] === 'create' && actions.length === 1
      ? null
      : { id: `${type}-id`, tags: { Project: 'btrbk-backup-target' } };
  const after =
    actions.includes('delete') && actions.length === 1 ? null : { tags: { Project: 'btrbk-backup-target' } };
  return {
    address: `${type}.${name}`,
    mode: 'managed',
    type,
    name,
    provider_name: PROVIDER,
    change: {
      actions,
      before,
      after,
      after_unknown: after ? { id: true } : {},
      before_sensitive: before ? {} : false,
      after_sensitive: after ? {} : false,
    },
    ...extra,
  };
}

/** A plan of the whole stack with the given actions per resource (default no-op). */
function plan(actions: Partial<Record<string, Actions>> = {}, outputs: Record<string, Actions> = {}) {
  const resources: Array<[string, string]> = [
    ['aws_ebs_volume', 'backup_data'],
    ['aws_eip', 'backup_host'],
    ['aws_eip_association', 'backup_host'],
    ['aws_instance', 'backup_host'],
    ['aws_security_group', 'backup_host'],
    ['aws_volume_attachment', 'backup_data'],
  ];
  return {
    format_version: '1.2',
    terraform_version: '1.11.4',
    planned_values: { root_module: {} },
    resource_changes: [
      {
        address: 'data.aws_ami.ubuntu',
        mode: 'data',
        type: 'aws_ami',
        name: 'ubuntu',
        provider_name: PROVIDER,
        change: { actions: ['read'], before: null, after: {}, after_unknown: {} },
        action_reason: 'read_because_dependency_pending',
      },
      ...resources.map(([type, name]) => resourceChange(type, name, actions[`${type}.${name}`] ?? ['no-op'])),
      // resources beyond the base set, named by the test
      ...Object.keys(actions)
        .filter((a) => !resources.some(([type, name]) => `${type}.${name}` === a))
        .map((a) => resourceChange(a.split('.')[0], a.split('.')[1], actions[a]!)),
    ],
    output_changes: Object.fromEntries(
      ['instance_id', 'public_ip', 'volume_id'].map((o) => [
        o,
        { actions: outputs[o] ?? ['no-op'], before: 'x', after: 'x', after_unknown: false },
      ]),
    ),
    prior_state: { format_version: '1.0', terraform_version: '1.11.4', values: { root_module: {} } },
    configuration: { provider_config: { aws: { name: 'aws', full_name: PROVIDER } }, root_module: {} },
    relevant_attributes: [],
    timestamp: '2026-11-23T22:00:00Z',
    applyable: true,
    complete: true,
    errored: false,
  };
}

describe('analysePlan', () => {
  test('a first deploy: everything created, the data volume safe', () => {
    const all: Partial<Record<string, Actions>> = {};
    for (const a of [
      'aws_ebs_volume.backup_data',
      'aws_eip.backup_host',
      'aws_eip_association.backup_host',
      'aws_instance.backup_host',
      'aws_security_group.backup_host',
      'aws_volume_attachment.backup_data',
    ])
      all[a] = ['create'];
    const a = analysePlan(plan(all, { instance_id: ['create'] }));
    expect(a.hasChanges).toBe(true);
    expect(a.counts).toMatchObject({ create: 6, update: 0, replace: 0, delete: 0 });
    expect(a.dataVolume).toEqual([
      expect.objectContaining({ address: 'aws_ebs_volume.backup_data', description: 'create' }),
    ]);
    expect(a.dataVolumeAtRisk).toEqual([]);
    expect(a.warnings).toEqual([]);
  });

  test('no changes (a re-run): nothing to apply; data sources being read do not count', () => {
    const a = analysePlan(plan());
    expect(a.hasChanges).toBe(false);
    expect(a.changes).toEqual([]);
  });

  test('resourceCounts: the managed resources that exist after the plan, unchanged ones included, deleted ones not (what the cost estimate prices)', () => {
    expect(analysePlan(plan()).resourceCounts).toEqual({
      aws_ebs_volume: 1,
      aws_eip: 1,
      aws_eip_association: 1,
      aws_instance: 1,
      aws_security_group: 1,
      aws_volume_attachment: 1,
    });
    const a = analysePlan(
      plan({ 'aws_eip.backup_host': ['delete'], 'aws_instance.backup_host': ['delete', 'create'] }),
    );
    expect(a.resourceCounts.aws_eip).toBeUndefined();
    expect(a.resourceCounts.aws_instance).toBe(1);
    expect(a.resourceCounts).not.toHaveProperty('aws_ami');
  });

  test('only output changes still need an apply (to record them)', () => {
    const a = analysePlan(plan({}, { public_ip: ['update'] }));
    expect(a.hasChanges).toBe(true);
    expect(a.outputChanged).toBe(true);
  });

  test('an instance replacement warns but is not data loss', () => {
    const a = assertPlanSafe(
      plan({
        'aws_instance.backup_host': ['delete', 'create'],
        'aws_volume_attachment.backup_data': ['delete', 'create'],
      }),
    );
    expect(a.counts.replace).toBe(2);
    expect(a.dataVolumeAtRisk).toEqual([]);
    expect(a.warnings).toHaveLength(2);
    expect(a.warnings[0]).toMatch(
      /aws_instance.backup_host will be REPLACE \(delete, then create\): the backup host is re-created/,
    );
  });

  test('removing a protection (snapshot policy, Recycle Bin rule, alarm, its mail) warns with what it stops doing; replacing one does not', () => {
    const a = assertPlanSafe(
      plan({
        'aws_dlm_lifecycle_policy.snapshots': ['delete'],
        'aws_rbin_rule.snapshots': ['delete'],
        'aws_cloudwatch_metric_alarm.backups_stopped': ['delete'],
        'aws_sns_topic_subscription.alert_email': ['forget'],
        'aws_iam_role.dlm': ['delete'],
      }),
    );
    expect(a.dataVolumeAtRisk).toEqual([]);
    expect(a.warnings).toEqual([
      expect.stringMatching(
        /^aws_dlm_lifecycle_policy\.snapshots will be DELETE, a protection removed: no new EBS snapshots .*delete them yourself/,
      ),
      expect.stringMatching(
        /^aws_rbin_rule\.snapshots will be DELETE, a protection removed: .*gone at once, not kept in the Recycle Bin/,
      ),
      expect.stringMatching(
        /^aws_cloudwatch_metric_alarm\.backups_stopped will be DELETE, a protection removed: nobody is told/,
      ),
      expect.stringMatching(/^aws_sns_topic_subscription\.alert_email will be forget .*no longer mails/),
    ]);
    expect(
      assertPlanSafe(
        plan({ 'aws_rbin_rule.snapshots': ['create', 'delete'], 'aws_dlm_lifecycle_policy.snapshots': ['update'] }),
      ).warnings,
    ).toEqual([]);
  });

  test('any change to a locked Recycle Bin rule warns that AWS refuses it and the apply would fail half-way; an unlocked one does not', () => {
    const withLock = (lock: string, actions: Actions) => {
      const p = plan();
      const rc = resourceChange('aws_rbin_rule', 'region_locked', actions) as ReturnType<typeof resourceChange> & {
        index?: number;
      };
      (rc.change.before as Record<string, unknown>).lock_state = lock;
      return {
        ...p,
        resource_changes: [...p.resource_changes, { ...rc, address: 'aws_rbin_rule.region_locked[0]', index: 0 }],
      };
    };
    for (const actions of [['update'], ['delete'], ['delete', 'create']]) {
      const w = assertPlanSafe(withLock('locked', actions)).warnings;
      expect(w).toContainEqual(
        expect.stringMatching(
          /^aws_rbin_rule\.region_locked\[0\] will be .*, but it is locked: AWS refuses to change or delete a locked Recycle Bin rule, so the apply would fail half-way\. Undo the change .*aws rbin unlock-rule/,
        ),
      );
    }
    expect(assertPlanSafe(withLock('pending_unlock', ['update'])).warnings).toContainEqual(
      expect.stringMatching(/still locked \(its unlock delay is running\)/),
    );
    expect(assertPlanSafe(withLock('unlocked', ['update'])).warnings).toEqual([]);
    expect(assertPlanSafe(withLock('locked', ['no-op'])).warnings).toEqual([]);
  });

  test('refuses non-plan JSON and unknown major formats', () => {
    expect(() => analysePlan({ resource_changes: [] })).toThrow(/not plan JSON/);
    expect(() => analysePlan({ ...plan(), format_version: '2.0' })).toThrow(/format_version 2.0 is not supported/);
  });
});

describe('assertPlanSafe: the data volume', () => {
  test.each([
    ['delete', ['delete']],
    ['replace (delete, then create)', ['delete', 'create']],
    ['replace (create-before-destroy)', ['create', 'delete']],
    ['forget (removed from state)', ['forget']],
  ])('%s stops the run with an OperatorError naming the volume', (_name, actions) => {
    const p = plan({ 'aws_ebs_volume.backup_data': actions });
    (p.resource_changes[1] as Record<string, unknown>).action_reason = 'replace_because_cannot_update';
    let err: OperatorError | undefined;
    try {
      assertPlanSafe(p);
    } catch (e) {
      err = e as OperatorError;
    }
    expect(err).toBeInstanceOf(OperatorError);
    expect(err?.what).toMatch(/would delete or replace the data volume.*nothing was applied/);
    expect(err?.details).toContain('aws_ebs_volume.backup_data');
    expect(err?.next).toContain(ALLOW_FLAG);
  });

  test(`${ALLOW_FLAG} lets it through with a loud warning`, () => {
    const a = assertPlanSafe(plan({ 'aws_ebs_volume.backup_data': ['delete', 'create'] }), {
      allowDataVolumeReplacement: true,
    });
    expect(a.dataVolumeAtRisk).toHaveLength(1);
    expect(a.warnings.at(-1)).toMatch(/ALLOWED by --allow-data-volume-replacement.*backups will be lost/);
  });

  test('an in-place update of the volume (e.g. growing it) is allowed', () => {
    const a = assertPlanSafe(plan({ 'aws_ebs_volume.backup_data': ['update'] }));
    expect(a.counts.update).toBe(1);
    expect(a.dataVolumeAtRisk).toEqual([]);
  });

  test('a volume under another address (a module) is still recognised by its type', () => {
    const p = plan();
    p.resource_changes.push({
      ...resourceChange('aws_ebs_volume', 'backup_data', ['delete']),
      address: 'module.target.aws_ebs_volume.backup_data',
    } as never);
    expect(() => assertPlanSafe(p)).toThrow(/data volume/);
  });
});
