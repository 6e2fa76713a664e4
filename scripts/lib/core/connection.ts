// The connection file: setup writes aws_connection.env, the local target writes local_connection.env, and every
// script reads one of them. KEY='value' lines that a POSIX shell can source, parsed here without any shell.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from './errors.js';
import { shellQuote } from './shell.js';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
export const DEFAULT_AWS_ENV_FILE = path.join(REPO_ROOT, 'aws_connection.env');
export const LOCAL_ENV_FILE = path.join(REPO_ROOT, 'local_connection.env');

/**
 * A connection file's settings, KEY -> value: every REQUIRED_KEYS key, the OPTIONAL_KEYS (filled with their
 * defaults by validateConnection), and whatever other KEY=value lines the file has (kept, and written back).
 */
export type Connection = Record<string, string>;

/** The seed's keys, in the order they are written. */
export const REQUIRED_KEYS = Object.freeze([
  'BTRBK_AWS_HOST',
  'BTRBK_AWS_USER',
  'BTRBK_AWS_SSH_KEY',
  'BTRBK_AWS_TARGET',
  'BTRBK_AWS_PATH',
  'BTRBK_AWS_INSTANCE_ID',
  'BTRBK_AWS_VOLUME_ID',
  'BTRBK_AWS_REGION',
] as const);
export type RequiredKey = (typeof REQUIRED_KEYS)[number];

/** Keys added to the seed's, with their defaults. */
export const OPTIONAL_KEYS = Object.freeze({ BTRBK_AWS_SSH_PORT: '22', BTRBK_AWS_KNOWN_HOSTS: '' });
export type OptionalKey = keyof typeof OPTIONAL_KEYS;
/** OPTIONAL_KEYS looked up by any key name (undefined for the others). */
const OPTIONAL_DEFAULTS: Readonly<Record<string, string | undefined>> = OPTIONAL_KEYS;

const KEY_RE = /^[A-Z][A-Z0-9_]*$/;

/**
 * Parses KEY=value lines (value bare, 'single' or "double" quoted; `export ` allowed; # comments). Returns the
 * keys as found, unvalidated; `source` names the file in errors.
 */
export function parseEnvText(text: string, source = 'connection file'): Connection {
  const out: Connection = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) {
      throw new OperatorError(`${source}: line ${i + 1} is not KEY=value`, {
        cause: `it reads: ${JSON.stringify(raw.slice(0, 80))}`,
        next: 'fix or delete that line, or re-run setup to write the file again',
      });
    }
    out[m[1]] = unquote(m[2], `${source}: line ${i + 1}`);
  });
  return out;
}

function unquote(v: string, where: string): string {
  if (v.startsWith("'")) {
    // shell single quotes, with the '\'' idiom for a quote inside
    const parts = v.split(`'\\''`);
    const joined = parts.map((p, idx) => {
      let s = p;
      if (idx === 0) s = s.slice(1);
      if (idx === parts.length - 1) {
        if (!s.endsWith("'")) throw new OperatorError(`${where}: unterminated quote`, { next: 'close the quote' });
        s = s.slice(0, -1);
      }
      return s;
    });
    return joined.join("'");
  }
  if (v.startsWith('"')) {
    if (!v.endsWith('"') || v.length < 2)
      throw new OperatorError(`${where}: unterminated quote`, { next: 'close the quote' });
    return v.slice(1, -1).replace(/\\(["\\$`])/g, '$1');
  }
  return v.replace(/\s+#.*$/, '');
}

/**
 * Serializes a connection object to the file text: the header comment, the required keys, the optional ones
 * (with their defaults), then any other keys. Keys without a value are left out.
 */
export function formatConnection(
  conn: Connection,
  header = 'Written by btrbk-aws-target; read by every script in scripts/.',
): string {
  const lines = [`# ${header}`];
  const keys: string[] = [...REQUIRED_KEYS, ...Object.keys(OPTIONAL_KEYS)];
  for (const k of Object.keys(conn)) if (!keys.includes(k)) keys.push(k);
  for (const k of keys) {
    if (!KEY_RE.test(k)) throw new Error(`bad connection key ${k}`);
    const v = conn[k] ?? OPTIONAL_DEFAULTS[k];
    if (v === undefined) continue;
    lines.push(`${k}=${shellQuote(v)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Validates and writes the connection file atomically with mode 0600 (it names the private key's path and the
 * host). Returns `file`.
 */
export function writeConnection(file: string, conn: Connection, header?: string): string {
  validateConnection(conn, file);
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, formatConnection(conn, header), { mode: 0o600 });
  fs.renameSync(tmp, file);
  return file;
}

/** Checks a connection object has every required key with a non-empty value; returns it with defaults filled. */
export function validateConnection(conn: Connection, source = 'connection'): Connection {
  const missing = REQUIRED_KEYS.filter((k) => !conn[k]);
  if (missing.length) {
    throw new OperatorError(`${source} lacks ${missing.join(', ')}`, {
      cause: 'the file was written by an older version or edited by hand',
      next: 're-run setup (npx zx scripts/setup.mjs) or `npx zx scripts/local-target.mjs up` to write it again',
    });
  }
  const port = conn.BTRBK_AWS_SSH_PORT ?? OPTIONAL_KEYS.BTRBK_AWS_SSH_PORT;
  if (!/^\d{1,5}$/.test(String(port)) || Number(port) < 1 || Number(port) > 65535) {
    throw new OperatorError(`${source}: BTRBK_AWS_SSH_PORT=${port} is not a TCP port`, {
      next: 'set a number from 1 to 65535',
    });
  }
  return { ...OPTIONAL_KEYS, ...conn, BTRBK_AWS_SSH_PORT: String(port) };
}

/**
 * Which connection file to use: `--env FILE` (already parsed by the caller), else BTRBK_ENV_FILE, else
 * aws_connection.env at the repo root.
 */
export function resolveEnvFile(
  explicit?: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  return path.resolve(explicit || env.BTRBK_ENV_FILE || DEFAULT_AWS_ENV_FILE);
}

/** Reads and validates a connection file; an OperatorError when it is absent, malformed or incomplete. */
export function readConnection(file: string): Connection {
  if (!fs.existsSync(file)) {
    throw new OperatorError(`no connection file at ${file}`, {
      cause: 'setup has not run yet, or wrote its file elsewhere',
      next: `run setup (npx zx scripts/setup.mjs), or try the local target: npx zx scripts/local-target.mjs up, then pass --env ${path.relative(process.cwd(), LOCAL_ENV_FILE) || LOCAL_ENV_FILE}`,
    });
  }
  return validateConnection(parseEnvText(fs.readFileSync(file, 'utf8'), file), file);
}

/** True when a connection describes the local target rather than an AWS instance. */
export function isLocalTarget(conn: Connection): boolean {
  return String(conn.BTRBK_AWS_INSTANCE_ID).startsWith('local-');
}
