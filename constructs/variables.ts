// The stack's input variables in one table: per variable its type, default, description and the rules a value must
// follow, each rule written once with its message. Three readers:
//   - the stack (constructs/backup-target-stack.ts) makes its TerraformVariables from it, each rule rendered as a
//     validation block (hclCondition), so the engine refuses a bad value at plan time;
//   - setup's check of terraform.tfvars (scripts/lib/deploy/tfvars.ts validateTfvars) runs the same rules in
//     JavaScript (ruleHolds) before any engine call, and reports the same messages;
//   - the boot-script renderer (user-data/render.ts) takes the host's defaults from it.
// It lives with the stack because the stack may not import the operator library (scripts/lib), while the operator
// library and the renderer may import the stack's modules; it is a leaf: it imports nothing of the project.
//
// A rule is data where it can be (a regex source, a whole-number range, a list of values), so its HCL condition and
// its JavaScript check are derived from the same figures; a 'custom' rule spells both out. Regex sources are written
// so that JavaScript and Terraform's RE2 read them alike (no look-around, no back-references); every rule's two
// forms are run on good and bad samples by __tests__/constructs/variables.test.ts (the engine evaluates the HCL).
import net from 'node:net';

/** A variable's type as the engine spells it. */
export type VariableType = 'string' | 'number' | 'bool' | 'list(string)' | 'map(string)';
/** The JavaScript value of a variable of type T. */
export type ValueOf<T extends VariableType> = T extends 'string'
  ? string
  : T extends 'number'
    ? number
    : T extends 'bool'
      ? boolean
      : T extends 'map(string)'
        ? Record<string, string>
        : string[];

/** One rule a value must follow, with the message both the engine and setup show when it does not. */
export type Rule =
  /** The whole value matches the regex source (`orEmpty`: or is ""). */
  | { readonly kind: 'regex'; readonly source: string; readonly orEmpty?: boolean; readonly message: string }
  /** The whole value does not match the regex source. */
  | { readonly kind: 'notRegex'; readonly source: string; readonly message: string }
  /** A whole number from min to max (`orZero`: or 0, the variable's "off"). */
  | {
      readonly kind: 'whole';
      readonly min: number;
      readonly max: number;
      readonly orZero?: boolean;
      readonly message: string;
    }
  /** One of the listed numbers. */
  | { readonly kind: 'oneOf'; readonly values: readonly number[]; readonly message: string }
  /** A rule spelled twice: `hcl` is the condition on var.NAME, `js` the same test of a value. */
  | {
      readonly kind: 'custom';
      readonly hcl: string;
      readonly js: (value: unknown) => boolean;
      readonly message: string;
    };

export interface VariableDefinition<T extends VariableType = VariableType> {
  readonly type: T;
  /** The default; none: the variable is required. */
  readonly default?: T extends 'list(string)'
    ? readonly string[]
    : T extends 'map(string)'
      ? Readonly<Record<string, string>>
      : ValueOf<T>;
  readonly description: string;
  /** Checked in this order; none for a bool (its type is its rule). */
  readonly rules: readonly Rule[];
}

// ---------------------------------------------------------------------------------------------------------
// The figures the rules are made of

/**
 * The instance families the stack supports, with their EC2 architecture (the image lookup's filter). All are
 * Nitro (the boot script finds the data volume by its NVMe serial, the volume id); t2 is Xen (no NVMe) and is
 * refused with its own message. The one list: the instance_type rule, the cost table and the facts of
 * scripts/lib/core/instance-types.ts read it.
 */
export const INSTANCE_FAMILIES: Readonly<Record<string, 'x86_64' | 'arm64'>> = Object.freeze({
  t3a: 'x86_64',
  t3: 'x86_64',
  t4g: 'arm64',
});
/** The sizes of each family the stack supports, smallest first (each doubles the one before in price). */
export const INSTANCE_SIZES = Object.freeze([
  'nano',
  'micro',
  'small',
  'medium',
  'large',
  'xlarge',
  '2xlarge',
] as const);

