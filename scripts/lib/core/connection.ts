// The connection file: setup writes aws_connection.env, the local target writes local_connection.env, and every
// script reads one of them. KEY='value' lines that a POSIX shell can source, parsed here without any shell.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from './errors.js';
import { checkoutRoot } from '../../../user-data/checkout.js';
import { shellQuote } from '../../../user-data/shell.js';

export const REPO_ROOT = checkoutRoot(import.meta.url);
export const DEFAULT_AWS_ENV_FILE = path.join(REPO_ROOT, 'aws_connection.env');
export const LOCAL_ENV_FILE = path.join(REPO_ROOT, 'local_connection.env');

/**
 * The file's keys, by the field each one fills, in the order they are written: the seed's eight, then the port and
 * the pinned known_hosts, then the device (only in a device's file). These names appear nowhere else in
 * scripts/lib: the rest of the code reads the fields.
 */
export const CONNECTION_KEYS = Object.freeze({
  host: 'BTRBK_AWS_HOST',
  user: 'BTRBK_AWS_USER',
  keyFile: 'BTRBK_AWS_SSH_KEY',
  targetUrl: 'BTRBK_AWS_TARGET',
  backupRoot: 'BTRBK_AWS_PATH',
  instanceId: 'BTRBK_AWS_INSTANCE_ID',
  volumeId: 'BTRBK_AWS_VOLUME_ID',
  region: 'BTRBK_AWS_REGION',
  port: 'BTRBK_AWS_SSH_PORT',
  knownHostsFile: 'BTRBK_AWS_KNOWN_HOSTS',
  device: 'BTRBK_AWS_DEVICE',
} as const);
export type ConnectionField = keyof typeof CONNECTION_KEYS;

/** The fields every file must give (the seed's keys); port and knownHostsFile have defaults. */
const REQUIRED_FIELDS = Object.freeze([
  'host',
  'user',
  'keyFile',
  'targetUrl',
  'backupRoot',
  'instanceId',
  'volumeId',
  'region',
] as const satisfies readonly ConnectionField[]);

/** The seed's keys, in the order they are written. */
export const REQUIRED_KEYS = Object.freeze(REQUIRED_FIELDS.map((f) => CONNECTION_KEYS[f]));

/** The default SSH port, when the file has no BTRBK_AWS_SSH_PORT. */
export const DEFAULT_SSH_PORT = 22;

/** A connection file read into typed fields (readConnection); what writeConnection writes. */
export interface Connection {
  /** The backup host's name or address (BTRBK_AWS_HOST). */
  host: string;
  /** The SSH port (BTRBK_AWS_SSH_PORT; default 22). */
  port: number;
  /** The backup user on the host (BTRBK_AWS_USER). */
  user: string;
  /** The backup key, private half (BTRBK_AWS_SSH_KEY). */
  keyFile: string;
  /** The pinned known_hosts file (BTRBK_AWS_KNOWN_HOSTS); '' when none is pinned. */
  knownHostsFile: string;
  /** btrbk's target URL as setup wrote it, e.g. ssh://HOST/backup_volume/backups/ (BTRBK_AWS_TARGET). */
  targetUrl: string;
  /** The backup root on the host, without a trailing slash (BTRBK_AWS_PATH). */
  backupRoot: string;
  /** The EC2 instance, or `local-...` for the local target (BTRBK_AWS_INSTANCE_ID). */
  instanceId: string;
  /** The data volume (BTRBK_AWS_VOLUME_ID). */
  volumeId: string;
  /** The AWS region, `local` for the local target (BTRBK_AWS_REGION). */
  region: string;
  /**
   * The device whose key this is (BTRBK_AWS_DEVICE), in a device's connection file: backupRoot is then that device's
   * own directory (backups/NAME). Absent in the single-key (legacy) file, which is written exactly as before.
   */
  device?: string;
  /** Any other KEY=value lines of the file: kept, and written back after the known keys. */
  extra?: Readonly<Record<string, string>>;
}

