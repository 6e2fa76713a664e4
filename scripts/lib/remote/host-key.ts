// Host key pinning: the instance's ed25519 host key is accepted only when its SHA256 fingerprint matches the one
// cloud-init printed on the instance's console (EC2 GetConsoleOutput, an authenticated AWS API), then written to a
// known_hosts file that every script uses with StrictHostKeyChecking=yes. This closes the first-connection
// man-in-the-middle gap of "accept whatever key answers".
import fs from 'node:fs';
import path from 'node:path';
import { OperatorError } from '../core/errors.js';
import { run } from '../core/process.js';
import { fingerprint, keyTypeOfBlob, knownHostsName, probeTcp } from './ssh.js';

/** A line of cloud-init's fingerprint block: "256 SHA256:xxx root@host (ED25519)". */
export interface ConsoleFingerprint {
  /** ED25519, RSA, ECDSA or DSA. */
  type: string;
  bits: number;
  fingerprint: string;
}

/** A line of cloud-init's keys block: "ssh-ed25519 AAAA... root@host". */
export interface ConsoleKey {
  /** ED25519, RSA or ECDSA (the fingerprint block's names). */
  type: string;
  /** As in the line, e.g. "ssh-ed25519". */
  keyType: string;
  blob: string;
  fingerprint: string;
}

/** The host keys the console shows, in console order (the last entry of a type is the newest). */
export interface ConsoleHostKeys {
  fingerprints: ConsoleFingerprint[];
  keys: ConsoleKey[];
}

/** A key ssh-keyscan reported. */
export interface ScannedKey {
  host: string;
  keyType: string;
  blob: string;
  fingerprint: string;
}

/**
 * verifyScannedKey's answer: the key to pin (its fingerprint matches the console's), or `pending` when the
 * console shows no fingerprint yet (ask again later).
 */
export type ScanVerdict =
  { ok: true; fingerprint: string; key: ScannedKey } | { ok: false; pending: true; scanned: ScannedKey };

/** A known_hosts line. */
export interface KnownHostsEntry {
  /** The comma-separated host field, split. */
  hosts: string[];
  keyType: string;
  blob: string;
  fingerprint: string;
}

/** SHA256 fingerprint as OpenSSH prints it (`ssh-keygen -lf`): "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprintOfBlob(base64Blob: string): string {
  if (!base64Blob) throw new Error('empty key blob');
  return fingerprint(base64Blob);
}

/** The key type stored inside a base64 blob (the first SSH string), e.g. "ssh-ed25519". */
export const blobKeyType = (base64Blob: string): string | null =>
  keyTypeOfBlob(Buffer.from(String(base64Blob), 'base64'));

const KEY_TYPE_NAMES: Readonly<Record<string, string>> = {
  'ssh-ed25519': 'ED25519',
  'ssh-rsa': 'RSA',
  'ecdsa-sha2-nistp256': 'ECDSA',
  'ecdsa-sha2-nistp384': 'ECDSA',
  'ecdsa-sha2-nistp521': 'ECDSA',
};
const KEY_LINE_RE = /(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(?:256|384|521))\s+([A-Za-z0-9+/]+={0,3})(?:\s|$)/;
const FP_LINE_RE = /(\d+)\s+(SHA256:[A-Za-z0-9+/]+)\s+.*\((ED25519|RSA|ECDSA|DSA)\)\s*$/;

/**
 * Reads the host keys cloud-init wrote to the console. Handles both blocks:
 *   -----BEGIN SSH HOST KEY FINGERPRINTS----- / 256 SHA256:xxx root@host (ED25519) / -----END ...
 *   -----BEGIN SSH HOST KEY KEYS-----          / ssh-ed25519 AAAA... root@host       / -----END ...
 * Console lines may carry prefixes ("ec2: ", "[   25.1] cloud-init[812]: ") and \r; blocks may repeat (reboots).
 * A key line whose blob holds another key type than the line names is skipped.
 */
