// SSH to the backup host, always with the pinned host key (the connection's known_hosts) and the backup key only.
// Two ways in, one set of rules:
//  - node-ssh (ssh2) for the checks: a hostVerifier compares the server's key with the pinned one, so a
//    mismatch is detected and named, never accepted;
//  - the OpenSSH client for data pipelines (btrfs send/receive): sshArgs() builds its argv with
//    StrictHostKeyChecking=yes against the same file.
// Remote commands are single strings that the SSH gate on the host tokenizes; they are written from the gate's
// command table (gate-commands.ts), so what we send has the exact form the gate accepts.
import { createHash, createHmac } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { NodeSSH, type Config as NodeSshConfig, type SSHExecCommandOptions } from 'node-ssh';
import { CONNECTION_KEYS, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run, type RunResult } from '../core/process.js';

/** What SSH needs from a connection (see sshParams). */
export type SshParams = Pick<Connection, 'host' | 'port' | 'user' | 'keyFile' | 'knownHostsFile' | 'backupRoot'>;

/** A host key pinned in known_hosts. */
export interface PinnedKey {
  /** As written in the file, e.g. "ssh-ed25519". */
  keyType: string;
  /** The key blob, base64. */
  blob: string;
  fingerprint: string;
}

/** The host key a server offered: its type (null when the blob does not say) and SHA256 fingerprint. */
export interface OfferedKey {
  keyType: string | null;
  fingerprint: string;
}

/** What a host verifier saw: the key offered (null before the server offered one), whether it was pinned. */
export interface VerifierState {
  offered: OfferedKey | null;
  matched: boolean;
  pinned: PinnedKey[];
}

/** How connecting failed; `no-pin`: the connection file pins no usable host key, so nothing was tried. */
export type ConnectErrorKind =
  'refused' | 'timeout' | 'dns' | 'auth' | 'key-file' | 'host-key-mismatch' | 'no-pin' | 'other';

/** The OperatorError connectSsh rejects with: it also says which way connecting failed. */
export type SshConnectError = OperatorError & { kind: ConnectErrorKind };

/** A command's outcome over node-ssh: exit code (null when killed by a signal) and its output. */
export interface ExecResult {
  code: number | null;
  signal?: string | null;
  stdout: string;
  stderr: string;
}

/** The part of a node-ssh connection the checks use (tests pass fakes). */
export interface SshLike {
  execCommand(command: string, opts?: SSHExecCommandOptions): Promise<ExecResult>;
  dispose(): void;
}

/** A node-ssh client class as connectSsh constructs it: NodeSSH, or a fake in tests. */
export type SshClientClass = new () => SshLike & { connect(config: NodeSshConfig): Promise<unknown> };

/** An open node-ssh connection and the host key it was verified with. */
export interface SshConnection {
  ssh: SshLike;
  hostKey: OfferedKey | null;
}

/** Reads a text file (fs.readFileSync's form); injected by tests. */
export type ReadTextFile = (file: string, encoding: 'utf8') => string;

/** The outcome of probeTcp: whether the port accepted, else the error code; and how long it took. */
export interface TcpProbeResult {
  ok: boolean;
  code?: string;
  ms: number;
}

export interface RunRemoteOptions {
  /** Written to the remote command's stdin; without it stdin is /dev/null (the command reads EOF at once). */
  input?: string | Buffer;
  /** ssh is sent SIGTERM after this long; default 2 minutes. */
  timeoutMs?: number;
  /** Runs ssh (core/process.ts run; tests may pass a fake). */
  run?: Run;
}

/** The parts of a connection that SSH needs, checked: a host or user that ssh would read as an option is refused. */
export function sshParams(conn: Connection): SshParams {
  const { host, port, user, keyFile, knownHostsFile, backupRoot } = conn;
  if (!host || host.startsWith('-') || /\s/.test(host)) {
    throw new OperatorError(`${CONNECTION_KEYS.host}=${JSON.stringify(host)} is not a host name or address`, {
      next: 'fix the connection file or re-run setup',
    });
  }
  if (!user || user.startsWith('-') || /[\s@]/.test(user)) {
    throw new OperatorError(`${CONNECTION_KEYS.user}=${JSON.stringify(user)} is not a user name`, {
      next: 'fix the connection file or re-run setup',
    });
  }
  return { host, port, user, keyFile, knownHostsFile, backupRoot };
}

