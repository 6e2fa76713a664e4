// terraform.tfvars: a strict parser for the subset this stack needs (key = "string" | number | bool | ["list"]),
// terraform.tfvars.json as an alternative, and the validation setup runs before any engine call.
//
// The variables, their types, defaults and rules come from the stack's one table (constructs/variables.ts):
// validateTfvars checks each rule there with the same message the engine shows, and adds what only setup can see
// (a private key pasted by mistake, a key blob that does not decode, a zone outside the region) and its warnings.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import {
  ADMIN_KEY_DIFFERS_MESSAGE,
  ARM64_INSTANCE_TYPE_SOURCE,
  BACKUP_KEY_OR_DEVICES_MESSAGE,
  DEVICE_KEY_REUSED_MESSAGE,
  ED25519_KEY_SOURCE,
  INSTANCE_TYPE_SOURCE,
  VARIABLES,
  anchored,
  isStringMap,
  keyBlobOf,
  ruleHolds,
  type VariableType,
  type VariableValues,
} from '../../../constructs/variables.js';

/** A value of the tfvars subset: a string, number, bool, a list of those, or a map of strings. */
export type TfvarValue = string | number | boolean | Array<string | number | boolean> | Record<string, string>;

/** A problem with one variable (an error, or a warning). */
export interface TfvarsIssue {
  key: string;
  message: string;
  /** The value given, as JSON, when the message is a rule's (the same text as the engine's, which names no value). */
  given?: string;
}

/** The stack's variables, as validateTfvars returns them (defaults filled in). */
export type TfvarsValues = VariableValues;

export interface TfvarsResult {
  ok: boolean;
  /** The variables of the right type (given, else the default); a complete TfvarsValues when ok. */
  values: Partial<TfvarsValues>;
  errors: TfvarsIssue[];
  warnings: TfvarsIssue[];
  /** Names in the file that are not variables of the stack (each is also an error). */
  unknown: string[];
}

export const ED25519_KEY_RE = anchored(ED25519_KEY_SOURCE);
export const INSTANCE_TYPE_RE = anchored(INSTANCE_TYPE_SOURCE);
const ARM64_INSTANCE_TYPE_RE = anchored(ARM64_INSTANCE_TYPE_SOURCE);

/** The EC2 architecture of an instance type the stack supports (the same rule as the stack's image lookup). */
export const instanceArchitecture = (type: string): 'x86_64' | 'arm64' =>
  ARM64_INSTANCE_TYPE_RE.test(type) ? 'arm64' : 'x86_64';

export const KEYGEN_COMMAND = 'ssh-keygen -t ed25519 -f ~/.ssh/btrbk_aws -C btrbk-backup';
export const DEFAULT_TFVARS = 'terraform.tfvars';
const STACK_DEPLOY_ARGS = 'btrbk-backup-target --var-file="$PWD/terraform.tfvars"';

// ---------------------------------------------------------------------------------------------------------
// Parsing

class TfvarsSyntaxError extends OperatorError {}

/**
 * Parses the HCL subset a tfvars file for this stack needs: `key = value` per line, where value is a
 * double-quoted string (escapes \" \\ \n \t \r), a number, true/false, a list of those in [ ] that may span
 * lines (trailing comma allowed), or a map of strings in { } that may span lines: `name = "value"` or
 * `"name" = "value"` (or `:`), separated by commas or newlines. Comments: #, // and /* *\/. Anything else
 * (heredocs, nested maps, expressions, duplicate keys) is an error naming the line, never a guess.
 */
