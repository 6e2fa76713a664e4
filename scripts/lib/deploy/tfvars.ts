// terraform.tfvars: a strict parser for the subset this stack needs (key = "string" | number | bool | ["list"]),
// terraform.tfvars.json as an alternative, and the validation setup runs before any engine call.
//
// The rules mirror the stack's variable validation blocks (constructs/backup-target-stack.ts); the regex
// sources below are written so that both JavaScript and Terraform's RE2 accept them, and
// __tests__/constructs/tfvars-rules.test.ts synthesizes the stack and checks its validation conditions carry them.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import { INSTANCE_FAMILIES, INSTANCE_SIZES } from '../core/instance-types.js';

/** A value of the tfvars subset: a string, number, bool, or a list of those. */
export type TfvarValue = string | number | boolean | Array<string | number | boolean>;

/** A problem with one variable (an error, or a warning). */
export interface TfvarsIssue {
  key: string;
  message: string;
}

/** The stack's variables, as validateTfvars returns them (defaults filled in). */
export interface TfvarsValues {
  ssh_public_key: string;
  admin_ssh_public_key: string;
  aws_region: string;
  availability_zone: string;
  key_pair_name: string;
  ebs_volume_size: number;
  allowed_ssh_cidrs: string[];
  instance_type: string;
  append_only: boolean;
  retention: string;
  retention_min: string;
  snapshot_interval_hours: number;
  snapshot_retain_count: number;
  recycle_bin_days: number;
  recycle_bin_lock_days: number;
  restore_snapshot_id: string;
  backup_alarm_hours: number;
  alert_email: string;
}

export interface TfvarsResult {
  ok: boolean;
  /** The variables of the right type (given, else the default); a complete TfvarsValues when ok. */
  values: Partial<TfvarsValues>;
  errors: TfvarsIssue[];
  warnings: TfvarsIssue[];
  /** Names in the file that are not variables of the stack (each is also an error). */
  unknown: string[];
}

/** A variable's type in tfvars terms (list: a list of strings) and its default (undefined: required). */
export interface VariableSpec {
  type: 'string' | 'number' | 'boolean' | 'list';
  default: TfvarValue | undefined;
}

/** A well-formed ssh-ed25519 public key line: type, the 68-character key blob, an optional plain comment. */
export const ED25519_KEY_SOURCE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}( [A-Za-z0-9@._+:=,/-]+)*';
export const REGION_SOURCE = '[a-z]{2}(-gov)?-[a-z]+-[0-9]+';
export const AVAILABILITY_ZONE_SOURCE = '[a-z]{2}(-gov)?-[a-z]+-[0-9]+[a-z]';
export const KEY_PAIR_NAME_SOURCE = '[A-Za-z0-9][A-Za-z0-9._-]{0,254}';
// the instance families and sizes the stack supports: one list, in core/instance-types.ts (with their facts)
export { INSTANCE_FAMILIES, INSTANCE_SIZES };
export const INSTANCE_TYPE_SOURCE = `(${Object.keys(INSTANCE_FAMILIES).join('|')})\\.(${INSTANCE_SIZES.join('|')})`;
/** Xen instance types: the boot script's NVMe lookup of the data volume cannot work there. */
export const XEN_INSTANCE_TYPE_SOURCE = 't2\\.[a-z0-9]+';
/** The families whose EC2 architecture is arm64 (Graviton), as a regex source on the whole type. */
export const ARM64_INSTANCE_TYPE_SOURCE = `(${Object.keys(INSTANCE_FAMILIES)
  .filter((f) => INSTANCE_FAMILIES[f] === 'arm64')
  .join('|')})\\..+`;
export const T2_REFUSED_MESSAGE =
  'instance_type must not be a t2 type: t2 is a Xen type with no NVMe, and the boot script finds the data volume by its NVMe serial (the volume id). Use t3a.nano (the default), t3.nano, or t4g.nano (Graviton, arm64, the cheapest).';
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

