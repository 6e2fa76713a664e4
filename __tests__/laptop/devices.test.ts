// The laptop side of devices (issue 20): the connection names its device, install/list/restore take --device (and
// --machine, its earlier name), the target directory follows the device, a key the target refuses gets the exact
// terraform.tfvars line, another device's key gets a clear refusal, and a manifest of the current install still
// loads. ssh is faked at the process boundary here (runResult); the laptop container's test runs the real one.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import {
  connectionFromEnv,
  formatConnection,
  parseEnvText,
  type Connection,
} from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import { parseBackupArgs } from '../../scripts/lib/laptop/args.js';
import {
  keyCheckOf,
  keyRefusedError,
  listingError,
  publicKeyOf,
  requireDeviceKey,
  tfvarsDeviceLine,
} from '../../scripts/lib/laptop/device-key.js';
import { manifestFile, manifestFor, planInstallFiles, readManifest } from '../../scripts/lib/laptop/install.js';
import { deviceTarget, FILES, targetFor } from '../../scripts/lib/laptop/layout.js';
import { BACKUP } from '../../scripts/lib/cli/entries/backup.js';

let dir: string;
let kh: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'laptop-devices-'));
  kh = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    kh,
    '203.0.113.7 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJyVTrPFI8Ir3h7aEJKAKV6AvXcKOsZKwfcFP8CqJSnF\n',
  );
});
/** The connection with a pinned known_hosts file (ssh's arguments need one). */
const pinned = (c: Connection): Connection => ({ ...c, knownHostsFile: kh });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const LEGACY_ENV = {
  BTRBK_AWS_HOST: '203.0.113.7',
  BTRBK_AWS_USER: 'btrbk',
  BTRBK_AWS_SSH_KEY: '/home/me/.ssh/btrbk_aws',
  BTRBK_AWS_TARGET: 'ssh://203.0.113.7/backup_volume/backups/',
  BTRBK_AWS_PATH: '/backup_volume/backups',
  BTRBK_AWS_INSTANCE_ID: 'i-0123456789abcdef0',
  BTRBK_AWS_VOLUME_ID: 'vol-0123456789abcdef0',
  BTRBK_AWS_REGION: 'us-west-1',
};
const legacy: Connection = connectionFromEnv(LEGACY_ENV);
const alpha: Connection = connectionFromEnv({
  ...LEGACY_ENV,
  BTRBK_AWS_SSH_KEY: '/home/me/.ssh/id_ed25519-alpha',
  BTRBK_AWS_TARGET: 'ssh://203.0.113.7/backup_volume/backups/alpha/',
  BTRBK_AWS_PATH: '/backup_volume/backups/alpha',
  BTRBK_AWS_DEVICE: 'alpha',
});

describe('the connection file names its device', () => {
  test('BTRBK_AWS_DEVICE is read into device, and written back after the known_hosts line', () => {
    expect(alpha.device).toBe('alpha');
    expect(alpha.extra).toBeUndefined();
    const text = formatConnection(alpha);
    expect(text).toMatch(/^BTRBK_AWS_KNOWN_HOSTS=.*\nBTRBK_AWS_DEVICE='alpha'\n$/m);
    expect(connectionFromEnv(parseEnvText(text))).toEqual(alpha);
  });

  test('a file without the key reads as before (no device) and is written exactly as before', () => {
    expect(legacy.device).toBeUndefined();
    expect('device' in legacy).toBe(false);
    const text = formatConnection(legacy);
    expect(text).not.toMatch(/DEVICE/);
    expect(text.trim().split('\n').at(-1)).toBe("BTRBK_AWS_KNOWN_HOSTS=''");
    expect(connectionFromEnv(parseEnvText(text))).toEqual(legacy);
  });
});

