// setup validates terraform.tfvars before any engine call with the same rules as the stack's variable validation
// blocks. This test keeps the two in step: it synthesizes the stack and finds setup's regex sources, limits and
// defaults in the synthesized variables.
import { Testing } from 'cdktf';
import { BackupTargetStack, STACK_NAME, VARIABLE_DEFAULTS } from '../../constructs/backup-target-stack.js';
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
  VARIABLES,
  XEN_INSTANCE_TYPE_SOURCE,
} from '../../scripts/lib/deploy/tfvars.js';

type Variable = { type?: string; default?: unknown; validation?: { condition: string; error_message: string }[] };
const synthesized = JSON.parse(Testing.synth(new BackupTargetStack(Testing.app(), STACK_NAME))) as {
  variable: Record<string, Variable>;
  locals: Record<string, string>;
};
const synthVariables = (): Record<string, Variable> => synthesized.variable;

// HCL string escaping: a backslash in the regex is written twice inside the quoted regex() argument.
const inHcl = (source: string) => `regex("^${source.replace(/\\/g, '\\\\')}$"`;

describe('tfvars rules match the stack (synthesized)', () => {
  const vars = synthVariables();
  const conditions = (name: string) => (vars[name]?.validation ?? []).map((v) => v.condition).join('\n');

  test("setup knows exactly the stack's variables", () => {
    expect(Object.keys(VARIABLES).sort()).toEqual(Object.keys(vars).sort());
  });

  test.each([
    ['ssh_public_key', ED25519_KEY_SOURCE],
    ['admin_ssh_public_key', ED25519_KEY_SOURCE],
    ['aws_region', REGION_SOURCE],
    ['availability_zone', AVAILABILITY_ZONE_SOURCE],
    ['key_pair_name', KEY_PAIR_NAME_SOURCE],
    ['instance_type', INSTANCE_TYPE_SOURCE],
    ['retention', RETENTION_SOURCE],
    ['retention_min', RETENTION_MIN_SOURCE],
    ['instance_type', XEN_INSTANCE_TYPE_SOURCE],
    ['restore_snapshot_id', SNAPSHOT_ID_SOURCE],
    ['alert_email', EMAIL_SOURCE],
  ])('%s is checked with the same regex', (name, source) => {
    expect(conditions(name)).toContain(inHcl(source));
  });

  test('the gp3 size limits are the same', () => {
    expect(conditions('ebs_volume_size')).toContain(`>= ${GP3_MIN_GIB}`);
    expect(conditions('ebs_volume_size')).toContain(`<= ${GP3_MAX_GIB}`);
  });

  test('t2 is refused with the same message, and the image architecture uses the same arm64 rule', () => {
    expect(vars.instance_type.validation?.map((v) => v.error_message)).toContain(T2_REFUSED_MESSAGE);
    expect(synthesized.locals.ami_architecture).toContain(inHcl(ARM64_INSTANCE_TYPE_SOURCE));
  });

  test('the snapshot, recycle-bin and alarm limits are the same', () => {
    expect(conditions('snapshot_interval_hours')).toContain(
      `contains([${SNAPSHOT_INTERVAL_HOURS.join(', ')}], var.snapshot_interval_hours)`,
    );
    expect(conditions('snapshot_retain_count')).toContain(
      `var.snapshot_retain_count >= 0 && var.snapshot_retain_count <= ${SNAPSHOT_RETAIN_MAX}`,
    );
    expect(conditions('recycle_bin_days')).toContain(
      `var.recycle_bin_days >= 0 && var.recycle_bin_days <= ${RECYCLE_BIN_DAYS_MAX}`,
    );
    expect(conditions('recycle_bin_lock_days')).toContain(
      `var.recycle_bin_lock_days >= ${RECYCLE_BIN_LOCK_DAYS_MIN} && var.recycle_bin_lock_days <= ${RECYCLE_BIN_LOCK_DAYS_MAX}`,
    );
    expect(conditions('backup_alarm_hours')).toContain(
      `var.backup_alarm_hours >= 0 && var.backup_alarm_hours <= ${BACKUP_ALARM_HOURS_MAX}`,
    );
    expect(BACKUP_ALARM_HOURS_MAX).toBe(168);
  });

  test('the types are the same', () => {
    const engineType = { string: 'string', number: 'number', boolean: 'bool', list: 'list(string)' } as const;
    for (const [name, spec] of Object.entries(VARIABLES))
      expect([name, engineType[spec.type]]).toEqual([name, vars[name]?.type]);
  });

  test('defaults are the same', () => {
    for (const [name, spec] of Object.entries(VARIABLES)) {
      const stackDefault = (VARIABLE_DEFAULTS as Record<string, unknown>)[name];
      expect([name, spec.default]).toEqual([name, stackDefault]);
    }
  });
});