const anchored = (source: string): RegExp => new RegExp(`^${source}$`);
export const ED25519_KEY_RE = anchored(ED25519_KEY_SOURCE);
export const REGION_RE = anchored(REGION_SOURCE);
export const AVAILABILITY_ZONE_RE = anchored(AVAILABILITY_ZONE_SOURCE);
export const KEY_PAIR_NAME_RE = anchored(KEY_PAIR_NAME_SOURCE);
export const INSTANCE_TYPE_RE = anchored(INSTANCE_TYPE_SOURCE);
export const XEN_INSTANCE_TYPE_RE = anchored(XEN_INSTANCE_TYPE_SOURCE);
export const ARM64_INSTANCE_TYPE_RE = anchored(ARM64_INSTANCE_TYPE_SOURCE);
export const SNAPSHOT_ID_RE = anchored(SNAPSHOT_ID_SOURCE);
export const EMAIL_RE = anchored(EMAIL_SOURCE);

/** The EC2 architecture of an instance type the stack supports (the same rule as the stack's image lookup). */
export const instanceArchitecture = (type: string): 'x86_64' | 'arm64' =>
  ARM64_INSTANCE_TYPE_RE.test(type) ? 'arm64' : 'x86_64';
export const RETENTION_RE = anchored(RETENTION_SOURCE);
export const RETENTION_MIN_RE = anchored(RETENTION_MIN_SOURCE);

/** The stack's variables: type, default (undefined: required). Keep in step with VARIABLE_DEFAULTS. */
export const VARIABLES: Readonly<Record<keyof TfvarsValues, Readonly<VariableSpec>>> = Object.freeze({
  ssh_public_key: { type: 'string', default: undefined },
  admin_ssh_public_key: { type: 'string', default: '' },
  aws_region: { type: 'string', default: 'us-west-1' },
  availability_zone: { type: 'string', default: '' },
  key_pair_name: { type: 'string', default: 'btrbk-backup-key' },
  ebs_volume_size: { type: 'number', default: 100 },
  allowed_ssh_cidrs: { type: 'list', default: ['0.0.0.0/0'] },
  instance_type: { type: 'string', default: 't3a.nano' },
  append_only: { type: 'boolean', default: true },
  retention: { type: 'string', default: '48h 14d 8w 12m' },
  retention_min: { type: 'string', default: '1d' },
  snapshot_interval_hours: { type: 'number', default: 24 },
  snapshot_retain_count: { type: 'number', default: 7 },
  recycle_bin_days: { type: 'number', default: 7 },
  recycle_bin_lock_days: { type: 'number', default: 0 },
  restore_snapshot_id: { type: 'string', default: '' },
  backup_alarm_hours: { type: 'number', default: 26 },
  alert_email: { type: 'string', default: '' },
});

export const KEYGEN_COMMAND = 'ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws -C btrbk-backup';
export const DEFAULT_TFVARS = 'terraform.tfvars';

// ---------------------------------------------------------------------------------------------------------
// Parsing

class TfvarsSyntaxError extends OperatorError {}

/**
 * Parses the HCL subset a tfvars file for this stack needs: `key = value` per line, where value is a
 * double-quoted string (escapes \" \\ \n \t \r), a number, true/false, or a list of those in [ ] that may span
 * lines (trailing comma allowed). Comments: #, // and /* *\/. Anything else (heredocs, maps, expressions,
 * duplicate keys) is an error naming the line, never a guess.
 */