describe('which device, and where its backups go', () => {
  test("a device's connection: its own directory itself (not below it), whatever the host name", () => {
    expect(deviceTarget(alpha, undefined, undefined, 'somehost')).toEqual({
      device: 'alpha',
      targetDir: '/backup_volume/backups/alpha',
    });
    expect(deviceTarget(alpha, 'alpha', 'oldname', 'somehost').targetDir).toBe('/backup_volume/backups/alpha');
  });

  test("asking a device's connection for another device: an error naming both and the file to use", () => {
    let err: unknown;
    try {
      deviceTarget(alpha, 'bravo');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OperatorError);
    const e = err as OperatorError;
    expect(e.what).toBe(
      "the connection file is device alpha's (its key /home/me/.ssh/id_ed25519-alpha), not device bravo's",
    );
    expect(e.next).toMatch(/--env connection-bravo\.env/);
    expect(e.exitCode).toBe(2);
  });

  test('the single key: backups/NAME for --device, else the installed name, else the short host name (as --machine did)', () => {
    expect(deviceTarget(legacy, 'lap', 'old', 'host.example.org').targetDir).toBe('/backup_volume/backups/lap');
    expect(deviceTarget(legacy, undefined, 'old', 'host.example.org')).toEqual({
      device: 'old',
      targetDir: '/backup_volume/backups/old',
    });
    expect(deviceTarget(legacy, undefined, undefined, 'host.example.org').device).toBe('host');
  });

  test('status, list, restore and verify: the installed directory, unless the connection or --device says otherwise', () => {
    const installed = { machine: 'oldlap', targetDir: '/backup_volume/backups/oldlap' };
    expect(targetFor(legacy, undefined, installed)).toEqual({ device: 'oldlap', targetDir: installed.targetDir });
    expect(targetFor(legacy, 'other', installed).targetDir).toBe('/backup_volume/backups/other');
    expect(targetFor(alpha, undefined, installed).targetDir).toBe('/backup_volume/backups/alpha');
  });
});

