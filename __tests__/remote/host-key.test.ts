import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  blobKeyType,
  consoleEd25519Fingerprint,
  fingerprintOfBlob,
  knownHostsLine,
  parseConsoleHostKeys,
  parseKeyscan,
  readKnownHosts,
  tcpProbe,
  verifyScannedKey,
  writeKnownHosts,
} from '../../scripts/lib/remote/host-key.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostkey-'));
/** Makes a host key with ssh-keygen; returns its public line, blob and `ssh-keygen -lf` fingerprint. */
function hostKey(type: string, name: string, bits?: string) {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    type,
    ...(bits ? ['-b', bits] : []),
    '-N',
    '',
    '-C',
    'root@ip-172-31-5-10',
    '-f',
    file,
  ]);
  const pub = fs.readFileSync(`${file}.pub`, 'utf8').trim();
  const lf = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).trim();
  return { pub, keyType: pub.split(' ')[0], blob: pub.split(' ')[1], fingerprint: lf.split(' ')[1], lf };
}
const ed = hostKey('ed25519', 'ed');
const ecdsa = hostKey('ecdsa', 'ecdsa', '256');
const rsa = hostKey('rsa', 'rsa', '3072');
const other = hostKey('ed25519', 'other');

/** Console output as Ubuntu 24.04 on EC2 prints it: kernel lines, cloud-init via syslog (<14>), the key blocks. */
function ubuntuConsole(k = { ed, ecdsa, rsa }) {
  const p = '<14>Nov 23 22:01:05 cloud-init:';
  return [
    '[    0.000000] Linux version 6.8.0-1016-aws (buildd@lcy02-amd64-031) (x86_64-linux-gnu-gcc-13) #17-Ubuntu SMP',
    "[   11.924112] cloud-init[582]: Cloud-init v. 24.1.3-0ubuntu3.3 running 'init' at Sun, 23 Nov 2026 22:00:58 +0000. Up 11.80 seconds.",
    '[   12.101540] cloud-init[582]: ci-info: ++++++++++++++++++++++++++++++++++++++Net device info+++++++++++++++++++++++++++++++++++++++',
    `${p} #############################################################`,
    `${p} -----BEGIN SSH HOST KEY FINGERPRINTS-----`,
    `${p} ${k.ecdsa.lf}`,
    `${p} ${k.ed.lf}`,
    `${p} ${k.rsa.lf}`,
    `${p} -----END SSH HOST KEY FINGERPRINTS-----`,
    `${p} #############################################################`,
    '-----BEGIN SSH HOST KEY KEYS-----',
    k.ecdsa.pub,
    k.ed.pub,
    k.rsa.pub,
    '-----END SSH HOST KEY KEYS-----',
    '[   25.402773] cloud-init[923]: Cloud-init v. 24.1.3-0ubuntu3.3 finished at Sun, 23 Nov 2026 22:01:12 +0000. Datasource DataSourceEc2Local.  Up 25.39 seconds',
  ].join('\r\n');
}