/** SHA256 fingerprint of a raw key blob, as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer | string): string {
  const buf = Buffer.isBuffer(blob) ? blob : Buffer.from(String(blob), 'base64');
  return `SHA256:${createHash('sha256').update(buf).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a raw key blob (its first SSH string), e.g. "ssh-ed25519"; null when unreadable. */
export function keyTypeOfBlob(buf: Buffer): string | null {
  if (!Buffer.isBuffer(buf) || buf.length < 4) return null;
  const n = buf.readUInt32BE(0);
  return buf.length >= 4 + n ? buf.subarray(4, 4 + n).toString('latin1') : null;
}

/** known_hosts host field for host:port: "host" on 22, "[host]:port" otherwise (OpenSSH's form). */
export function knownHostsName(host: string, port: number | string): string {
  return Number(port) === 22 ? host : `[${host}]:${port}`;
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  return field.split(',').some((pattern) => pattern === name);
}

/**
 * The keys pinned for host:port in known_hosts text (plain or hashed host names). Revoked and cert-authority
 * lines are not pins. Exact names only (a pinned file has no wildcards).
 */
export function pinnedKeys(text: string, host: string, port: number | string): PinnedKey[] {
  const name = knownHostsName(host, port);
  const keys: PinnedKey[] = [];
  for (const raw of String(text ?? '').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith('@')) continue;
    const [hosts, keyType, blob] = line.split(/\s+/);
    if (!blob || !hostFieldMatches(hosts, name)) continue;
    keys.push({ keyType, blob, fingerprint: fingerprint(blob) });
  }
  return keys;
}

/** Reads the pinned keys from the connection's known_hosts file; an OperatorError when there are none. */
export function readPinnedKeys(
  conn: Connection,
  { readFile = fs.readFileSync }: { readFile?: ReadTextFile } = {},
): PinnedKey[] {
  const { host, port, knownHostsFile } = sshParams(conn);
  if (!knownHostsFile) {
    throw new OperatorError(`the connection file pins no host key (${CONNECTION_KEYS.knownHostsFile} is empty)`, {
      cause: 'written by an older setup, or edited by hand; without a pinned key any host could answer',
      next: 're-run setup (it pins the key the instance printed on its console), or `npx zx scripts/local-target.mjs up` for the local target',
    });
  }
  let text: string;
  try {
    text = readFile(knownHostsFile, 'utf8');
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    throw new OperatorError(`cannot read the pinned host key file ${knownHostsFile}`, {
      cause: code === 'ENOENT' ? 'the file does not exist (moved or deleted)' : message,
      next: 're-run setup to pin the host key again',
    });
  }
  const keys = pinnedKeys(text, host, port);
  if (!keys.length) {
    throw new OperatorError(`${knownHostsFile} pins no key for ${knownHostsName(host, port)}`, {
      cause:
        'the host address or port changed since the key was pinned (a new instance or Elastic IP), or the file belongs to another target',
      next: 're-run setup to pin the key of the current host',
    });
  }
  return keys;
}

/**
 * A ssh2 hostVerifier that accepts only a pinned key (given the raw key blob, or its base64), and remembers in
 * `state` what the server offered so that a refusal can be explained.
 */
export function makeHostVerifier(pinned: PinnedKey[]): {
  verifier: (key: Buffer | string) => boolean;
  state: VerifierState;
} {
  const state: VerifierState = { offered: null, matched: false, pinned };
  const verifier = (key: Buffer | string): boolean => {
    const buf = Buffer.isBuffer(key) ? key : Buffer.from(String(key), 'base64');
    const b64 = buf.toString('base64');
    state.offered = { keyType: keyTypeOfBlob(buf), fingerprint: fingerprint(buf) };
    state.matched = pinned.some((p) => p.blob === b64);
    return state.matched;
  };
  return { verifier, state };
}