export function parseTfvars(text: string, source: string = DEFAULT_TFVARS): Record<string, TfvarValue> {
  let i = 0;
  let line = 1;
  const out: Record<string, TfvarValue> = {};
  const fail: (msg: string, atLine?: number) => never = (msg, atLine = line) => {
    throw new TfvarsSyntaxError(`${source}:${atLine}: ${msg}`, {
      cause: 'this tool reads a strict subset of HCL: key = "string" | number | true/false | ["list", "of", "strings"]',
      next: `fix that line (see terraform.tfvars.example), or write ${source}.json instead`,
    });
  };
  const skipSpace = (newlines: boolean): void => {
    for (;;) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\r') i += 1;
      else if (c === '\n' && newlines) {
        i += 1;
        line += 1;
      } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
        while (i < text.length && text[i] !== '\n') i += 1;
      } else if (c === '/' && text[i + 1] === '*') {
        const end = text.indexOf('*/', i + 2);
        if (end < 0) fail('unterminated /* comment');
        for (let j = i; j < end; j += 1) if (text[j] === '\n') line += 1;
        i = end + 2;
      } else return;
    }
  };
  const parseString = (): string => {
    const start = line;
    i += 1; // opening quote
    let s = '';
    for (;;) {
      if (i >= text.length || text[i] === '\n') fail('unterminated string', start);
      const c = text[i];
      if (c === '"') {
        i += 1;
        return s;
      }
      if (c === '$' && text[i + 1] === '{') fail('interpolation ${...} is not allowed in tfvars here');
      if (c === '%' && text[i + 1] === '{') fail('template directive %{...} is not allowed in tfvars here');
      if (c === '\\') {
        const e = text[i + 1];
        const map: Record<string, string> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r' };
        if (!(e in map)) fail(`unsupported escape \\${e ?? ''}`);
        s += map[e];
        i += 2;
      } else {
        s += c;
        i += 1;
      }
    }
  };
  const parseScalar = (): string | number | boolean => {
    const c = text[i];
    if (c === '"') return parseString();
    const m = /^(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false)(?![A-Za-z0-9_.])/.exec(text.slice(i));
    if (!m) {
      if (text.startsWith('<<', i))
        fail('heredoc strings are not supported; put the value on one line in double quotes');
      if (c === '{') fail('maps/objects are not used by this stack');
      fail(
        `expected a value ("string", number, true/false or [list]) but found ${JSON.stringify(text.slice(i, i + 20))}`,
      );
    }
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    return Number(m[0]);
  };
  const parseValue = (): TfvarValue => {
    if (text[i] !== '[') return parseScalar();
    i += 1;
    const list: Array<string | number | boolean> = [];
    for (;;) {
      skipSpace(true);
      if (text[i] === ']') {
        i += 1;
        return list;
      }
      if (i >= text.length) fail('unterminated list');
      if (text[i] === '[') fail('nested lists are not used by this stack');
      list.push(parseScalar());
      skipSpace(true);
      if (text[i] === ',') {
        i += 1;
        continue;
      }
      if (text[i] === ']') {
        i += 1;
        return list;
      }
      fail(`expected , or ] in list but found ${JSON.stringify(text.slice(i, i + 20))}`);
    }
  };

  for (;;) {
    skipSpace(true);
    if (i >= text.length) return out;
    const keyLine = line;
    const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
    if (!m) fail(`expected a variable name but found ${JSON.stringify(text.slice(i, i + 20))}`);
    const key = m[0];
    i += key.length;
    skipSpace(false);
    if (text[i] !== '=') fail(`expected = after ${key}`);
    i += 1;
    skipSpace(false);
    if (Object.prototype.hasOwnProperty.call(out, key)) fail(`${key} is set twice`, keyLine);
    out[key] = parseValue();
    skipSpace(false);
    if (i < text.length && text[i] !== '\n')
      fail(`unexpected text after the value of ${key}: ${JSON.stringify(text.slice(i, i + 20))}`);
  }
}

/** Parses terraform.tfvars.json: a flat object of the same value kinds. */
export function parseTfvarsJson(text: string, source = `${DEFAULT_TFVARS}.json`): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new OperatorError(`${source} is not valid JSON`, {
      cause: (err as Error).message,
      next: `fix the JSON in ${source}`,
    });
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new OperatorError(`${source} must hold one JSON object of variable = value`, {
      next: 'see terraform.tfvars.example for the variables',
    });
  }
  return data as Record<string, unknown>;
}