export function parseConsoleHostKeys(consoleText: string): ConsoleHostKeys {
  const fingerprints: ConsoleFingerprint[] = [];
  const keys: ConsoleKey[] = [];
  let block: string | null = null;
  for (const raw of String(consoleText ?? '').split('\n')) {
    const line = raw.replace(/\r/g, '').replace(/\x1b\[[0-9;]*m/g, '');
    const marker = /-----(BEGIN|END) SSH HOST KEY (FINGERPRINTS|KEYS)-----/.exec(line);
    if (marker) {
      block = marker[1] === 'BEGIN' ? marker[2] : null;
      continue;
    }
    if (block === 'FINGERPRINTS') {
      const m = FP_LINE_RE.exec(line);
      if (m) fingerprints.push({ type: m[3], bits: Number(m[1]), fingerprint: m[2] });
    } else if (block === 'KEYS') {
      const m = KEY_LINE_RE.exec(line);
      if (m && blobKeyType(m[2]) === m[1])
        keys.push({ type: KEY_TYPE_NAMES[m[1]], keyType: m[1], blob: m[2], fingerprint: fingerprintOfBlob(m[2]) });
    }
  }
  return { fingerprints, keys };
}

/** The newest ED25519 fingerprint the console published (fingerprint block first, else the keys block), or null. */
export function consoleEd25519Fingerprint(parsed: ConsoleHostKeys): string | null {
  const fp = parsed.fingerprints.filter((f) => f.type === 'ED25519').at(-1);
  if (fp) return fp.fingerprint;
  return parsed.keys.filter((k) => k.type === 'ED25519').at(-1)?.fingerprint ?? null;
}

/** Parses `ssh-keyscan` output lines "host keytype blob" (comments, and blobs of another type, skipped). */
export function parseKeyscan(text: string): ScannedKey[] {
  return String(text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 3 && KEY_LINE_RE.test(`${f[1]} ${f[2]}`) && blobKeyType(f[2]) === f[1])
    .map(([host, keyType, blob]) => ({ host, keyType, blob, fingerprint: fingerprintOfBlob(blob) }));
}

/** known_hosts host field: "host" for port 22, "[host]:port" otherwise (OpenSSH's form). */
export const knownHostsHost = (host: string, port: number | string = 22): string => knownHostsName(host, port);

/** One known_hosts line pinning `blob` for host:port. */
export function knownHostsLine(host: string, port: number | string, keyType: string, blob: string): string {
  return `${knownHostsHost(host, port)} ${keyType} ${blob}`;
}

/**
 * Decides whether a scanned ed25519 key may be pinned by comparing it with the console's fingerprint. Throws an
 * OperatorError when no ed25519 key was scanned or none matches (possible man-in-the-middle); `host` and
 * `instanceId` name them in the messages.
 */
export function verifyScannedKey(
  scanned: ScannedKey[],
  consoleText: string,
  { host, instanceId }: { host?: string; instanceId?: string } = {},
): ScanVerdict {
  const ed = scanned.filter((k) => k.keyType === 'ssh-ed25519');
  if (!ed.length) {
    throw new OperatorError(`${host} offered no ed25519 host key`, {
      cause: 'sshd on the host is not the one the boot image configures, or the scan reached another machine',
      next: `run: ssh-keyscan -t ed25519 ${host}; then troubleshoot: npx zx scripts/troubleshoot.mjs check-logs`,
    });
  }
  const parsed = parseConsoleHostKeys(consoleText);
  const expected = consoleEd25519Fingerprint(parsed);
  if (!expected) return { ok: false, pending: true, scanned: ed[0] };
  const match = ed.find((k) => k.fingerprint === expected);
  if (!match) {
    throw new OperatorError(
      `the host key of ${host} does NOT match the one the instance printed on its console: not pinned`,
      {
        details: `console (${instanceId ?? 'instance'}): ${expected}\nscanned from ${host}: ${ed.map((k) => k.fingerprint).join(', ')}`,
        cause:
          'something between you and the instance answered instead of it (possible man-in-the-middle), or the address now belongs to another host',
        next: `do not connect; check the address in the stack outputs and the instance's console (aws ec2 get-console-output --instance-id ${instanceId ?? 'ID'} --latest), from another network; re-run setup when they agree`,
      },
    );
  }
  return { ok: true, fingerprint: expected, key: match };
}

/** Writes the known_hosts file atomically (mode 0644) with exactly the given lines; returns `file`. */
export function writeKnownHosts(file: string, lines: string[]): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${lines.join('\n')}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

/** Reads a known_hosts file; comment and marker (@revoked, @cert-authority) lines, and unreadable keys, are skipped. */
export function readKnownHosts(file: string): KnownHostsEntry[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('@'))
    .map((l) => l.split(/\s+/))
    .filter((f) => f.length >= 3 && blobKeyType(f[2]) === f[1])
    .map(([hosts, keyType, blob]) => ({
      hosts: hosts.split(','),
      keyType,
      blob,
      fingerprint: fingerprintOfBlob(blob),
    }));
}

/** One TCP connect attempt; resolves true when the port accepts within timeoutMs. */
export const tcpProbe = async (host: string, port: number | string, timeoutMs = 3000): Promise<boolean> =>
  (await probeTcp(host, Number(port), { timeoutMs })).ok;

/** Runs `ssh-keyscan -T 5 -t ed25519 -p PORT HOST`; resolves with its stdout (empty when nothing answered). */
export async function sshKeyscan(
  host: string,
  port: number | string = 22,
  { bin = 'ssh-keyscan', timeoutSec = 5 }: { bin?: string; timeoutSec?: number } = {},
): Promise<string> {
  const r = await run(bin, ['-T', String(timeoutSec), '-t', 'ed25519', '-p', String(port), host]);
  if (r.error)
    throw new OperatorError('ssh-keyscan could not run', {
      cause: r.error.message,
      next: 'install the OpenSSH client: sudo apt-get install openssh-client',
    });
  return r.stdout;
}