/** A well-formed ssh-ed25519 public key line: type, the 68-character key blob, an optional plain comment. */
export const ED25519_KEY_SOURCE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}( [A-Za-z0-9@._+:=,/-]+)*';
/**
 * A device's name: the host's directory backups/NAME (bootstrap.sh's DEVICE_NAME_RE, the same figures): lower case,
 * digits, . _ -, starting with a letter or digit, at most 63; never containing "..", never a reserved name.
 */
export const DEVICE_NAME_SOURCE = '[a-z0-9][a-z0-9._-]{0,62}';
/** Names the host keeps for itself (the tools' scratch area under backups/). */
export const RESERVED_DEVICE_NAMES: readonly string[] = Object.freeze(['selftest']);
/** Is `name` a device name the host accepts (bootstrap.sh check_devices)? */
export const isDeviceName = (name: string): boolean =>
  anchored(DEVICE_NAME_SOURCE).test(name) && !name.includes('..') && !RESERVED_DEVICE_NAMES.includes(name);
/** The key blob of a public key line (its second word), as the host compares keys; the line itself when it has none. */
export const keyBlobOf = (line: string): string => line.split(' ')[1] ?? line;
/** keyBlobOf in HCL, of the expression `e`. */
export const hclKeyBlob = (e: string): string => `try(split(" ", ${e})[1], ${e})`;
/**
 * The room one device takes in the user data, and so about how many devices the stack takes: the boot script
 * leaves about 5,950 of EC2's 16,384 bytes (gzipped; 7,944 base64 characters of the plan's check); a device with a
 * 20-character name and a 20-character key comment takes about 75 of them (the key's 43 random characters do not
 * compress): about 80 devices (about 115 with 12-character names and no comments, about 48 with 63-character names
 * and 40-character comments). Measured with the engine's base64gzip; the plan-time size check is what holds.
 */
export const DEVICE_USER_DATA_BYTES = 75;
export const DEVICES_MAX = 80;
export const REGION_SOURCE = '[a-z]{2}(-gov)?-[a-z]+-[0-9]+';
export const AVAILABILITY_ZONE_SOURCE = '[a-z]{2}(-gov)?-[a-z]+-[0-9]+[a-z]';
export const KEY_PAIR_NAME_SOURCE = '[A-Za-z0-9][A-Za-z0-9._-]{0,254}';
export const INSTANCE_TYPE_SOURCE = `(${Object.keys(INSTANCE_FAMILIES).join('|')})\\.(${INSTANCE_SIZES.join('|')})`;
/** Xen instance types: the boot script's NVMe lookup of the data volume cannot work there. */
export const XEN_INSTANCE_TYPE_SOURCE = 't2\\.[a-z0-9]+';
/** The families whose EC2 architecture is arm64 (Graviton), as a regex source on the whole type. */
export const ARM64_INSTANCE_TYPE_SOURCE = `(${Object.keys(INSTANCE_FAMILIES)
  .filter((f) => INSTANCE_FAMILIES[f] === 'arm64')
  .join('|')})\\..+`;
/** A snapshot id as EC2 prints it. */
export const SNAPSHOT_ID_SOURCE = 'snap-[0-9a-f]{8,17}';
/** An email address for the alarm's SNS subscription (a plain, checkable subset: local@domain.tld). */
export const EMAIL_SOURCE = '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}';
/**
 * The host's retention policy in btrbk's syntax: space-separated terms, each a count (1-4 digits) or `*` and a
 * unit, h d w m y, each unit at most once and in that order, at least one term ("48h 14d 8w 12m", "*d", "7d 4w").
 * RE2 has no look-ahead: the order is spelled out as one alternative per first unit, the later ones optional.
 */
export const RETENTION_UNITS = 'hdwmy';
const retentionTerm = (unit: string): string => `([0-9]{1,4}|[*])${unit}`;
export const RETENTION_SOURCE = `(${[...RETENTION_UNITS]
  .map((first, i) =>
    [retentionTerm(first), ...[...RETENTION_UNITS.slice(i + 1)].map((u) => `( ${retentionTerm(u)})?`)].join(''),
  )
  .join('|')})`;