export function parseTfvars(text: string, source: string = DEFAULT_TFVARS): Record<string, TfvarValue> {
  let i = 0;
  let line = 1;
  const out: Record<string, TfvarValue> = {};
  const fail: (msg: string, atLine?: number) => never = (msg, atLine = line) => {
    throw new TfvarsSyntaxError(`${source}:${atLine}: ${msg}`, {
      cause:
        'this tool reads a strict subset of HCL: key = "string" | number | true/false | ["list", "of", "strings"] | { name = "string", "other-name" = "string" }',
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
      if (c === '{')
        fail('a map is allowed only as a whole value (devices = { name = "key" }), not inside a list or map');
      fail(
        `expected a value ("string", number, true/false or [list]) but found ${JSON.stringify(text.slice(i, i + 20))}`,
      );
    }
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    return Number(m[0]);
  };
  const parseMap = (): Record<string, string> => {
    const start = line;
    i += 1; // {
    const map: Record<string, string> = {};
    for (;;) {
      skipSpace(true);
      if (i >= text.length) fail('unterminated map: no } for the { here', start);
      if (text[i] === '}') {
        i += 1;
        return map;
      }
      const entryLine = line;
      let name: string;
      if (text[i] === '"') name = parseString();
      else {
        const m = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(text.slice(i));
        if (!m)
          fail(
            `expected a map key (a name, or a "quoted name" when it holds a dot or starts with a digit) but found ${JSON.stringify(text.slice(i, i + 20))}`,
          );
        name = m[0];
        i += name.length;
      }
      skipSpace(false);
      if (text[i] !== '=' && text[i] !== ':') fail(`expected = after the map key ${JSON.stringify(name)}`);
      i += 1;
      skipSpace(false);
      if (text[i] !== '"')
        fail(
          `the value of ${JSON.stringify(name)} must be a "double-quoted string" but found ${JSON.stringify(text.slice(i, i + 20))}`,
        );
      if (Object.prototype.hasOwnProperty.call(map, name))
        fail(`the map key ${JSON.stringify(name)} is set twice`, entryLine);
      map[name] = parseString();
      skipSpace(false);
      if (text[i] === ',') {
        i += 1;
        continue;
      }
      if (text[i] === '}' || text[i] === '\n' || text[i] === '#' || text[i] === '/') continue;
      if (i >= text.length) continue;
      fail(
        `expected , or a new line or } after the value of ${JSON.stringify(name)} but found ${JSON.stringify(text.slice(i, i + 20))}`,
      );
    }
  };
  const parseValue = (): TfvarValue => {
    if (text[i] === '{') return parseMap();
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

/** Parses terraform.tfvars.json: one object of the same value kinds (a map is a JSON object of strings). */
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

const typeOk = (type: VariableType, v: unknown): boolean =>
  type === 'list(string)'
    ? Array.isArray(v) && v.every((x) => typeof x === 'string')
    : type === 'map(string)'
      ? isStringMap(v)
      : typeof v === (type === 'bool' ? 'boolean' : type);
const TYPE_WORDS: Record<VariableType, string> = {
  string: 'a string',
  number: 'a number',
  bool: 'true or false (no quotes)',
  'list(string)': 'a list of strings',
  'map(string)': 'a map of strings, such as { "alice-laptop" = "ssh-ed25519 AAAA... alice" }',
};

/** Validates parsed tfvars against the stack's rules (constructs/variables.ts), then setup's own checks. */
export function validateTfvars(vars: Record<string, unknown>): TfvarsResult {
  const errors: TfvarsIssue[] = [];
  const warnings: TfvarsIssue[] = [];
  const err = (key: string, message: string, given?: unknown): void => {
    errors.push(given === undefined ? { key, message } : { key, message, given: JSON.stringify(given) });
  };
  const warn = (key: string, message: string): void => {
    warnings.push({ key, message });
  };
  const unknown = Object.keys(vars).filter((k) => !Object.hasOwn(VARIABLES, k));
  for (const k of unknown)
    err(k, `unknown variable ${k}; the stack's variables are: ${Object.keys(VARIABLES).join(', ')}`);

  const values: Partial<TfvarsValues> = {};
  for (const [key, d] of Object.entries(VARIABLES)) {
    const given = Object.hasOwn(vars, key);
    if (!given && d.default === undefined) {
      err(key, `${key} is required`);
      continue;
    }
    const v = given ? vars[key] : d.default;
    if (!typeOk(d.type, v)) {
      err(key, `${key} must be ${TYPE_WORDS[d.type]}, not ${JSON.stringify(v)}`);
      continue;
    }
    (values as Record<string, unknown>)[key] = Array.isArray(v) ? [...v] : isStringMap(v) ? { ...v } : v;
    // every rule the engine would check, each with its own message (the engine reports every one that fails)
    for (const rule of d.rules) if (!ruleHolds(rule, v)) err(key, rule.message, v);
  }

  // What only setup checks: the engine sees neither a pasted private key nor a damaged key blob, and a variable's
  // validation cannot look at another variable.
  const keyHint = `make one with: ${KEYGEN_COMMAND}  and paste ~/.ssh/btrbk_aws.pub as one line`;
  const k = values.ssh_public_key;
  if (typeof k === 'string') {
    if (/^-----BEGIN/.test(k) || /PRIVATE KEY/.test(k))
      err(
        'ssh_public_key',
        "ssh_public_key holds a PRIVATE key: use the .pub file's line, and treat this private key as exposed",
      );
    else if (ED25519_KEY_RE.test(k) && !isEd25519KeyLine(k))
      err(
        'ssh_public_key',
        `ssh_public_key looks like an ssh-ed25519 line but its key does not decode to an ed25519 key (damaged in copying?) (${keyHint})`,
      );
  }
  const admin = values.admin_ssh_public_key;
  if (typeof admin === 'string' && admin !== '') {
    if (ED25519_KEY_RE.test(admin) && !isEd25519KeyLine(admin))
      err(
        'admin_ssh_public_key',
        'admin_ssh_public_key looks like an ssh-ed25519 line but its key does not decode to an ed25519 key (damaged in copying?)',
      );
    else if (admin === values.ssh_public_key) err('admin_ssh_public_key', ADMIN_KEY_DIFFERS_MESSAGE);
  }
  const devices = values.devices;
  if (devices !== undefined) {
    for (const [name, line] of Object.entries(devices)) {
      if (/^-----BEGIN/.test(line) || /PRIVATE KEY/.test(line))
        err(
          'devices',
          `devices.${name} holds a PRIVATE key: use the .pub file's line, and treat this private key as exposed`,
        );
      else if (ED25519_KEY_RE.test(line) && !isEd25519KeyLine(line))
        err(
          'devices',
          `devices.${name} looks like an ssh-ed25519 line but its key does not decode to an ed25519 key (damaged in copying?)`,
        );
    }
    // the stack's preconditions across variables, with their messages
    if (values.ssh_public_key === '' && Object.keys(devices).length === 0)
      err('ssh_public_key', BACKUP_KEY_OR_DEVICES_MESSAGE);
    const others = [values.ssh_public_key, values.admin_ssh_public_key]
      .filter((k): k is string => typeof k === 'string' && k !== '')
      .map(keyBlobOf);
    if (Object.values(devices).some((line) => others.includes(keyBlobOf(line))))
      err('devices', DEVICE_KEY_REUSED_MESSAGE);
  }
  const zone = values.availability_zone;
  if (
    typeof zone === 'string' &&
    zone !== '' &&
    !errors.some((e) => e.key === 'availability_zone') &&
    typeof values.aws_region === 'string' &&
    !zone.startsWith(values.aws_region)
  )
    err('availability_zone', `availability_zone ${zone} is not in aws_region ${values.aws_region}`);
  const size = values.ebs_volume_size;
  if (typeof size === 'number' && !errors.some((e) => e.key === 'ebs_volume_size') && size < 10)
    warn(
      'ebs_volume_size',
      `ebs_volume_size ${size} GiB leaves little room for snapshots; it can grow later but never shrink`,
    );
  if (values.allowed_ssh_cidrs?.some((c) => c === '0.0.0.0/0' || c === '::/0')) {
    warn(
      'allowed_ssh_cidrs',
      'SSH is open to the whole internet; the gate limits what the key can do, but narrow allowed_ssh_cidrs to your addresses when you can',
    );
  }
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
  if (values.alert_email && values.backup_alarm_hours === 0)
    warn('alert_email', 'alert_email is set but backup_alarm_hours is 0: there is no alarm to mail about');
  return { ok: errors.length === 0, values, errors, warnings, unknown };
}

/** Throws one OperatorError listing every problem, or returns the validated values. */
export function assertTfvarsValid(result: TfvarsResult, file: string = DEFAULT_TFVARS): TfvarsValues {
  // ok: every variable was given or defaulted, with the right type.
  if (result.ok) return result.values as TfvarsValues;
  const keyProblem = result.errors.some((e) => e.key === 'ssh_public_key');
  throw new OperatorError(`${file} has ${result.errors.length} problem${result.errors.length === 1 ? '' : 's'}`, {
    details: result.errors
      .map((e) => `- ${e.message}${e.given === undefined ? '' : ` (given: ${e.given})`}`)
      .join('\n'),
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
  if (!blob)
    throw new OperatorError('no public key to find the private key of (ssh_public_key is "")', {
      next: 'give ssh_public_key, or let setup use a device key (findBackupKey)',
    });
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
  const pair = keyPairsIn(sshDir).find((k) => k.blob === blob);
  if (pair) return { file: pair.file, matched: true };
  throw new OperatorError('cannot find the private key of ssh_public_key', {
    cause: `no ${sshDir}/*.pub file holds that key`,
    next: `pass --ssh-key PATH (the private key whose .pub is ssh_public_key), or make a new pair: ${KEYGEN_COMMAND}`,
  });
}

/** The key pairs in a directory: each private key with a .pub beside it, and that .pub's key blob, by file name. */
function keyPairsIn(sshDir: string): Array<{ file: string; blob: string }> {
  if (!fs.existsSync(sshDir)) return [];
  return fs
    .readdirSync(sshDir)
    .filter((f) => f.endsWith('.pub'))
    .sort()
    .map((p) => ({
      file: path.join(sshDir, p.slice(0, -4)),
      blob: keyBlob(fs.readFileSync(path.join(sshDir, p), 'utf8')),
    }))
    .filter((k) => k.blob && fs.existsSync(k.file));
}

/** The private key setup signs in with, and the device it is when it is a device's key. */
export interface BackupKey {
  file: string;
  /** A .pub file confirmed it (an explicit legacy key may have none). */
  matched: boolean;
  /** Set when there is no legacy key (ssh_public_key ""): the device whose key this is. */
  device?: string;
}

/**
 * The key setup's smoke tests and connection file use: the legacy key's (findPrivateKeyFor) when ssh_public_key is
 * given; with devices only, a device's key: `explicit` when its .pub is one device's key, else the first device (by
 * name) whose key has its private half beside a .pub in `sshDir`. An OperatorError when there is none.
 */
export function findBackupKey(
  values: Pick<TfvarsValues, 'ssh_public_key' | 'devices'>,
  opts: { explicit?: string; sshDir?: string } = {},
): BackupKey {
  if (keyBlob(values.ssh_public_key)) return findPrivateKeyFor(values.ssh_public_key, opts);
  const { explicit, sshDir = path.join(os.homedir(), '.ssh') } = opts;
  const devices = Object.entries(values.devices ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const deviceOf = (pubFile: string) => {
    const blob = fs.existsSync(pubFile) ? keyBlob(fs.readFileSync(pubFile, 'utf8')) : '';
    return blob ? devices.find(([, line]) => keyBlob(line) === blob)?.[0] : undefined;
  };
  const names = devices.map(([d]) => d).join(', ');
  if (explicit) {
    const file = path.resolve(explicit.replace(/^~(?=\/)/, os.homedir()));
    if (!fs.existsSync(file))
      throw new OperatorError(`no private key at ${file}`, {
        next: `pass --ssh-key with the private key of one of the devices (${names})`,
      });
    const device = deviceOf(`${file}.pub`);
    if (!device)
      throw new OperatorError(`${file} is not the key of any device in terraform.tfvars`, {
        cause: fs.existsSync(`${file}.pub`)
          ? `the key in ${file}.pub is none of the devices' keys (${names}), and ssh_public_key is ""`
          : `there is no ${file}.pub beside it to tell which device it is`,
        next: `pass --ssh-key with the private key of one of the devices (its .pub beside it), or put its line into devices`,
      });
    return { file, matched: true, device };
  }
  const pairs = keyPairsIn(sshDir);
  for (const [device, line] of devices) {
    const pair = pairs.find((k) => k.blob === keyBlob(line));
    if (pair) return { file: pair.file, matched: true, device };
  }
  throw new OperatorError('cannot find a device\'s private key (ssh_public_key is "")', {
    cause: `with devices only, setup signs in with one device's key for its smoke tests, and no ${sshDir}/*.pub holds the key of ${names || 'any device'}`,
    next: `pass --ssh-key PATH (the private key of one device, its .pub beside it); or deploy without setup: npx cdktf deploy ${STACK_DEPLOY_ARGS} (README, Deploy to AWS), then check with a device's connection file: npx zx scripts/troubleshoot.mjs check-all --env FILE`,
  });
}