/** A key as a POSIX shell names a variable (the keys parseEnvText reads, so every key read is written back). */
const KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses KEY=value lines (value bare, 'single' or "double" quoted; `export ` allowed; # comments). Returns the
 * keys as found, unvalidated; `source` names the file in errors.
 */
export function parseEnvText(text: string, source = 'connection file'): Record<string, string> {
  const out: Record<string, string> = {};
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

/** The connection as the file's KEY -> value pairs: the known keys in order, then the extra ones. */
export function connectionToEnv(conn: Connection): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, key] of Object.entries(CONNECTION_KEYS)) {
    const v = conn[field as ConnectionField];
    if (field === 'device' && !v) continue; // only a device's file names one
    out[key] = String(v);
  }
  for (const [k, v] of Object.entries(conn.extra ?? {})) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * The file's KEY -> value pairs as a typed connection: checks every required key has a value and the port is a
 * TCP port (an OperatorError naming the keys otherwise); keys it does not know go to `extra`. `source` names the
 * file in errors.
 */
export function connectionFromEnv(env: Readonly<Record<string, string>>, source = 'connection'): Connection {
  requireKeys(
    REQUIRED_KEYS.filter((k) => !env[k]),
    source,
  );
  const known: readonly string[] = Object.values(CONNECTION_KEYS);
  const extra = Object.fromEntries(Object.entries(env).filter(([k]) => !known.includes(k)));
  const k = CONNECTION_KEYS;
  return {
    host: env[k.host],
    port: parsePort(env[k.port] || String(DEFAULT_SSH_PORT), source),
    user: env[k.user],
    keyFile: env[k.keyFile],
    knownHostsFile: env[k.knownHostsFile] ?? '',
    targetUrl: env[k.targetUrl],
    backupRoot: trimSlashes(env[k.backupRoot]),
    instanceId: env[k.instanceId],
    volumeId: env[k.volumeId],
    region: env[k.region],
    ...(env[k.device] ? { device: env[k.device] } : {}),
    ...(Object.keys(extra).length ? { extra } : {}),
  };
}

/** An OperatorError naming the keys the file lacks, when it lacks any. */
function requireKeys(missing: readonly string[], source: string): void {
  if (missing.length) {
    throw new OperatorError(`${source} lacks ${missing.join(', ')}`, {
      cause: 'the file was written by an older version or edited by hand',
      next: 're-run setup (npx zx scripts/setup.mjs) or `npx zx scripts/local-target.mjs up` to write it again',
    });
  }
}

function parsePort(text: string, source: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new OperatorError(`${source}: ${CONNECTION_KEYS.port}=${text} is not a TCP port`, {
      next: 'set a number from 1 to 65535',
    });
  }
  return Number(text);
}

/** A path without its trailing slashes ("/" stays "/"). */
const trimSlashes = (p: string): string => p.replace(/(.)\/+$/, '$1');

/**
 * Serializes a connection to the file text: the header comment, the required keys, the port and known_hosts, then
 * the extra keys.
 */
export function formatConnection(
  conn: Connection,
  header = 'Written by btrbk-aws-target; read by every script in scripts/.',
): string {
  const lines = [`# ${header}`];
  for (const [k, v] of Object.entries(connectionToEnv(conn))) {
    if (!KEY_RE.test(k)) throw new Error(`bad connection key ${k}`);
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

/** Checks every required field has a value and the port is a TCP port (naming the file's keys); returns `conn`. */
export function validateConnection(conn: Connection, source = 'connection'): Connection {
  requireKeys(
    REQUIRED_FIELDS.filter((f) => !conn[f]).map((f) => CONNECTION_KEYS[f]),
    source,
  );
  parsePort(String(conn.port), source);
  return conn;
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
  return connectionFromEnv(parseEnvText(fs.readFileSync(file, 'utf8'), file), file);
}

/**
 * Device NAME's connection to the target of `conn` (a connection of the single key's form): its own directory
 * backups/NAME as the root and btrbk's URL, the device named. The key is the caller's (`keyFile`, default conn's).
 */
export function deviceConnection(conn: Connection, device: string, keyFile: string = conn.keyFile): Connection {
  return {
    ...conn,
    keyFile,
    targetUrl: `${conn.targetUrl.replace(/\/+$/, '')}/${device}/`,
    backupRoot: `${conn.backupRoot.replace(/\/+$/, '')}/${device}`,
    device,
  };
}

/** True when a connection describes the local target rather than an AWS instance. */
export function isLocalTarget(conn: Pick<Connection, 'instanceId'>): boolean {
  return conn.instanceId.startsWith('local-');
}