/** Finds and reads the tfvars file: the given path, else terraform.tfvars, else terraform.tfvars.json in `dir`. */
export function loadTfvars(
  file?: string,
  dir: string = process.cwd(),
): { file: string; vars: Record<string, unknown> } {
  const candidates = file
    ? [path.resolve(dir, file)]
    : [path.join(dir, DEFAULT_TFVARS), path.join(dir, `${DEFAULT_TFVARS}.json`)];
  const found = candidates.find((f) => fs.existsSync(f));
  if (!found) {
    throw new OperatorError(`no ${file ?? DEFAULT_TFVARS} found in ${dir}`, {
      cause: "setup reads the stack's inputs (your backup public key, region, volume size) from it",
      next: `cp terraform.tfvars.example terraform.tfvars, then set ssh_public_key; no key yet? ${KEYGEN_COMMAND}`,
    });
  }
  const text = fs.readFileSync(found, 'utf8');
  const vars: Record<string, unknown> = found.endsWith('.json')
    ? parseTfvarsJson(text, found)
    : parseTfvars(text, path.basename(found));
  return { file: found, vars };
}

// ---------------------------------------------------------------------------------------------------------
// Validation

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

/**
 * Checks the decoded key blob too: type string "ssh-ed25519" and a 32-byte key (the regex alone admits a blob
 * whose last characters are not a valid encoding, which ssh would reject later, on the host).
 */
export function isEd25519KeyLine(line: unknown): boolean {
  if (typeof line !== 'string' || !ED25519_KEY_RE.test(line)) return false;
  const blob = Buffer.from(line.split(' ')[1], 'base64');
  if (blob.length !== 51) return false;
  return (
    blob.readUInt32BE(0) === 11 && blob.subarray(4, 15).toString() === 'ssh-ed25519' && blob.readUInt32BE(15) === 32
  );
}

const typeOk = (kind: VariableSpec['type'], v: unknown): boolean =>
  kind === 'list' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : typeof v === kind;