describe('--device and --machine on the command line', () => {
  test('--device NAME for install, list and restore; --machine is its earlier name', () => {
    expect(parseBackupArgs(['install', '--subvolume', '/home', '--device', 'alpha']).device).toBe('alpha');
    expect(parseBackupArgs(['install', '--subvolume', '/home', '--machine', 'alpha']).device).toBe('alpha');
    expect(parseBackupArgs(['list', '--device', 'alpha']).device).toBe('alpha');
    expect(parseBackupArgs(['restore', '--subvolume', '/home', '--device', 'old']).device).toBe('old');
    expect(parseBackupArgs(['install', '--subvolume', '/home']).device).toBeUndefined();
  });

  test.each([
    [
      ['install', '--subvolume', '/home', '--device', 'a', '--machine', 'b'],
      /--device a and --machine b name two devices/,
    ],
    [['restore', '--subvolume', '/home', '--device', '../x'], /--device \.\.\/x: letters/],
    [['list', '--device', 'a..b'], /--device a\.\.b: no \.\./],
  ])('%j is refused with exit 2: %p', (argv, message) => {
    let err: unknown;
    try {
      parseBackupArgs(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OperatorError);
    expect((err as OperatorError).what).toMatch(message);
    expect((err as OperatorError).exitCode).toBe(2);
  });

  test('help: every verb that takes --device says what it is, and --machine says it is --device', () => {
    const verbs = (
      BACKUP.command as unknown as { verbs: { name: string; options?: { name: string; help: string }[] }[] }
    ).verbs;
    for (const name of ['install', 'list', 'restore']) {
      const opts = verbs.find((v) => v.name === name)?.options ?? [];
      expect(opts.find((o) => o.name === 'device')?.help).toMatch(/device/);
      expect(opts.find((o) => o.name === 'machine')?.help).toMatch(/--device by its earlier name/);
    }
    const install = verbs.find((v) => v.name === 'install')?.options ?? [];
    expect(install.find((o) => o.name === 'device')?.help).toMatch(/backups\/NAME.*carries on incrementally/);
  });
});

/** A fake ssh: the gate's `version` answer (or a refusal), and ssh-keygen -y. */
const fakeRun =
  (version: { status: number; stdout?: string; stderr?: string }, calls: string[][] = []): Run =>
  async (cmd, args) => {
    calls.push([cmd, ...args]);
    if (cmd === 'ssh') return runResult({ stdout: '', stderr: '', ...version });
    return runResult({ status: 1, stderr: `${cmd}: not faked` });
  };
const DENIED = { status: 255, stderr: 'btrbk@203.0.113.7: Permission denied (publickey).\n' };
const versionOf = (device?: string) => ({
  status: 0,
  stdout: `btrbk-ssh-gate 7 root=/backup_volume/backups${device ? `/${device}` : ''} mount=/backup_volume mode=append-only${device ? ` device=${device}` : ''}\n`,
});

describe("the target's word on the key", () => {
  test("the gate's version line: mode, and the device the host fixed the key to (none for the legacy key)", () => {
    expect(keyCheckOf(runResult(versionOf('alpha')))).toEqual({
      state: 'accepted',
      mode: 'append-only',
      device: 'alpha',
    });
    expect(keyCheckOf(runResult(versionOf()))).toEqual({ state: 'accepted', mode: 'append-only', device: null });
    expect(keyCheckOf(runResult(DENIED)).state).toBe('refused');
    expect(
      keyCheckOf(runResult({ status: 255, stderr: 'ssh: connect to host x port 22: Connection refused' })).state,
    ).toBe('unreachable');
  });

  test('the tfvars line is the devices map entry, the key quoted as HCL takes it', () => {
    expect(tfvarsDeviceLine('alpha', 'ssh-ed25519 AAAAC3Nza me@alpha\n')).toBe(
      '"alpha" = "ssh-ed25519 AAAAC3Nza me@alpha"',
    );
  });

  test('the public key: from KEY.pub, else derived with ssh-keygen -y (a real key)', async () => {
    const key = path.join(dir, 'id_ed25519-new');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@new', '-f', key]);
    const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim();
    expect(await publicKeyOf(key)).toBe(pub);
    fs.rmSync(`${key}.pub`);
    // ssh-keygen -y gives the key (with its comment since OpenSSH 8.x, without before)
    expect([pub, pub.replace(/ me@new$/, '')]).toContain(await publicKeyOf(key));
    expect(await publicKeyOf(path.join(dir, 'absent'))).toBeNull();
  });

  test('install with a key the target refuses: which device, which key, the exact line, deploy, install again; nothing written', async () => {
    const key = path.join(dir, 'id_ed25519-carol');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@carol', '-f', key]);
    const pub = fs.readFileSync(`${key}.pub`, 'utf8').trim();
    const conn = pinned({ ...legacy, keyFile: key });
    let err: unknown;
    try {
      await requireDeviceKey(conn, 'carol', { run: fakeRun(DENIED) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OperatorError);
    const e = err as OperatorError;
    expect(e.what).toBe(`the target refused the key ${key} of device carol`);
    expect(e.likelyCause).toMatch(/device carol is not in the stack's devices yet/);
    expect(e.details).toContain(`add this line to the devices map in terraform.tfvars`);
    expect(e.details).toContain(`    "carol" = "${pub}"`);
    expect(e.next).toMatch(/^add the line, deploy .*then run install again\. Nothing was installed\.$/);
    expect(e.format()).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('a device name the stack would not take gets no line, but how to pick one', () => {
    const e = keyRefusedError('My_Laptop', '/k', 'ssh-ed25519 AAAA');
    expect(e.details).not.toContain('" = "');
    expect(e.details).toMatch(/My_Laptop is not a device name the stack takes.*--device NAME/);
  });

  test("another device's key: refused for this device, naming both devices and the key, and what to do", async () => {
    const conn = pinned({ ...alpha, device: 'bravo', backupRoot: '/backup_volume/backups/bravo' });
    let err: unknown;
    try {
      await requireDeviceKey(conn, 'bravo', { run: fakeRun(versionOf('alpha')), verb: 'restore' });
    } catch (e) {
      err = e;
    }
    const e = err as OperatorError;
    expect(e.what).toBe(
      "the key /home/me/.ssh/id_ed25519-alpha is device alpha's key, not device bravo's: the target refuses it for bravo's backups",
    );
    expect(e.next).toMatch(/--env connection-bravo\.env/);
    expect(e.next).toMatch(/restore with --device bravo/);
  });

  test("a refused listing is explained by the key's story; an unreachable one is not asked again", async () => {
    const calls: string[][] = [];
    const e = await listingError(
      pinned(alpha),
      'bravo',
      { reason: 'the SSH gate refused the listing: rejected: ...', refused: true },
      { run: fakeRun(versionOf('alpha'), calls), verb: 'list' },
    );
    expect(e.what).toMatch(/is device alpha's key, not device bravo's/);
    expect(calls).toHaveLength(1);
    const calls2: string[][] = [];
    const e2 = await listingError(
      alpha,
      'alpha',
      { reason: 'the target did not answer in time', refused: false },
      { run: fakeRun(versionOf('alpha'), calls2), verb: 'list' },
    );
    expect(e2.what).toBe('cannot list the backups on the target');
    expect(e2.likelyCause).toBe('the target did not answer in time');
    expect(calls2).toEqual([]);
  });

  test('the legacy key (no device in its answer) and the right device key pass, with the host mode', async () => {
    expect((await requireDeviceKey(pinned(legacy), 'lap', { run: fakeRun(versionOf()) })).mode).toBe('append-only');
    expect((await requireDeviceKey(pinned(alpha), 'alpha', { run: fakeRun(versionOf('alpha')) })).mode).toBe(
      'append-only',
    );
    expect(
      (
        await requireDeviceKey(pinned(alpha), 'alpha', {
          run: fakeRun({ status: 255, stderr: 'Connection timed out' }),
        })
      ).mode,
    ).toBeNull();
  });
});

describe('the manifest', () => {
  const writeManifest = (content: unknown): string => {
    const root = fs.mkdtempSync(path.join(dir, 'manifest-'));
    fs.mkdirSync(path.join(root, path.dirname(FILES.manifest)), { recursive: true });
    fs.writeFileSync(path.join(root, FILES.manifest), JSON.stringify(content, null, 2));
    return root;
  };
  const inputs = {
    conn: alpha,
    envFile: '/root/connection-alpha.env',
    machine: 'alpha',
    device: 'alpha',
    targetDir: '/backup_volume/backups/alpha',
    sources: [{ subvolume: '/home', snapshotDir: '/.btrbk-aws-snapshots' }],
    interval: 'hourly',
    appendOnly: true,
    knownHosts: '[127.0.0.1]:2222 ssh-ed25519 AAAA\n',
    identity: 'KEY\n',
  };

  test('a device install records the device, and its installed connection keeps it (status, list, verify use it)', () => {
    const planned = planInstallFiles(inputs);
    const m = manifestFor(inputs, planned, [], '2026-12-05T00:00:00.000Z');
    expect(m).toMatchObject({ device: 'alpha', machine: 'alpha', targetDir: '/backup_volume/backups/alpha' });
    expect(m.connection.device).toBe('alpha');
    expect(planned.find((f) => f.path === FILES.connection)?.content).toMatch(/^BTRBK_AWS_DEVICE='alpha'$/m);
    const back = readManifest(writeManifest(JSON.parse(manifestFile(m).content)));
    expect(back?.device).toBe('alpha');
    expect(back?.connection.device).toBe('alpha');
    expect(targetFor(back!.connection, undefined, back)).toEqual({
      device: 'alpha',
      targetDir: '/backup_volume/backups/alpha',
    });
  });

  test("a manifest written before devices (machine, no device, the single key's connection) loads and keeps its directory", () => {
    const OLD = {
      version: 1,
      installedAt: '2026-11-30T04:18:00.000Z',
      envFile: '/root/aws_connection.env',
      connection: { ...LEGACY_ENV, BTRBK_AWS_SSH_KEY: FILES.identity, BTRBK_AWS_KNOWN_HOSTS: FILES.knownHosts },
      machine: 'oldlap',
      targetDir: '/backup_volume/backups/oldlap',
      sources: [{ subvolume: '/home', snapshotDir: '/.btrbk-aws-snapshots' }],
      createdSnapshotDirs: [],
      interval: 'hourly',
      appendOnly: true,
      btrbk: '/usr/bin/btrbk',
      notify: false,
      files: [FILES.btrbkConf, FILES.manifest],
    };
    const m = readManifest(writeManifest(OLD));
    expect(m?.device).toBeUndefined();
    expect(m?.connection.device).toBeUndefined();
    expect(targetFor(m!.connection, undefined, m)).toEqual({
      device: 'oldlap',
      targetDir: '/backup_volume/backups/oldlap',
    });
    // install again without --device: the same device and directory (the installed name wins over the host name)
    expect(deviceTarget(m!.connection, undefined, m!.device ?? m!.machine, 'newhost').targetDir).toBe(
      '/backup_volume/backups/oldlap',
    );
  });
});