/** Every backup younger than this is kept: a count (1-4 digits) and a unit h d w m y, or `latest`, or `no`. */
export const RETENTION_MIN_SOURCE = '([0-9]{1,4}[hdwmy]|latest|no)';
/** The hours Data Lifecycle Manager's create_rule accepts as interval (interval_unit HOURS). */
export const SNAPSHOT_INTERVAL_HOURS: readonly number[] = Object.freeze([1, 2, 3, 4, 6, 8, 12, 24]);
/** DLM's retain_rule count limit; 0 is this stack's "no snapshots" (no policy, no role). */
export const SNAPSHOT_RETAIN_MAX = 1000;
/** Recycle Bin retention limit in days (RetentionPeriodValue 1..365); 0 is this stack's "no rule". */
export const RECYCLE_BIN_DAYS_MAX = 365;
/** Recycle Bin unlock delay limits in days (UnlockDelayValue 7..30); 0 is this stack's "unlocked". */
export const RECYCLE_BIN_LOCK_DAYS_MIN = 7;
export const RECYCLE_BIN_LOCK_DAYS_MAX = 30;
/** The backup alarm's period: one hour, so `backup_alarm_hours` is its number of evaluation periods. */
export const ALARM_PERIOD_SECONDS = 3600;
/**
 * CloudWatch's limit on an alarm's evaluation range (PutMetricAlarm): period x evaluation periods at most
 * 604,800 s (7 days) for a period of an hour or more (at most 86,400 s, one day, for shorter periods).
 */
export const ALARM_MAX_RANGE_SECONDS = 604_800;
/** So `backup_alarm_hours` goes from 1 to 168 with hourly periods; 0 is this stack's "no alarm". */
export const BACKUP_ALARM_HOURS_MAX = ALARM_MAX_RANGE_SECONDS / ALARM_PERIOD_SECONDS;
/** gp3 volume size limits in GiB. */
export const GP3_MIN_GIB = 1;
export const GP3_MAX_GIB = 16384;

export const T2_REFUSED_MESSAGE =
  'instance_type must not be a t2 type: t2 is a Xen type with no NVMe, and the boot script finds the data volume by its NVMe serial (the volume id). Use t3a.nano (the default), t3.nano, or t4g.nano (Graviton, arm64, the cheapest).';
/** The one rule across two variables (the stack checks it in a precondition, setup in validateTfvars). */
export const ADMIN_KEY_DIFFERS_MESSAGE =
  'admin_ssh_public_key must differ from ssh_public_key: the backup key reaches the host only through the SSH gate; use a second key for admin login.';

/** The cross-variable rules of the keys (the stack checks them in preconditions, setup in validateTfvars). */
export const BACKUP_KEY_OR_DEVICES_MESSAGE =
  'give ssh_public_key (the one backup key of a single-key deployment), or devices (a key per machine), or both: with both empty no machine could back up. ssh_public_key = "" is allowed only when devices holds at least one device.';
export const DEVICE_KEY_REUSED_MESSAGE =
  "no key in devices may be ssh_public_key or admin_ssh_public_key: the legacy backup key reaches every device's backups and the admin key logs in with a shell; give each device a key of its own (ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws_DEVICE).";

/** Is `value` a map of strings (a map(string) variable's value)? */
export const isStringMap = (value: unknown): value is Record<string, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  Object.values(value).every((v) => typeof v === 'string');