/** Validates parsed tfvars against the stack's rules. */
export function validateTfvars(vars: Record<string, unknown>): TfvarsResult {
  const errors: TfvarsIssue[] = [];
  const warnings: TfvarsIssue[] = [];
  const err = (key: string, message: string): void => {
    errors.push({ key, message });
  };
  const warn = (key: string, message: string): void => {
    warnings.push({ key, message });
  };
  const unknown = Object.keys(vars).filter((k) => !(k in VARIABLES));
  for (const k of unknown)
    err(k, `unknown variable ${k}; the stack's variables are: ${Object.keys(VARIABLES).join(', ')}`);

  const values: Partial<TfvarsValues> = {};
  for (const [key, spec] of Object.entries(VARIABLES) as [keyof TfvarsValues, VariableSpec][]) {
    const given = Object.prototype.hasOwnProperty.call(vars, key);
    if (!given && spec.default === undefined) {
      err(key, `${key} is required`);
      continue;
    }
    const v = given ? vars[key] : spec.default;
    if (!typeOk(spec.type, v)) {
      const kind =
        ({ list: 'a list of strings', boolean: 'true or false (no quotes)' } as Record<string, string>)[spec.type] ??
        `a ${spec.type}`;
      err(key, `${key} must be ${kind}, not ${JSON.stringify(v)}`);
      continue;
    }
    (values as Record<string, unknown>)[key] = v;
  }

  const keyHint = `make one with: ${KEYGEN_COMMAND}  and paste ~/.ssh/btrbk_aws.pub as one line`;
  if (typeof values.ssh_public_key === 'string') {
    const k = values.ssh_public_key;
    if (/^-----BEGIN/.test(k) || /PRIVATE KEY/.test(k))
      err(
        'ssh_public_key',
        "ssh_public_key holds a PRIVATE key: use the .pub file's line, and treat this private key as exposed",
      );
    else if (!isEd25519KeyLine(k)) {
      const type = k.split(' ')[0];
      err(
        'ssh_public_key',
        type && type !== 'ssh-ed25519' && /^(ssh-|ecdsa-|sk-)/.test(type)
          ? `ssh_public_key is a ${type} key; the backup key must be ssh-ed25519 (${keyHint})`
          : `ssh_public_key is not a well-formed ssh-ed25519 public key line ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI..." plus an optional comment of letters, digits and @._+:=,/-; no newline) (${keyHint})`,
      );
    }
  }
  if (typeof values.admin_ssh_public_key === 'string' && values.admin_ssh_public_key !== '') {
    if (!isEd25519KeyLine(values.admin_ssh_public_key))
      err(
        'admin_ssh_public_key',
        'admin_ssh_public_key must be empty (no admin login) or one ssh-ed25519 public key line',
      );
    else if (values.admin_ssh_public_key === values.ssh_public_key)
      err(
        'admin_ssh_public_key',
        'admin_ssh_public_key must differ from ssh_public_key: the backup key reaches the host only through the SSH gate',
      );
  }
  if (typeof values.aws_region === 'string' && !REGION_RE.test(values.aws_region)) {
    err(
      'aws_region',
      `aws_region ${JSON.stringify(values.aws_region)} is not an AWS region code such as us-west-1 or eu-central-1`,
    );
  }
  if (typeof values.availability_zone === 'string' && values.availability_zone !== '') {
    if (!AVAILABILITY_ZONE_RE.test(values.availability_zone))
      err(
        'availability_zone',
        `availability_zone ${JSON.stringify(values.availability_zone)} is not a zone name such as us-west-1a`,
      );
    else if (typeof values.aws_region === 'string' && !values.availability_zone.startsWith(values.aws_region))
      err(
        'availability_zone',
        `availability_zone ${values.availability_zone} is not in aws_region ${values.aws_region}`,
      );
  }
  if (typeof values.key_pair_name === 'string' && !KEY_PAIR_NAME_RE.test(values.key_pair_name)) {
    err(
      'key_pair_name',
      'key_pair_name must be 1-255 characters: letters, digits, ".", "_" and "-", starting with a letter or digit',
    );
  }
  if (typeof values.ebs_volume_size === 'number') {
    const s = values.ebs_volume_size;
    if (!Number.isInteger(s) || s < GP3_MIN_GIB || s > GP3_MAX_GIB)
      err(
        'ebs_volume_size',
        `ebs_volume_size ${s} must be a whole number of GiB from ${GP3_MIN_GIB} to ${GP3_MAX_GIB} (the gp3 limits)`,
      );
    else if (s < 10)
      warn(
        'ebs_volume_size',
        `ebs_volume_size ${s} GiB leaves little room for snapshots; it can grow later but never shrink`,
      );
  }
  if (Array.isArray(values.allowed_ssh_cidrs)) {
    if (!values.allowed_ssh_cidrs.length)
      err('allowed_ssh_cidrs', 'allowed_ssh_cidrs must not be empty (nobody could reach SSH)');
    for (const c of values.allowed_ssh_cidrs) {
      if (!isCidr(c))
        err(
          'allowed_ssh_cidrs',
          `allowed_ssh_cidrs: ${JSON.stringify(c)} is not a CIDR block such as "203.0.113.7/32" or "2001:db8::/64"`,
        );
    }
    if (values.allowed_ssh_cidrs.some((c) => c === '0.0.0.0/0' || c === '::/0')) {
      warn(
        'allowed_ssh_cidrs',
        'SSH is open to the whole internet; the gate limits what the key can do, but narrow allowed_ssh_cidrs to your addresses when you can',
      );
    }
  }
  if (typeof values.instance_type === 'string') {
    if (XEN_INSTANCE_TYPE_RE.test(values.instance_type)) err('instance_type', T2_REFUSED_MESSAGE);
    else if (!INSTANCE_TYPE_RE.test(values.instance_type))
      err(
        'instance_type',
        `instance_type ${JSON.stringify(values.instance_type)} must be a Nitro burstable type: ${Object.keys(INSTANCE_FAMILIES).join(', ')} in sizes ${INSTANCE_SIZES.join(', ')} (such as t3a.nano, t3.small or t4g.nano)`,
      );
  }
  const whole = (key: keyof TfvarsValues, ok: (n: number) => boolean, rule: string): void => {
    const n = values[key];
    if (typeof n === 'number' && (!Number.isInteger(n) || !ok(n))) err(key, `${key} ${n} must be ${rule}`);
  };
  whole(
    'snapshot_interval_hours',
    (n) => SNAPSHOT_INTERVAL_HOURS.includes(n),
    `one of ${SNAPSHOT_INTERVAL_HOURS.join(', ')} (the hours Data Lifecycle Manager accepts)`,
  );
  whole(
    'snapshot_retain_count',
    (n) => n >= 0 && n <= SNAPSHOT_RETAIN_MAX,
    `a whole number from 0 (no snapshots) to ${SNAPSHOT_RETAIN_MAX} (Data Lifecycle Manager's limit)`,
  );
  whole(
    'recycle_bin_days',
    (n) => n >= 0 && n <= RECYCLE_BIN_DAYS_MAX,
    `a whole number of days from 0 (no recycle-bin rule) to ${RECYCLE_BIN_DAYS_MAX} (the Recycle Bin's limit)`,
  );
  whole(
    'recycle_bin_lock_days',
    (n) => n === 0 || (n >= RECYCLE_BIN_LOCK_DAYS_MIN && n <= RECYCLE_BIN_LOCK_DAYS_MAX),
    `0 (unlocked) or a whole number of days from ${RECYCLE_BIN_LOCK_DAYS_MIN} to ${RECYCLE_BIN_LOCK_DAYS_MAX} (the Recycle Bin's unlock delay limits)`,
  );
  whole(
    'backup_alarm_hours',
    (n) => n >= 0 && n <= BACKUP_ALARM_HOURS_MAX,
    `0 (no alarm) or a whole number of hours from 1 to ${BACKUP_ALARM_HOURS_MAX}: CloudWatch evaluates an alarm over at most 7 days (period x evaluation periods <= 604800 s; the period here is one hour)`,
  );
  if (values.recycle_bin_lock_days && values.recycle_bin_days === 0)
    warn(
      'recycle_bin_lock_days',
      'recycle_bin_lock_days is set but recycle_bin_days is 0: there is no Recycle Bin rule to lock',
    );
  if (values.recycle_bin_lock_days && values.recycle_bin_days) {
    warn(
      'recycle_bin_lock_days',
      `recycle_bin_lock_days makes the recycle-bin rule Region-level (AWS locks no tag-level rule): EVERY EBS snapshot deleted in ${values.aws_region ?? 'the region'} stays in the bin, billed, for ${values.recycle_bin_days} days; and hashicorp/aws 5.100.0 does not send the lock: lock the rule with the command setup prints (docs/RESTORE.md)`,
    );
  }
  if (
    typeof values.restore_snapshot_id === 'string' &&
    values.restore_snapshot_id !== '' &&
    !SNAPSHOT_ID_RE.test(values.restore_snapshot_id)
  ) {
    err(
      'restore_snapshot_id',
      `restore_snapshot_id ${JSON.stringify(values.restore_snapshot_id)} must be "" (a new, empty data volume) or a snapshot id such as snap-0123456789abcdef0`,
    );
  }
  if (typeof values.alert_email === 'string' && values.alert_email !== '' && !EMAIL_RE.test(values.alert_email)) {
    err(
      'alert_email',
      `alert_email ${JSON.stringify(values.alert_email)} must be "" (no mail) or one email address such as you@example.org`,
    );
  }
  if (values.alert_email && values.backup_alarm_hours === 0)
    warn('alert_email', 'alert_email is set but backup_alarm_hours is 0: there is no alarm to mail about');
  if (typeof values.retention === 'string' && !RETENTION_RE.test(values.retention)) {
    err(
      'retention',
      `retention ${JSON.stringify(values.retention)} must be btrbk retention terms separated by single spaces: a count (up to 4 digits) or * followed by h, d, w, m or y, each unit at most once and in the order h d w m y, such as "48h 14d 8w 12m" or "*d"`,
    );
  }
  if (typeof values.retention_min === 'string' && !RETENTION_MIN_RE.test(values.retention_min)) {
    err(
      'retention_min',
      `retention_min ${JSON.stringify(values.retention_min)} must be a count (up to 4 digits) followed by h, d, w, m or y (such as "1d"), or "latest", or "no"`,
    );
  }
  return { ok: errors.length === 0, values, errors, warnings, unknown };
}