/** Host key mismatch: its own diagnosis, never something to click through. */
export function hostKeyMismatchError(
  conn: Connection,
  state: Pick<VerifierState, 'offered' | 'pinned'>,
): OperatorError {
  const { host, port, knownHostsFile } = sshParams(conn);
  return new OperatorError(
    `the host key of ${knownHostsName(host, port)} does NOT match the pinned key: not connecting`,
    {
      details: `offered:  ${state.offered?.keyType ?? '?'} ${state.offered?.fingerprint ?? '?'}\npinned:   ${state.pinned.map((p) => `${p.keyType} ${p.fingerprint}`).join(', ')} (${knownHostsFile})`,
      cause:
        "the host was replaced and is still booting (a new instance answers with its image's own key until its boot script puts the kept key back from the data volume, a minute or two), or it has a new identity (a data volume without the kept key), or something else answers at that address (possible man-in-the-middle)",
      next: 'do not accept the new key blindly: try again in two minutes; if it persists, re-run setup (it accepts the host when it presents the pinned key again, and stops with what changed when it does not); or compare with `aws ec2 get-console-output --latest --instance-id ID`',
      exitCode: 1,
    },
  );
}

/**
 * Classifies an error from connecting (ssh2 / net; anything thrown) into a kind and an OperatorError that
 * explains it. With the verifier's `state`, a refused host key is recognised whatever ssh2 made of it.
 */
export function classifyConnectError(
  err: unknown,
  conn: Connection,
  state: VerifierState | null = null,
): { kind: ConnectErrorKind; error: OperatorError } {
  const { host, port, user, keyFile } = sshParams(conn);
  const where = `${host}:${port}`;
  // net errors carry `code`, ssh2's carry `level`; anything else is read as its text
  const e = (err ?? {}) as { message?: unknown; code?: unknown; level?: unknown };
  const msg = String(e.message ?? err);
  const code = String(e.code ?? '');
  if (state && state.offered && !state.matched)
    return { kind: 'host-key-mismatch', error: hostKeyMismatchError(conn, state) };
  if (code === 'ECONNREFUSED') {
    return {
      kind: 'refused',
      error: new OperatorError(`nothing accepts SSH connections at ${where}`, {
        cause:
          'sshd is not running on the host (stopped, crashed, or the boot script has not reached it yet), or the port is wrong',
        next: 'look at the boot log: `npx zx scripts/troubleshoot.mjs check-logs` (it falls back to the EC2 console output); for the local target: `npx zx scripts/local-target.mjs status`',
      }),
    };
  }
  if (['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code) || /timed out|timeout/i.test(msg)) {
    return {
      kind: 'timeout',
      error: new OperatorError(`no answer from ${where} (${code || 'timeout'})`, {
        cause:
          'the instance is stopped or still booting, the security group does not allow your address, or the address changed',
        next: '`npx zx scripts/troubleshoot.mjs check-aws` shows the instance state; check that your public IP is in allowed_ssh_cidrs',
      }),
    };
  }
  if (['ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
    return {
      kind: 'dns',
      error: new OperatorError(`cannot resolve ${host}`, {
        cause: msg,
        next: `check ${CONNECTION_KEYS.host} in the connection file`,
      }),
    };
  }
  if (e.level === 'client-authentication' || /authentication methods failed/i.test(msg)) {
    return {
      kind: 'auth',
      error: new OperatorError(`${user}@${where} refused the key ${keyFile}`, {
        cause:
          'this is not the key whose public half the instance was given (ssh_public_key in terraform.tfvars), or the btrbk user was not created',
        next: `compare \`ssh-keygen -y -f ${keyFile}\` with ssh_public_key in terraform.tfvars; check the boot log (troubleshoot check-logs)`,
      }),
    };
  }
  if (/privateKey|private key|does not exist at given fs path|Cannot parse/i.test(msg)) {
    return {
      kind: 'key-file',
      error: new OperatorError(`cannot use the private key ${keyFile}`, {
        cause: msg,
        next: `check ${CONNECTION_KEYS.keyFile} points at the unencrypted private key that setup was given (ssh-keygen -y -f KEY prints its public half)`,
      }),
    };
  }
  if (/Host denied/i.test(msg))
    return { kind: 'host-key-mismatch', error: hostKeyMismatchError(conn, state ?? { offered: null, pinned: [] }) };
  return {
    kind: 'other',
    error: new OperatorError(`SSH to ${where} failed`, {
      cause: msg,
      next: 're-run with BTRBK_AWS_DEBUG=1, or try `ssh` by hand with the arguments from docs/TROUBLESHOOTING.md',
    }),
  };
}

/** Opens a TCP connection and closes it; never rejects. */
export function probeTcp(
  host: string,
  port: number,
  { timeoutMs = 5000 }: { timeoutMs?: number } = {},
): Promise<TcpProbeResult> {
  return new Promise((resolve) => {
    const start = Date.now();
    const sock = net.connect({ host, port });
    const done = (res: Omit<TcpProbeResult, 'ms'>) => {
      sock.destroy();
      resolve({ ...res, ms: Date.now() - start });
    };
    sock.setTimeout(timeoutMs, () => done({ ok: false, code: 'ETIMEDOUT' }));
    sock.once('connect', () => done({ ok: true }));
    sock.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code ?? err.message }));
  });
}

