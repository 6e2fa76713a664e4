// Which device a key is, as the target says (the gate's `version` names the device the host fixed to the key), and
// the messages for a key the target refuses or a key of another device: which device, which key, what to do. The
// printed terraform.tfvars line (the stack's `devices` map) carries the key's public half.
import fs from 'node:fs';
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { run as runDefault, type Run, type RunResult } from '../core/process.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import { runRemote } from '../remote/ssh.js';
import { isDeviceName } from './layout.js';
import { sshFailureReason } from './target.js';

/** What the target said of the key: it let it in (mode, and the device it is fixed to, null for the legacy key), refused it, or did not answer. */
export type KeyCheck =
  | { state: 'accepted'; mode: string; device: string | null }
  | { state: 'refused'; reason: string }
  | { state: 'unreachable'; reason: string };

/** Reads the gate's `version` line: `btrbk-ssh-gate V root=... mount=... mode=M[ device=NAME]`. */
export function parseGateVersion(stdout: string): { mode: string; device: string | null } {
  return {
    mode: /\bmode=(\S+)/.exec(stdout)?.[1] ?? 'append-only',
    device: /\bdevice=(\S+)/.exec(stdout)?.[1] ?? null,
  };
}

/** The key check from ssh's result of the gate's `version`. */
export function keyCheckOf(r: RunResult): KeyCheck {
  if (r.status === 0) return { state: 'accepted', ...parseGateVersion(r.stdout) };
  const text = `${r.error?.message ?? ''}\n${r.stderr}`;
  if (/Permission denied/i.test(text)) return { state: 'refused', reason: sshFailureReason(r) };
  return { state: 'unreachable', reason: sshFailureReason(r) };
}

/** Asks the gate which device the connection's key is (one ssh, the read-only `version` diagnostic). */
export async function checkKey(conn: Connection, { run = runDefault }: { run?: Run } = {}): Promise<KeyCheck> {
  try {
    const r = await runRemote(conn, gateLine(GATE_COMMANDS.diagnostic('version')), { timeoutMs: 30000, run });
    return keyCheckOf(r);
  } catch (err) {
    return { state: 'unreachable', reason: (err as Error).message };
  }
}

/** The key's public half: KEY.pub, else derived with ssh-keygen -y (null when neither works, e.g. a passphrase). */
export async function publicKeyOf(keyFile: string, { run = runDefault }: { run?: Run } = {}): Promise<string | null> {
  const pub = `${keyFile}.pub`;
  if (fs.existsSync(pub)) {
    const line = fs.readFileSync(pub, 'utf8').trim().split('\n')[0]?.trim();
    if (line) return line;
  }
  const r = await run('ssh-keygen', ['-y', '-P', '', '-f', keyFile]);
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim().split('\n')[0] : null;
}

/** The line for the `devices` map in terraform.tfvars: `"NAME" = "ssh-ed25519 AAAA... comment"`. */
export const tfvarsDeviceLine = (device: string, publicKey: string): string =>
  `"${device}" = ${JSON.stringify(publicKey.trim())}`;

/**
 * The target refused the key: the device is not in the stack's `devices` yet (or has another key there). Says
 * which device and key, prints the exact line to add, and the next steps; nothing was installed.
 */
export function keyRefusedError(
  device: string,
  keyFile: string,
  publicKey: string | null,
  { verb = 'install', reason = '' }: { verb?: string; reason?: string } = {},
): OperatorError {
  const validName = isDeviceName(device);
  const line = publicKey && validName ? tfvarsDeviceLine(device, publicKey) : null;
  const details = [
    line
      ? `add this line to the devices map in terraform.tfvars (devices = { ... }):\n    ${line}`
      : !validName
        ? `${device} is not a device name the stack takes (lowercase letters, digits and ._- , starting with a letter or digit): pick one with --device NAME`
        : `the public half of ${keyFile} could not be read (no ${keyFile}.pub, and ssh-keygen -y failed): write it with ssh-keygen -y -f ${keyFile} > ${keyFile}.pub and run ${verb} again for the line`,
    reason ? `(ssh: ${reason})` : '',
  ]
    .filter(Boolean)
    .join('\n');
  return new OperatorError(`the target refused the key ${keyFile} of device ${device}`, {
    cause: `device ${device} is not in the stack's devices yet (or is there with another key, or was removed)`,
    details,
    next:
      verb === 'install'
        ? `add the line, deploy (npx zx scripts/setup.mjs, or README's "Deploy to AWS" command; on the local target: local-target.mjs up with the device), then run install again. Nothing was installed.`
        : `device ${device}'s backups are reached only with device ${device}'s key: use its connection file (--env) with that key; if the device was removed, add it back with the line above and deploy (its backups are kept, frozen)`,
  });
}

/** The key is another device's: the host fixed it to `keyDevice`, and it reaches only that device's backups. */
export function otherDeviceKeyError(wanted: string, keyDevice: string, keyFile: string): OperatorError {
  return new OperatorError(
    `the key ${keyFile} is device ${keyDevice}'s key, not device ${wanted}'s: the target refuses it for ${wanted}'s backups`,
    {
      cause: `the host fixes each key to its own device; ${keyDevice}'s key reaches only backups/${keyDevice}`,
      next: `use device ${wanted}'s own connection file and key (--env connection-${wanted}.env); on a new machine after a lost one, give it a new key as device ${wanted} in the stack's devices (deploy), then restore with --device ${wanted}`,
    },
  );
}

/**
 * The key check's verdict for `device`: an error when the target refused the key or fixed it to another device;
 * otherwise the host's mode (null when it did not answer: the caller decides what that means).
 */
export async function requireDeviceKey(
  conn: Connection,
  device: string,
  { run = runDefault, verb = 'install' }: { run?: Run; verb?: string } = {},
): Promise<{ mode: string | null; check: KeyCheck }> {
  const check = await checkKey(conn, { run });
  const problem = await problemOf(check, conn, device, { run, verb });
  if (problem) throw problem;
  return { mode: check.state === 'accepted' ? check.mode : null, check };
}

async function problemOf(
  check: KeyCheck,
  conn: Connection,
  device: string,
  { run, verb }: { run: Run; verb: string },
): Promise<OperatorError | null> {
  if (check.state === 'refused')
    return keyRefusedError(device, conn.keyFile, await publicKeyOf(conn.keyFile, { run }), {
      verb,
      reason: check.reason,
    });
  if (check.state === 'accepted' && check.device !== null && check.device !== device)
    return otherDeviceKeyError(device, check.device, conn.keyFile);
  return null;
}

/** Why the key cannot reach `device`'s backups (refused, or another device's key); null when that is not it. */
export async function keyProblem(
  conn: Connection,
  device: string,
  { run = runDefault, verb = 'install' }: { run?: Run; verb?: string } = {},
): Promise<OperatorError | null> {
  return problemOf(await checkKey(conn, { run }), conn, device, { run, verb });
}

/**
 * The error for a listing that failed: when the target refused it, the key's own story (refused, or another
 * device's key) if that is what happened; else "cannot list" with the reason.
 */
export async function listingError(
  conn: Connection,
  device: string,
  listing: { reason: string; refused: boolean },
  { run = runDefault, verb }: { run?: Run; verb: string },
): Promise<OperatorError> {
  const p = listing.refused ? await keyProblem(conn, device, { run, verb }) : null;
  return (
    p ??
    new OperatorError('cannot list the backups on the target', {
      cause: listing.reason,
      next: 'npx zx scripts/troubleshoot.mjs check-ssh',
    })
  );
}