/** Is `cidr` an IPv4 or IPv6 CIDR block (address/prefix), as Terraform's cidrhost() accepts? */
export function isCidr(cidr: unknown): boolean {
  if (typeof cidr !== 'string') return false;
  const m = /^([^/\s]+)\/(\d{1,3})$/.exec(cidr);
  if (!m) return false;
  const prefix = Number(m[2]);
  if (net.isIPv4(m[1])) return prefix <= 32 && !/(^|\.)0\d/.test(m[1]);
  if (net.isIPv6(m[1])) return prefix <= 128;
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// The table

const variable = <T extends VariableType>(definition: VariableDefinition<T>): VariableDefinition<T> =>
  Object.freeze(definition);

/** The stack's variables, in the order the stack declares them. */
export const VARIABLES = Object.freeze({
  ssh_public_key: variable({
    type: 'string',
    description:
      'The backup key: an ssh-ed25519 public key line, installed for the btrbk user behind the SSH gate; it reaches every device\'s backups (the single-key deployment, or the legacy key beside devices). "" (no such key) only when devices holds at least one device',
    rules: [
      {
        kind: 'regex',
        source: ED25519_KEY_SOURCE,
        orEmpty: true,
        message:
          'ssh_public_key must be one ssh-ed25519 public key line: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..." (68 base64 characters) and an optional comment of letters, digits and @._+:=,/- ; no trailing newline (or "" when every machine has its key in devices). Create one with: ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws',
      },
    ],
  }),
  devices: variable({
    type: 'map(string)',
    default: Object.freeze({}),
    description: `A key per device: device name => ssh-ed25519 public key line, such as { "alice-laptop" = "ssh-ed25519 AAAA... alice" }. Each key reaches only backups/NAME on the host; a device removed from the map is revoked (its key refused, its backups kept and frozen). Names: 1-63 of a-z 0-9 . _ -, starting with a letter or digit, no "..", not "selftest"; keys unique. A changed map replaces the instance (volume, address and host key kept). About ${DEVICES_MAX} devices fit in EC2's 16 KB of user data with 20-character names and key comments (each takes about ${DEVICE_USER_DATA_BYTES} bytes gzipped; more with shorter, fewer with longer ones: the plan says when it is too much); {} (default): no device keys, ssh_public_key alone`,
    rules: [
      {
        kind: 'custom',
        hcl: `alltrue([for name in keys(var.devices) : can(regex(${hclRegex(DEVICE_NAME_SOURCE)}, name)) && !can(regex("[.][.]", name)) && !contains(${JSON.stringify(RESERVED_DEVICE_NAMES)}, name)])`,
        js: (value) => isStringMap(value) && Object.keys(value).every(isDeviceName),
        message:
          'devices must have names of 1-63 characters of a-z 0-9 . _ -, starting with a letter or digit, without ".." and not "selftest" (a name is the device\'s directory on the host, backups/NAME), such as "alice-laptop" or "nas.home".',
      },
      {
        kind: 'custom',
        hcl: `alltrue([for key in values(var.devices) : can(regex(${hclRegex(ED25519_KEY_SOURCE)}, key))])`,
        js: (value) => isStringMap(value) && Object.values(value).every((k) => anchored(ED25519_KEY_SOURCE).test(k)),
        message:
          'devices must map each name to one ssh-ed25519 public key line, like ssh_public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..." (68 base64 characters) and an optional comment of letters, digits and @._+:=,/- ; no trailing newline. Create one per device with: ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws_DEVICE',
      },
      {
        kind: 'custom',
        hcl: `length(distinct([for key in values(var.devices) : ${hclKeyBlob('key')}])) == length(var.devices)`,
        js: (value) =>
          isStringMap(value) && new Set(Object.values(value).map(keyBlobOf)).size === Object.keys(value).length,
        message:
          'devices must give each device a key of its own (keys compared without their comments): the host tells devices apart by their keys.',
      },
    ],
  }),
  admin_ssh_public_key: variable({
    type: 'string',
    default: '',
    description:
      'Optional admin key (full shell as the image default user, registered as the EC2 key pair); empty: no admin login',
    rules: [
      {
        kind: 'regex',
        source: ED25519_KEY_SOURCE,
        orEmpty: true,
        message:
          'admin_ssh_public_key must be empty (no admin login) or one ssh-ed25519 public key line, like ssh_public_key; it must not be the backup key.',
      },
    ],
  }),
  aws_region: variable({
    type: 'string',
    default: 'us-west-1',
    description: 'AWS region of the backup host',
    rules: [
      {
        kind: 'regex',
        source: REGION_SOURCE,
        message: 'aws_region must be an AWS region code such as us-west-1 or eu-central-1.',
      },
    ],
  }),
  availability_zone: variable({
    type: 'string',
    default: '',
    description:
      "Availability zone of the data volume when it is created, and so of the host; empty: the first available zone of the region (alphabetically) where EC2 offers instance_type. Once the volume exists its zone is kept: neither a change of the region's zones nor of instance_type moves it, and a zone set here that differs from the volume's stops the plan",
    rules: [
      {
        kind: 'regex',
        source: AVAILABILITY_ZONE_SOURCE,
        orEmpty: true,
        message:
          'availability_zone must be empty (first available zone) or a zone name such as us-west-1a, in aws_region.',
      },
    ],
  }),
  key_pair_name: variable({
    type: 'string',
    default: 'btrbk-backup-key',
    description: 'Name of the EC2 key pair created for admin_ssh_public_key (unused when that is empty)',
    rules: [
      {
        kind: 'regex',
        source: KEY_PAIR_NAME_SOURCE,
        message:
          'key_pair_name must be 1-255 characters: letters, digits, ".", "_" and "-", starting with a letter or digit.',
      },
    ],
  }),
  ebs_volume_size: variable({
    type: 'number',
    default: 100,
    description: 'Size of the data volume in GiB (gp3: 1 to 16384); it can grow later, never shrink',
    rules: [
      {
        kind: 'whole',
        min: GP3_MIN_GIB,
        max: GP3_MAX_GIB,
        message: `ebs_volume_size must be a whole number of GiB from ${GP3_MIN_GIB} to ${GP3_MAX_GIB} (the gp3 limits).`,
      },
    ],
  }),
  allowed_ssh_cidrs: variable({
    type: 'list(string)',
    default: Object.freeze(['0.0.0.0/0']),
    description: 'CIDR blocks (IPv4 or IPv6) allowed to reach SSH; narrow it to your own addresses when you can',
    rules: [
      {
        kind: 'custom',
        hcl: 'length(var.allowed_ssh_cidrs) > 0 && alltrue([for c in var.allowed_ssh_cidrs : can(cidrhost(c, 0))])',
        js: (value) => Array.isArray(value) && value.length > 0 && value.every(isCidr),
        message:
          'allowed_ssh_cidrs must be a non-empty list of CIDR blocks such as ["203.0.113.7/32"] or ["0.0.0.0/0"].',
      },
    ],
  }),
  instance_type: variable({
    type: 'string',
    default: 't3a.nano',
    description:
      'EC2 instance type: a Nitro burstable type, t3a, t3 or t4g (Graviton, arm64: the image follows the type), nano to 2xlarge; CPU credits are standard. t2 is refused (Xen, no NVMe: the boot script finds the data volume by its NVMe serial)',
    rules: [
      { kind: 'notRegex', source: XEN_INSTANCE_TYPE_SOURCE, message: T2_REFUSED_MESSAGE },
      {
        kind: 'regex',
        source: INSTANCE_TYPE_SOURCE,
        message:
          'instance_type must be a Nitro burstable type: t3a, t3 or t4g, nano to 2xlarge, such as t3a.nano, t3.small or t4g.nano (CPU credits are set to standard).',
      },
    ],
  }),
  // A bool needs no rule: the engine refuses anything that does not convert to true or false.
  append_only: variable({
    type: 'bool',
    default: true,
    description:
      'true (default): the backup key can add and read backups but never delete them, and the host deletes old backups itself, by its own clock, following retention and retention_min. false: the backup key may also delete backups (btrbk on your machine prunes the target).',
    rules: [],
  }),
  retention: variable({
    type: 'string',
    default: '48h 14d 8w 12m',
    description:
      'How many backups the host keeps when append_only is true, in btrbk retention syntax: "48h 14d 8w 12m" (default) keeps hourly backups for 48 hours, daily for 14 days, weekly for 8 weeks, monthly for 12 months; "*" instead of a count keeps every backup of that kind forever ("*d": one per day, forever). Units h d w m y, each at most once, in that order.',
    rules: [
      {
        kind: 'regex',
        source: RETENTION_SOURCE,
        message:
          'retention must be btrbk retention terms separated by single spaces: a count (up to 4 digits) or * followed by h, d, w, m or y, each unit at most once and in the order h d w m y, such as "48h 14d 8w 12m", "7d 4w" or "*d".',
      },
    ],
  }),
  retention_min: variable({
    type: 'string',
    default: '1d',
    description:
      'Every backup younger than this is kept whatever retention says: a count and a unit h d w m y ("1d", the default, keeps everything from the last day), or "latest" (only the newest backup is always kept), or "no" (retention alone decides).',
    rules: [
      {
        kind: 'regex',
        source: RETENTION_MIN_SOURCE,
        message:
          'retention_min must be a count (up to 4 digits) followed by h, d, w, m or y (such as "1d"), or "latest", or "no".',
      },
    ],
  }),
  snapshot_interval_hours: variable({
    type: 'number',
    default: 24,
    description: 'Hours between snapshots of the data volume by Data Lifecycle Manager: 1, 2, 3, 4, 6, 8, 12 or 24',
    rules: [
      {
        kind: 'oneOf',
        values: SNAPSHOT_INTERVAL_HOURS,
        message: `snapshot_interval_hours must be one of ${SNAPSHOT_INTERVAL_HOURS.join(', ')}: the intervals in hours Data Lifecycle Manager accepts.`,
      },
    ],
  }),
  snapshot_retain_count: variable({
    type: 'number',
    default: 7,
    description:
      'How many snapshots of the data volume Data Lifecycle Manager keeps (the oldest is deleted when a new one is made); 0: no snapshots, no policy, no role',
    rules: [
      {
        kind: 'whole',
        min: 0,
        max: SNAPSHOT_RETAIN_MAX,
        message: `snapshot_retain_count must be a whole number from 0 (no snapshots) to ${SNAPSHOT_RETAIN_MAX} (Data Lifecycle Manager's limit).`,
      },
    ],
  }),
  recycle_bin_days: variable({
    type: 'number',
    default: 7,
    description:
      'Days a deleted snapshot of the data volume stays recoverable in the Recycle Bin (billed like a snapshot meanwhile); 0: no Recycle Bin rule',
    rules: [
      {
        kind: 'whole',
        min: 0,
        max: RECYCLE_BIN_DAYS_MAX,
        message: `recycle_bin_days must be a whole number of days from 0 (no Recycle Bin rule) to ${RECYCLE_BIN_DAYS_MAX} (the Recycle Bin's limit).`,
      },
    ],
  }),
  recycle_bin_lock_days: variable({
    type: 'number',
    default: 0,
    description:
      'Unlock delay in days of a locked Recycle Bin rule: 0 (default) unlocked; 7 to 30: a Region-level rule (AWS locks no tag-level rule) that keeps EVERY EBS snapshot deleted in the region, lockable so nobody can remove it before the delay has passed. hashicorp/aws 5.100.0 does not send the lock: see docs/RESTORE.md',
    rules: [
      {
        kind: 'whole',
        min: RECYCLE_BIN_LOCK_DAYS_MIN,
        max: RECYCLE_BIN_LOCK_DAYS_MAX,
        orZero: true,
        message: `recycle_bin_lock_days must be 0 (unlocked) or a whole number of days from ${RECYCLE_BIN_LOCK_DAYS_MIN} to ${RECYCLE_BIN_LOCK_DAYS_MAX} (the Recycle Bin's unlock delay limits).`,
      },
    ],
  }),
  restore_snapshot_id: variable({
    type: 'string',
    default: '',
    description:
      'Disaster recovery: a snapshot id (snap-...) the data volume is created from on a FRESH deployment; "" (default): an empty volume. An existing data volume is never replaced for it: the plan stops with a message instead (docs/RESTORE.md)',
    rules: [
      {
        kind: 'regex',
        source: SNAPSHOT_ID_SOURCE,
        orEmpty: true,
        message:
          'restore_snapshot_id must be "" (a new, empty data volume) or a snapshot id such as snap-0123456789abcdef0.',
      },
    ],
  }),
  backup_alarm_hours: variable({
    type: 'number',
    default: 26,
    description: `Hours without a completed backup before the CloudWatch alarms fire: the volume-wide one (no backup from any machine) and one per device (no backup of that device) (26: a day's backup plus 2 hours' slack); 1 to ${BACKUP_ALARM_HOURS_MAX}; 0: no alarm`,
    rules: [
      {
        kind: 'whole',
        min: 0,
        max: BACKUP_ALARM_HOURS_MAX,
        message: `backup_alarm_hours must be 0 (no alarm) or a whole number of hours from 1 to ${BACKUP_ALARM_HOURS_MAX}: CloudWatch evaluates an alarm over at most 7 days (period x evaluation periods <= 604800 seconds; the period here is one hour).`,
      },
    ],
  }),
  alert_email: variable({
    type: 'string',
    default: '',
    description:
      'Email address the backup alarm mails (an SNS subscription: AWS sends a confirmation link that must be clicked); "" (default): no topic, no mail',
    rules: [
      {
        kind: 'regex',
        source: EMAIL_SOURCE,
        orEmpty: true,
        message: 'alert_email must be "" (no mail) or one email address such as you@example.org.',
      },
    ],
  }),
});

export type VariableName = keyof typeof VARIABLES;
/** The stack's variables as values (what setup's check returns, defaults filled in). */
export type VariableValues = { -readonly [K in VariableName]: ValueOf<(typeof VARIABLES)[K]['type']> };

/** The variable that has no default: the backup key is the person's own. */
export const REQUIRED_VARIABLE = 'ssh_public_key';
/** The defaults of the other variables (the engine tests, the docs and the boot script's defaults read them). */
export const VARIABLE_DEFAULTS = Object.freeze(
  Object.fromEntries(
    Object.entries(VARIABLES)
      .filter(([, d]) => d.default !== undefined)
      .map(([name, d]) => [name, d.default]),
  ),
) as Readonly<Omit<{ [K in VariableName]: NonNullable<(typeof VARIABLES)[K]['default']> }, typeof REQUIRED_VARIABLE>>;

// ---------------------------------------------------------------------------------------------------------
// A rule, two ways

/** A regex source as the quoted, anchored argument of HCL's regex(): backslashes and quotes escaped. (A function
 * declaration: the table above uses it.) */
export function hclRegex(source: string): string {
  return `"^${source.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}$"`;
}

/** The rule as an HCL condition on `var.<name>` (without the `${ }` around it). */
export function hclCondition(name: string, rule: Rule): string {
  const v = `var.${name}`;
  switch (rule.kind) {
    case 'regex':
      return `${rule.orEmpty ? `${v} == "" || ` : ''}can(regex(${hclRegex(rule.source)}, ${v}))`;
    case 'notRegex':
      return `!can(regex(${hclRegex(rule.source)}, ${v}))`;
    case 'whole': {
      const range = `${v} >= ${rule.min} && ${v} <= ${rule.max} && floor(${v}) == ${v}`;
      return rule.orZero ? `${v} == 0 || (${range})` : range;
    }
    case 'oneOf':
      return `contains([${rule.values.join(', ')}], ${v})`;
    case 'custom':
      return rule.hcl;
  }
}

/** The regex of a source, anchored, for JavaScript. */
export const anchored = (source: string): RegExp => new RegExp(`^${source}$`);

/** Does `value` follow the rule? (The JavaScript twin of hclCondition, for a value of the variable's type.) */
export function ruleHolds(rule: Rule, value: unknown): boolean {
  switch (rule.kind) {
    case 'regex':
      return (
        typeof value === 'string' && ((rule.orEmpty === true && value === '') || anchored(rule.source).test(value))
      );
    case 'notRegex':
      return typeof value === 'string' && !anchored(rule.source).test(value);
    case 'whole':
      return (
        typeof value === 'number' &&
        ((rule.orZero === true && value === 0) || (Number.isInteger(value) && value >= rule.min && value <= rule.max))
      );
    case 'oneOf':
      return typeof value === 'number' && rule.values.includes(value);
    case 'custom':
      return rule.js(value);
  }
}