/**
 * Connects with node-ssh: pinned host key, the backup key, no agent, no password. Rejects with an
 * SshConnectError whose `kind` says what went wrong.
 */
export async function connectSsh(
  conn: Connection,
  {
    NodeSSHClass = NodeSSH,
    readyTimeout = 15000,
    readFile = fs.readFileSync,
  }: { NodeSSHClass?: SshClientClass; readyTimeout?: number; readFile?: ReadTextFile } = {},
): Promise<SshConnection> {
  const { host, port, user, keyFile } = sshParams(conn);
  let pinned: PinnedKey[];
  try {
    pinned = readPinnedKeys(conn, { readFile });
  } catch (err) {
    // readPinnedKeys throws only OperatorErrors (sshParams already passed above)
    (err as SshConnectError).kind = 'no-pin';
    throw err;
  }
  const { verifier, state } = makeHostVerifier(pinned);
  const ssh = new NodeSSHClass();
  try {
    await ssh.connect({
      host,
      port,
      username: user,
      privateKeyPath: keyFile,
      hostVerifier: verifier,
      readyTimeout,
      tryKeyboard: false,
      agent: undefined,
      agentForward: false,
    });
  } catch (err) {
    try {
      ssh.dispose();
    } catch {
      /* already closed */
    }
    const { kind, error } = classifyConnectError(err, conn, state);
    throw Object.assign(error, { kind }) satisfies SshConnectError;
  }
  return { ssh, hostKey: state.offered };
}

function sshOptionValue(v: string): string {
  return /\s|"/.test(v) ? `"${String(v).replace(/"/g, '')}"` : v;
}

/**
 * argv for the OpenSSH client (after "ssh"): pinned host key with strict checking, the backup key only, no
 * prompts. Append the remote command string as the last element.
 */
export function sshArgs(
  conn: Connection,
  { connectTimeout = 15, extra = [] }: { connectTimeout?: number; extra?: string[] } = {},
): string[] {
  const { host, port, user, keyFile, knownHostsFile } = sshParams(conn);
  if (!knownHostsFile) readPinnedKeys(conn); // throws the explanation
  return [
    '-i',
    keyFile,
    '-p',
    String(port),
    '-o',
    `UserKnownHostsFile=${sshOptionValue(knownHostsFile)}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'ForwardAgent=no',
    '-o',
    'ClearAllForwardings=yes',
    '-o',
    `ConnectTimeout=${connectTimeout}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
    ...extra,
    `${user}@${host}`,
  ];
}

/**
 * Runs one command through the gate with the OpenSSH client. ssh's exit status is 255 when ssh itself failed,
 * null when the timeout killed it. Never rejects for how it ended (callers decide), only when ssh cannot start.
 */
export async function runRemote(
  conn: Connection,
  command: string,
  { input, timeoutMs = 120000, run = runDefault }: RunRemoteOptions = {},
): Promise<RunResult> {
  const r = await run('ssh', [...sshArgs(conn), command], { input, timeoutMs });
  if (r.error)
    throw new OperatorError('cannot run ssh', {
      cause: r.error.message,
      next: 'install the OpenSSH client: sudo apt-get install openssh-client',
    });
  return r;
}