describe('fingerprints', () => {
  test.each([
    ['ed25519', ed],
    ['ecdsa', ecdsa],
    ['rsa', rsa],
  ])('%s: node:crypto gives what ssh-keygen -lf prints', (_t, k) => {
    expect(fingerprintOfBlob(k.blob)).toBe(k.fingerprint);
    expect(k.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(blobKeyType(k.blob)).toBe(k.keyType);
  });
});

describe('console output', () => {
  test('reads both blocks from an Ubuntu console with syslog prefixes and CRLF', () => {
    const parsed = parseConsoleHostKeys(ubuntuConsole());
    expect(parsed.fingerprints.map((f) => f.type)).toEqual(['ECDSA', 'ED25519', 'RSA']);
    expect(parsed.fingerprints[1]).toEqual({ type: 'ED25519', bits: 256, fingerprint: ed.fingerprint });
    expect(parsed.keys.map((k) => k.type)).toEqual(['ECDSA', 'ED25519', 'RSA']);
    expect(parsed.keys[1].fingerprint).toBe(ed.fingerprint);
    expect(consoleEd25519Fingerprint(parsed)).toBe(ed.fingerprint);
  });

  test('reads the "ec2: " prefixed form and uses the keys block when there is no fingerprint block', () => {
    const text = [
      'ec2: -----BEGIN SSH HOST KEY KEYS-----',
      `ec2: ${ed.pub}`,
      'ec2: -----END SSH HOST KEY KEYS-----',
    ].join('\n');
    expect(consoleEd25519Fingerprint(parseConsoleHostKeys(text))).toBe(ed.fingerprint);
  });

  test('lines outside the blocks, and a key line whose blob is another type, are ignored', () => {
    const text = [
      `${ed.pub}`,
      '-----BEGIN SSH HOST KEY KEYS-----',
      `ssh-ed25519 ${rsa.blob} root@x`,
      '-----END SSH HOST KEY KEYS-----',
    ].join('\n');
    expect(parseConsoleHostKeys(text)).toEqual({ fingerprints: [], keys: [] });
  });

  test('with several boots in the output, the newest block wins', () => {
    const text = `${ubuntuConsole({ ed: other, ecdsa, rsa })}\n${ubuntuConsole()}`;
    expect(consoleEd25519Fingerprint(parseConsoleHostKeys(text))).toBe(ed.fingerprint);
  });
});

describe('verifyScannedKey', () => {
  const scan = (k: typeof ed) =>
    parseKeyscan(`# 203.0.113.7:22 SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13.5\n203.0.113.7 ${k.keyType} ${k.blob}\n`);

  test('parseKeyscan reads ssh-keyscan output', () => {
    expect(scan(ed)).toEqual([
      { host: '203.0.113.7', keyType: 'ssh-ed25519', blob: ed.blob, fingerprint: ed.fingerprint },
    ]);
  });

  test('accepts the scanned key when it matches the console', () => {
    const v = verifyScannedKey(scan(ed), ubuntuConsole(), { host: '203.0.113.7', instanceId: 'i-0123456789abcdef0' });
    expect(v).toMatchObject({ ok: true, fingerprint: ed.fingerprint });
  });

  test('refuses a different key as a possible man-in-the-middle, naming both fingerprints', () => {
    let err: OperatorError | undefined;
    try {
      verifyScannedKey(scan(other), ubuntuConsole(), { host: '203.0.113.7', instanceId: 'i-0123456789abcdef0' });
    } catch (e) {
      err = e as OperatorError;
    }
    expect(err).toBeInstanceOf(OperatorError);
    expect(err?.what).toMatch(/does NOT match/);
    expect(err?.likelyCause).toMatch(/man-in-the-middle/);
    expect(err?.details).toContain(ed.fingerprint);
    expect(err?.details).toContain(other.fingerprint);
    expect(err?.next).toMatch(/get-console-output --instance-id i-0123456789abcdef0/);
  });

  test('says "pending" while the console has no fingerprints yet', () => {
    expect(verifyScannedKey(scan(ed), '[    0.000000] Linux version 6.8.0', { host: 'h' })).toMatchObject({
      ok: false,
      pending: true,
    });
  });

  test('no ed25519 key offered: an error, not a pin', () => {
    expect(() => verifyScannedKey(scan(ecdsa), ubuntuConsole(), { host: 'h' })).toThrow(/offered no ed25519 host key/);
  });
});

describe('known_hosts', () => {
  test("port 22 and other ports use OpenSSH's forms; ssh-keygen -F finds the pinned key", () => {
    const file = path.join(dir, 'known_hosts');
    writeKnownHosts(file, [
      knownHostsLine('203.0.113.7', 22, ed.keyType, ed.blob),
      knownHostsLine('127.0.0.1', 2222, other.keyType, other.blob),
    ]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o644);
    expect(execFileSync('ssh-keygen', ['-F', '203.0.113.7', '-f', file], { encoding: 'utf8' })).toContain(ed.blob);
    expect(execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', file], { encoding: 'utf8' })).toContain(
      other.blob,
    );
    expect(readKnownHosts(file).map((k) => [k.hosts[0], k.fingerprint])).toEqual([
      ['203.0.113.7', ed.fingerprint],
      ['[127.0.0.1]:2222', other.fingerprint],
    ]);
  });
});

describe('tcpProbe', () => {
  test('true for a listening loopback port, false for a closed one', async () => {
    const server = net.createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    expect(await tcpProbe('127.0.0.1', port, 2000)).toBe(true);
    await new Promise<void>((r) => server.close(() => r()));
    expect(await tcpProbe('127.0.0.1', port, 2000)).toBe(false);
  });
});