/** Throws one OperatorError listing every problem, or returns the validated values. */
export function assertTfvarsValid(result: TfvarsResult, file: string = DEFAULT_TFVARS): TfvarsValues {
  // ok: every variable was given or defaulted, with the right type.
  if (result.ok) return result.values as TfvarsValues;
  const keyProblem = result.errors.some((e) => e.key === 'ssh_public_key');
  throw new OperatorError(`${file} has ${result.errors.length} problem${result.errors.length === 1 ? '' : 's'}`, {
    details: result.errors.map((e) => `- ${e.message}`).join('\n'),
    cause: 'the stack would refuse these values at plan time; setup checks them before calling the engine',
    next: keyProblem
      ? `fix ${file}; for a new backup key run: ${KEYGEN_COMMAND}`
      : `fix ${file} (see terraform.tfvars.example)`,
  });
}

/** The key blob (second field) of an OpenSSH public key line. */
export function keyBlob(line: string | null | undefined): string {
  return (
    String(line ?? '')
      .trim()
      .split(/\s+/)[1] ?? ''
  );
}

/**
 * Finds the private key whose .pub matches `publicKey`: `explicit` if given (its .pub must match), else the
 * first match among ~/.ssh/*.pub. `matched`: a .pub file confirmed it (an explicit key may have none). Throws
 * an OperatorError when there is no such key.
 */
export function findPrivateKeyFor(
  publicKey: string,
  { explicit, sshDir = path.join(os.homedir(), '.ssh') }: { explicit?: string; sshDir?: string } = {},
): { file: string; matched: boolean } {
  const blob = keyBlob(publicKey);
  if (explicit) {
    const file = path.resolve(explicit.replace(/^~(?=\/)/, os.homedir()));
    const pub = `${file}.pub`;
    if (!fs.existsSync(file))
      throw new OperatorError(`no private key at ${file}`, {
        next: `pass --ssh-key with the private key of ssh_public_key, or make one: ${KEYGEN_COMMAND}`,
      });
    if (fs.existsSync(pub) && keyBlob(fs.readFileSync(pub, 'utf8')) !== blob) {
      throw new OperatorError(`${pub} is not the key in ssh_public_key`, {
        cause: 'terraform.tfvars names one key, --ssh-key another; the host would refuse this key',
        next: `put the line of ${pub} into ssh_public_key, or pass the matching --ssh-key`,
      });
    }
    return { file, matched: fs.existsSync(pub) };
  }
  const pubs = fs.existsSync(sshDir)
    ? fs
        .readdirSync(sshDir)
        .filter((f) => f.endsWith('.pub'))
        .sort()
    : [];
  for (const p of pubs) {
    const full = path.join(sshDir, p);
    const priv = full.slice(0, -4);
    if (fs.existsSync(priv) && keyBlob(fs.readFileSync(full, 'utf8')) === blob) return { file: priv, matched: true };
  }
  throw new OperatorError('cannot find the private key of ssh_public_key', {
    cause: `no ${sshDir}/*.pub file holds that key`,
    next: `pass --ssh-key PATH (the private key whose .pub is ssh_public_key), or make a new pair: ${KEYGEN_COMMAND}`,
  });
}
