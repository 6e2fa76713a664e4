// The boot script, run for real by the local target (root, btrfs, a systemd-nspawn container, a loop-device
// volume, real sshd). globalSetup has brought the test target up; tests that stop it bring it back up healthy.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BOOT_SCRIPT_IN_CONTAINER,
  PAYLOAD_IN_CONTAINER,
  down,
  execInTarget,
  localTargetPaths,
  newVolumeId,
  parseMarker,
  rerunBootScript,
  status,
  up,
} from '../../scripts/lib/local-target/local-target.js';
import { jest } from '@jest/globals';
import { readConnection } from '../../scripts/lib/core/connection.js';
import {
  BACKUP_ROOT,
  BOOT_LOG,
  FAILED_MARKER,
  GATE_PATH,
  MOUNT_POINT,
  READY_MARKER,
  STATE_DIR,
  SUDOERS_PATH,
} from '../../user-data/host-layout.js';
import { installedText, renderBootScript, renderHostPayload } from '../../user-data/render.js';
import { gzipSync } from 'node:zlib';
import { contentDigest } from '../support/file-bytes.js';

jest.setTimeout(300_000);

const paths = localTargetPaths();
const conn = () => readConnection(paths.envFile);

function inTarget(...argv: string[]): string {
  const r = execInTarget(argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

function ssh(user: string, command: string, extra: string[] = []) {
  const c = conn();
  return spawnSync(
    'ssh',
    [
      '-p',
      String(c.port),
      '-i',
      c.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${c.knownHostsFile}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      '-F',
      '/dev/null',
      ...extra,
      `${user}@${c.host}`,
      command,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  );
}

const CONFIG_FILES = [
  '/etc/fstab',
  '/home/btrbk/.ssh/authorized_keys',
  SUDOERS_PATH,
  '/etc/ssh/sshd_config.d/00-btrbk-backup-host.conf',
  GATE_PATH,
  '/etc/passwd',
  '/etc/group',
];
const fileStates = () =>
  inTarget('stat', '-c', '%n %U:%G %a %s', ...CONFIG_FILES) + inTarget('sha256sum', ...CONFIG_FILES);

describe('after up (local target, root)', () => {
  test('the target is running and healthy, with the connection file written', async () => {
    const s = await status();
    expect(s).toMatchObject({ running: true, healthy: true, mounted: true });
    expect(s.boot.ready?.version).toMatch(/^\d+$/);
    expect(s.boot.failed).toBeNull();
    const c = conn();
    expect(c).toMatchObject({
      host: '127.0.0.1',
      user: 'btrbk',
      backupRoot: BACKUP_ROOT,
      instanceId: 'local-target',
      region: 'local',
    });
    expect(c.targetUrl).toBe(`ssh://127.0.0.1:${c.port}${BACKUP_ROOT}/`);
    expect(c.volumeId).toMatch(/^vol-0[0-9a-f]{16}$/);
    expect(fs.readFileSync(c.knownHostsFile, 'utf8')).toMatch(
      new RegExp(`^\\[127\\.0\\.0\\.1\\]:${c.port} ssh-ed25519 AAAA\\S+\\n$`),
    );
  });

  test('the volume is btrfs labelled btrbk-backup, found by its EBS by-id name and mounted at /backup_volume', () => {
    const byId = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${conn().volumeId.replace('-', '')}`;
    expect(inTarget('blkid', '-p', '-o', 'export', byId)).toMatch(/^TYPE=btrfs$/m);
    expect(inTarget('blkid', '-p', '-o', 'value', '-s', 'LABEL', byId).trim()).toBe('btrbk-backup');
    const [fstype, options] = inTarget('findmnt', '-n', '-o', 'FSTYPE,OPTIONS', MOUNT_POINT).trim().split(/\s+/);
    expect(fstype).toBe('btrfs');
    expect(options.split(',')).toEqual(expect.arrayContaining(['noatime', 'compress=zstd:1']));
    expect(inTarget('stat', '-c', '%U:%G %a', MOUNT_POINT, BACKUP_ROOT)).toBe('root:root 755\nbtrbk:btrbk 750\n');
  });

  test('fstab has exactly one line for /backup_volume, by UUID, with nofail', () => {
    const fstab = inTarget('cat', '/etc/fstab');
    const lines = fstab.split('\n').filter((l) => !l.trim().startsWith('#') && l.split(/\s+/)[1] === MOUNT_POINT);
    expect(lines).toHaveLength(1);
    const uuid = inTarget('findmnt', '-n', '-o', 'UUID', MOUNT_POINT).trim();
    expect(lines[0]).toBe(
      `UUID=${uuid} ${MOUNT_POINT} btrfs defaults,noatime,compress=zstd:1,nosuid,nodev,noexec,nofail,x-systemd.device-timeout=60s 0 0`,
    );
    // what is mounted has them too: nothing a send stream writes can be setuid, a device or run
    expect(
      inTarget('findmnt', '-n', '-o', 'OPTIONS', MOUNT_POINT)
        .split(',')
        .map((o) => o.trim()),
    ).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
  });

  test('the btrbk user holds one key, behind restrict and the forced command', () => {
    const [, , uid, , , home, shell] = inTarget('getent', 'passwd', 'btrbk').trim().split(':');
    expect(Number(uid)).toBeLessThan(1000);
    expect([home, shell]).toEqual(['/home/btrbk', '/bin/sh']);
    expect(inTarget('getent', 'shadow', 'btrbk').split(':')[1]).toBe('*');
    const keys = inTarget('cat', '/home/btrbk/.ssh/authorized_keys');
    const pub = fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim();
    expect(keys).toBe(`restrict,command="${GATE_PATH}" ${pub}\n`);
    expect(
      inTarget('stat', '-c', '%n %U %a', '/home/btrbk', '/home/btrbk/.ssh', '/home/btrbk/.ssh/authorized_keys'),
    ).toBe('/home/btrbk root 755\n/home/btrbk/.ssh root 755\n/home/btrbk/.ssh/authorized_keys root 644\n');
    expect(inTarget('stat', '-c', '%U:%G %a', GATE_PATH)).toBe('root:root 755\n');
  });

  test('sudoers: the fragment is root 0440 and sudo accepts the whole configuration (visudo -c)', () => {
    expect(inTarget('stat', '-c', '%U:%G %a', SUDOERS_PATH)).toBe('root:root 440\n');
    expect(execInTarget(['visudo', '-c']).status).toBe(0);
    // append-only (the default): the delete rule is not installed
    expect(inTarget('cat', SUDOERS_PATH)).toBe(
      installedText('sudoers-btrbk')
        .split('\n')
        .filter((l) => !l.includes('BTRBK_DELETE'))
        .join('\n'),
    );
    // the one delete rule left is the tools' scratch area's
    expect(
      inTarget('cat', SUDOERS_PATH)
        .split('\n')
        .filter((l) => /delete/.test(l) && !l.includes('BTRBK_SELFTEST_DELETE')),
    ).toEqual([]);
  });

  test("sshd's effective settings: public keys only, no root, the gate forced, no forwarding or tty for btrbk", () => {
    const all = inTarget('sshd', '-T', '-C', 'user=someone,host=x,addr=127.0.0.1');
    expect(all).toMatch(/^passwordauthentication no$/m);
    expect(all).toMatch(/^kbdinteractiveauthentication no$/m);
    expect(all).toMatch(/^permitrootlogin no$/m);
    const btrbk = inTarget('sshd', '-T', '-C', 'user=btrbk,host=x,addr=127.0.0.1');
    for (const line of [
      `forcecommand ${GATE_PATH}`,
      'permittty no',
      'allowtcpforwarding no',
      'allowagentforwarding no',
      'x11forwarding no',
      'permittunnel no',
      'allowstreamlocalforwarding no',
      'authenticationmethods publickey',
    ]) {
      expect(btrbk.split('\n')).toContain(line);
    }
  });

  test('sshd offers only what a current OpenSSH client uses: one ed25519 host key, modern kex, AEAD ciphers, etm MACs', () => {
    const eff = inTarget('sshd', '-T', '-C', 'user=btrbk,host=x,addr=127.0.0.1').split('\n');
    expect(eff.filter((l) => l.startsWith('hostkey '))).toEqual(['hostkey /etc/ssh/ssh_host_ed25519_key']);
    expect(eff).toContain('hostkeyalgorithms ssh-ed25519');
    expect(eff).toContain(
      'kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org',
    );
    expect(eff).toContain('ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com');
    expect(eff).toContain('macs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com');
  });

  test("ssh-audit (Debian's package) against the target finds no failing algorithm, and warns only where it is older than OpenSSH", () => {
    const r = spawnSync('ssh-audit', ['-n', '-p', String(conn().port), '127.0.0.1'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.error).toBeUndefined();
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => /\[fail\]/.test(l))).toEqual([]);
    // ssh-audit 2.5.0 (Debian 12) still calls the post-quantum hybrid "experimental" and does not know OpenSSH's
    // strict-kex marker (the Terrapin countermeasure); both are wanted here
    const warned = lines.filter((l) => /\[warn\]/.test(l)).map((l) => l.replace(/^\((\w+)\) (\S+).*$/, '$1 $2'));
    expect(
      warned.filter((w) => !['kex sntrup761x25519-sha512@openssh.com', 'kex kex-strict-s-v00@openssh.com'].includes(w)),
    ).toEqual([]);
    expect(r.stdout).toMatch(/\(key\) ssh-ed25519/);
    expect(r.stdout).toMatch(/\(kex\) sntrup761x25519-sha512@openssh\.com/);
  });

  test('over real SSH: password logins and root are refused, the backup key reaches only the gate', () => {
    const password = ssh('btrbk', 'true', [
      '-o',
      'PreferredAuthentications=password,keyboard-interactive',
      '-o',
      'PubkeyAuthentication=no',
    ]);
    expect(password.status).toBe(255);
    expect(password.stderr).toMatch(/Permission denied \(publickey\)/);
    const root = ssh('root', 'true');
    expect(root.status).toBe(255);
    expect(root.stderr).toMatch(/Permission denied \(publickey\)/);
    const shell = ssh('btrbk', 'id');
    expect(shell.status).toBe(255);
    expect(shell.stdout).toBe('');
    expect(shell.stderr).toMatch(/rejected/);
    const pty = ssh('btrbk', `sudo -n btrfs subvolume list ${BACKUP_ROOT}`, ['-tt']);
    expect(pty.stderr).toMatch(/PTY allocation request failed/);
    const list = ssh('btrbk', `sudo -n btrfs subvolume list '${BACKUP_ROOT}'`);
    expect(list.stderr).toBe('');
    expect(list.status).toBe(0);
  });

  test('the boot log is 0644, ends with the success line, and the ready marker names the version', () => {
    expect(inTarget('stat', '-c', '%a', BOOT_LOG)).toBe('644\n');
    const lastLine = inTarget('tail', '-n', '1', BOOT_LOG);
    expect(lastLine).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ btrbk-backup-host\[finished\]: btrbk-backup-host: SUCCESS \(version \d+\)/,
    );
    const ready = parseMarker(inTarget('cat', READY_MARKER));
    expect(ready.volume_id).toBe(conn().volumeId);
    expect(Date.parse(ready.completed)).toBeGreaterThan(0);
    expect(execInTarget(['test', '-e', FAILED_MARKER]).status).toBe(1);
  });
});

describe('the boot script run again (local target, root)', () => {
  test('changes nothing, duplicates nothing, and says so', async () => {
    const before = fileStates();
    const r = await rerunBootScript();
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/btrbk-backup-host: SUCCESS \(version \d+\) in \d+ s; nothing changed$/m);
    expect(r.output).not.toMatch(/changed:/);
    expect(fileStates()).toBe(before);
    expect(inTarget('grep', '-c', ` ${MOUNT_POINT} `, '/etc/fstab').trim()).toBe('1');
    expect(inTarget('grep', '-c', '^btrbk:', '/etc/passwd').trim()).toBe('1');
    expect(inTarget('grep', '-c', '^', '/home/btrbk/.ssh/authorized_keys').trim()).toBe('1');
    expect((await status()).healthy).toBe(true);
  });

  test("the clock source: the container has no time daemon (its host's clock); with chrony's directory, the Amazon Time Sync Service is chrony's preferred source", async () => {
    expect(inTarget('cat', BOOT_LOG)).toMatch(/\[time\]: neither chrony nor systemd-timesyncd on this image/);
    // as on Ubuntu 24.04, which runs chrony: a source file in /etc/chrony/sources.d, chrony told to reload
    inTarget('mkdir', '/etc/chrony');
    try {
      const r = await rerunBootScript();
      expect(r.status).toBe(0);
      expect(r.output).toMatch(/\[time\]: changed: chrony: server 169\.254\.169\.123 \(prefer\)/);
      expect(r.output).toMatch(/\[time\]: WARNING: chrony did not reload/); // no chronyd in the container
      expect(inTarget('cat', '/etc/chrony/sources.d/btrbk-amazon-time-sync.sources')).toBe(
        'server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4\n',
      );
      expect((await rerunBootScript()).output).not.toMatch(/\[time\]: changed/);
    } finally {
      inTarget('rm', '-rf', '/etc/chrony');
    }
  });

  test('a run that rewrote the sshd drop-in and stopped before the reload owes it: the next run reloads sshd, though it finds the file unchanged', async () => {
    const dropin = '/etc/ssh/sshd_config.d/00-btrbk-backup-host.conf';
    const pending = `${STATE_DIR}/sshd-reload-pending`;
    const winner = '/etc/ssh/sshd_config.d/00-a-test-first.conf'; // sorts first: its Match value wins
    // an older drop-in (the run rewrites it), and another file that makes the effective check stop the run
    inTarget('sed', '-i', '1i # an older version of this file', dropin);
    inTarget('sh', '-c', `printf 'Match User btrbk\\n  PermitTTY yes\\n' > ${winner}`);
    try {
      const stopped = await rerunBootScript();
      expect(stopped.status).not.toBe(0);
      expect(stopped.output).toMatch(/sshd's effective configuration for btrbk lacks 'permittty no'/);
      expect(stopped.output).not.toMatch(/reloaded ssh|SIGHUP/); // it stopped before the reload
      expect(inTarget('sh', '-c', `test -e ${pending} && echo owed`).trim()).toBe('owed');
    } finally {
      inTarget('rm', '-f', winner);
    }
    // before the fix, this run found the drop-in unchanged and said "nothing changed": sshd kept its old settings
    const next = await rerunBootScript();
    expect(next.status).toBe(0);
    expect(next.output).toMatch(
      /\[sshd\]: changed: sshd reloaded: an earlier run wrote \/etc\/ssh\/sshd_config\.d\/00-btrbk-backup-host\.conf and stopped before sshd reloaded it/,
    );
    expect(next.output).toMatch(/reloaded ssh(d)?\.service|sent SIGHUP to sshd/);
    expect(inTarget('sh', '-c', `test -e ${pending} && echo owed || echo paid`).trim()).toBe('paid');
    const again = await rerunBootScript();
    expect(again.output).toMatch(/SUCCESS \(version \d+\) in \d+ s; nothing changed$/m);
    expect((await status()).healthy).toBe(true);
  });
});

/**
 * Runs the boot script, rendered for another volume id, inside the running target but in a private mount
 * namespace: the volume's by-id node, the state dir and /var/log are private tmpfs there, so a refusal cannot
 * disturb the test target. The device is a real loop device on a real image.
 */
function runOnForeignVolume(
  image: string,
  settings: { volumeId?: string; backupSshPublicKey?: string; adminSshPublicKey?: string; noDevice?: boolean } = {},
) {
  const loop = spawnSync('losetup', ['--find', '--show', image], { encoding: 'utf8' });
  expect(loop.status).toBe(0);
  const dev = loop.stdout.trim();
  try {
    const rdev = fs.statSync(dev).rdev;
    const major = (rdev >> 8) & 0xfff;
    const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
    const volumeId = settings.volumeId ?? newVolumeId();
    const script = renderBootScript({
      volumeId,
      backupSshPublicKey: settings.backupSshPublicKey ?? fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim(),
      adminSshPublicKey: settings.adminSshPublicKey,
    });
    const node = `/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`;
    const wrapper = [
      'set -e',
      'mount -t tmpfs tmpfs /dev/disk/by-id',
      `mount -t tmpfs tmpfs ${STATE_DIR}`,
      'mount -t tmpfs tmpfs /var/log',
      /^vol-[0-9a-f]+$/.test(volumeId) && !settings.noDevice ? `mknod ${node} b ${major} ${minor}` : ':',
      `cat > ${STATE_DIR}/script`,
      'set +e',
      `BTRBK_VOLUME_WAIT_SECONDS=4 bash ${STATE_DIR}/script; rc=$?`,
      `echo "@@failed-marker"; cat ${FAILED_MARKER} 2>/dev/null; ls ${STATE_DIR}`,
      'exit $rc',
    ].join('\n');
    return execInTarget(['unshare', '--mount', '--propagation', 'private', 'bash', '-c', `${wrapper}`], {
      input: script,
      timeout: 120_000,
    });
  } finally {
    spawnSync('losetup', ['-d', dev]);
  }
}

describe('volumes the boot script must not format (local target, root)', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-foreign-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const image = (name: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, 300 * 2 ** 20);
    return file;
  };
  const expectRefused = (r: { status: number | null; stdout: string }, what: RegExp) => {
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/ERROR: REFUSING to format/);
    expect(r.stdout).toMatch(what);
    expect(r.stdout).toMatch(/btrbk-backup-host: FAILED at step 'filesystem'/);
    expect(r.stdout.split('@@failed-marker')[1]).toMatch(/^step=filesystem$/m);
    expect(r.stdout.split('@@failed-marker')[1]).not.toMatch(/^ready$/m);
  };

  test('an ext4 volume is refused and left byte-for-byte intact', () => {
    const file = image('ext4.img');
    expect(spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'somebodys-data', file]).status).toBe(0);
    const sum = contentDigest(file);
    expectRefused(runOnForeignVolume(file), /TYPE=ext4/);
    expect(contentDigest(file)).toBe(sum);
  });

  test('a volume with only a partition table (no filesystem) is refused', () => {
    const file = image('mbr.img');
    // a DOS partition table with one Linux partition (2048 + 200 MiB), no filesystem anywhere
    const mbr = Buffer.alloc(512);
    mbr[446 + 4] = 0x83;
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(200 * 2048, 446 + 12);
    mbr[510] = 0x55;
    mbr[511] = 0xaa;
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, mbr, 0, 512, 0);
    fs.closeSync(fd);
    const sum = contentDigest(file);
    expectRefused(runOnForeignVolume(file), /PTTYPE=dos/);
    expect(contentDigest(file)).toBe(sum);
  });

  test('a volume with data in no known format (first MiB not zero) is refused', () => {
    const file = image('data.img');
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from('precious bytes that are not a filesystem'), 0, undefined, 4096);
    fs.closeSync(fd);
    const sum = contentDigest(file);
    expectRefused(runOnForeignVolume(file), /first MiB is not zero/);
    expect(contentDigest(file)).toBe(sum);
  });

  test('bad settings stop the script at the settings step, before anything is touched', () => {
    const file = image('blank.img');
    for (const settings of [
      { volumeId: 'vol-XYZ' },
      { backupSshPublicKey: 'ssh-rsa AAAAB3NzaC1yc2E= x' },
      { adminSshPublicKey: 'ssh-ed25519 short' },
      {
        backupSshPublicKey: `${fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim()}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8m0Xh7y2mVJ3p0c8t8tq7s2l4z3T0j3a1cQ9bV0hX4 injected`,
      },
    ]) {
      const r = runOnForeignVolume(file, settings);
      expect(r.status).toBe(1);
      expect(r.stdout).toMatch(/btrbk-backup-host: FAILED at step 'settings'/);
    }
    expect(fs.statSync(file).blocks).toBe(0); // still sparse and empty: nothing was written
  });

  test('a missing volume times out with an error naming the id and what to check', () => {
    const file = image('other.img');
    const r = runOnForeignVolume(file, { volumeId: 'vol-0123456789abcdef0', noDevice: true });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/ERROR: volume vol-0123456789abcdef0 did not appear within 4 s/);
    expect(r.stdout).toMatch(/aws ec2 describe-volumes --volume-ids vol-0123456789abcdef0/);
    expect(r.stdout).toMatch(/FAILED at step 'volume'/);
  });

  test('the test target is untouched by these refusals', async () => {
    const s = await status();
    expect(s.healthy).toBe(true);
    expect(inTarget('tail', '-n', '1', BOOT_LOG)).toMatch(/SUCCESS/);
  });
});

describe('an instance replacement: down, then up (local target, root)', () => {
  test('down leaves nothing mounted or attached; the data on the volume survives up (no reformat)', async () => {
    const marker = `kept across down/up ${Date.now()}`;
    inTarget('sh', '-c', `printf '%s' '${marker}' > ${MOUNT_POINT}/.local-target-test-marker`);
    const uuid = inTarget('findmnt', '-n', '-o', 'UUID', MOUNT_POINT).trim();
    const oldHostKey = fs.readFileSync(conn().knownHostsFile, 'utf8');

    const d = await down();
    expect(d).toMatchObject({ wasRunning: true, purged: false, volumeKept: true });
    const s = await status();
    expect(s).toMatchObject({ running: false, loopDevices: [], instanceMounted: false });
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(paths.stateDir);

    const u = await up();
    expect(u).toMatchObject({ alreadyUp: false, healthy: true });
    expect(inTarget('cat', `${MOUNT_POINT}/.local-target-test-marker`)).toBe(marker);
    expect(inTarget('findmnt', '-n', '-o', 'UUID', MOUNT_POINT).trim()).toBe(uuid);
    const log = inTarget('cat', BOOT_LOG);
    expect(log).toMatch(/btrfs 'btrbk-backup' already: keeping it \(never reformatted\)/);
    expect(log).not.toMatch(/changed: formatted/);
    // a new instance keeps the host's identity (kept on the volume): the pinned key is the one it answers with
    const newHostKey = fs.readFileSync(conn().knownHostsFile, 'utf8');
    expect(newHostKey).toBe(oldHostKey);
    expect(newHostKey.split(' ').slice(1).join(' ').trim()).toBe(
      inTarget('cat', '/etc/ssh/ssh_host_ed25519_key.pub').split(' ').slice(0, 2).join(' '),
    );
    expect(ssh('btrbk', `sudo -n btrfs subvolume list '${BACKUP_ROOT}'`).status).toBe(0);
    inTarget('rm', '-f', `${MOUNT_POINT}/.local-target-test-marker`);
  });

  test('up on a running, healthy target does nothing but (re)write the connection file', async () => {
    const before = await status();
    const envText = fs.readFileSync(paths.envFile, 'utf8');
    fs.rmSync(paths.envFile); // a fresh checkout (CI's clone) has none
    const again = await up();
    expect(again.alreadyUp).toBe(true);
    expect(again.nspawnPid).toBe(before.nspawnPid);
    expect(fs.readFileSync(paths.envFile, 'utf8')).toBe(envText);
  });

  test('up replaces a running instance booted with another boot script (as changed user data does on AWS), volume kept', async () => {
    const marker = `kept across a replacement ${Date.now()}`;
    inTarget('sh', '-c', `printf '%s' '${marker}' > ${MOUNT_POINT}/.local-target-test-marker`);
    // the instance now looks as if an older boot script had started it
    inTarget('sh', '-c', `printf '\n# an older boot script\n' >> ${BOOT_SCRIPT_IN_CONTAINER}`);
    const before = await status();
    const lines: string[] = [];
    const u = await up({ onProgress: (l: string) => lines.push(l) });
    expect(lines.join('\n')).toMatch(/boot script changed since this instance started: replacing the instance/);
    expect(u).toMatchObject({ alreadyUp: false, healthy: true });
    expect(u.nspawnPid).not.toBe(before.nspawnPid);
    expect(inTarget('cat', `${MOUNT_POINT}/.local-target-test-marker`)).toBe(marker);
    expect(inTarget('cat', BOOT_SCRIPT_IN_CONTAINER)).not.toContain('# an older boot script');
    expect((await up()).alreadyUp).toBe(true);
    inTarget('rm', '-f', `${MOUNT_POINT}/.local-target-test-marker`);
  });
});

describe('a failed up (a throwaway local target on an ext4 volume, root)', () => {
  test('up refuses, prints the boot log tail, leaves nothing mounted or attached and the volume intact', async () => {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-failed-up-'));
    const throwaway = {
      ...localTargetPaths({
        ...process.env,
        BTRBK_LOCAL_TARGET_STATE: stateDir,
        BTRBK_LOCAL_TARGET_NAME: 'btrbk-failed-up',
        BTRBK_LOCAL_TARGET_ENV_FILE: path.join(stateDir, 'conn.env'),
      }),
    };
    try {
      fs.writeFileSync(throwaway.volumeImage, '');
      fs.truncateSync(throwaway.volumeImage, 300 * 2 ** 20);
      expect(spawnSync('mkfs.ext4', ['-q', '-F', throwaway.volumeImage]).status).toBe(0);
      const sum = contentDigest(throwaway.volumeImage);
      const port = 2300 + Math.floor(Math.random() * 500);
      let error: { what?: string; details?: string } | null = null;
      await up({ paths: throwaway, port }).catch((err) => {
        error = err;
      });
      expect(error).not.toBeNull();
      expect(error!.what).toMatch(/the boot script failed in the local target at step 'filesystem'/);
      expect(error!.details).toMatch(/REFUSING to format/);
      const s = await status({ paths: throwaway });
      expect(s).toMatchObject({ running: false, loopDevices: [], instanceMounted: false });
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(stateDir);
      expect(contentDigest(throwaway.volumeImage)).toBe(sum);
      expect(fs.existsSync(throwaway.envFile)).toBe(false);
      expect(fs.readFileSync(throwaway.bootLog, 'utf8')).toMatch(/FAILED at step 'filesystem'/);
    } finally {
      await down({ paths: throwaway, purge: true }).catch(() => undefined);
      fs.rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('the test target is still up and healthy', async () => {
    expect((await status()).healthy).toBe(true);
  });
});

test("the boot script that ran is the one the stack renders (same renderer, same bytes); the payload it loaded is the S3 object's bytes", () => {
  const pub = fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim();
  const expected = renderBootScript(
    { volumeId: conn().volumeId, backupSshPublicKey: pub },
    { payload: 'file', payloadFile: PAYLOAD_IN_CONTAINER },
  );
  expect(inTarget('cat', BOOT_SCRIPT_IN_CONTAINER)).toBe(expected);
  // what EC2 reads from the payload's S3 object, and what the boot script checked and sourced
  const payload = renderHostPayload();
  expect(inTarget('sh', '-c', `base64 -w0 < ${PAYLOAD_IN_CONTAINER}`)).toBe(payload.base64);
  expect(inTarget('cat', `${STATE_DIR}/payload.sh`)).toBe(payload.text);
  expect(inTarget('cat', BOOT_LOG)).toMatch(/\[payload\]: payload loaded/);
});

test('a payload that does not match its sha256 stops the boot script before it changes anything (local target, root)', () => {
  const pub = fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim();
  const script = renderBootScript(
    { volumeId: conn().volumeId, backupSshPublicKey: pub },
    { payload: 'file', payloadFile: '/tmp/btrbk-payload-tampered.gz' },
  );
  const tampered = Buffer.from(gzipSync(`${renderHostPayload().text}\ntouch /tmp/btrbk-payload-ran\n`)).toString(
    'base64',
  );
  inTarget('sh', '-c', `printf '%s' '${tampered}' | base64 -d > /tmp/btrbk-payload-tampered.gz`);
  const wrapper = `mount -t tmpfs tmpfs ${STATE_DIR} && mount -t tmpfs tmpfs /var/log && cat > /tmp/btrbk-boot-tampered && bash /tmp/btrbk-boot-tampered`;
  const r = execInTarget(['unshare', '--mount', '--propagation', 'private', 'bash', '-c', wrapper], {
    input: script,
    timeout: 120_000,
  });
  expect(r.status).not.toBe(0);
  expect(`${r.stdout}${r.stderr}`).toMatch(/the host payload does not match its sha256/);
  expect(`${r.stdout}${r.stderr}`).toMatch(/FAILED at step 'payload'/);
  expect(execInTarget(['test', '-e', '/tmp/btrbk-payload-ran']).status).not.toBe(0);
  execInTarget(['rm', '-f', '/tmp/btrbk-payload-tampered.gz', '/tmp/btrbk-boot-tampered']);
});

describe('the zx entry point (local target, root)', () => {
  const cli = (...args: string[]) =>
    spawnSync('node_modules/.bin/zx', ['scripts/local-target.mjs', ...args], { encoding: 'utf8', timeout: 120_000 });

  test('status --json describes the running target', () => {
    const r = cli('status', '--json');
    expect(r.status).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({
      running: true,
      healthy: true,
      mounted: true,
      port: conn().port,
      volumeId: conn().volumeId,
    });
  });

  test('up on the running target says so and changes nothing', () => {
    const before = fs.readFileSync(paths.envFile, 'utf8');
    const r = cli('up');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/already up; nothing to do/);
    expect(fs.readFileSync(paths.envFile, 'utf8')).toBe(before);
  });

  test('an unknown command is an operator error, not a stack trace', () => {
    const r = cli('sideways');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^✗ unknown command sideways\n {2}next: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("the image's default user (local target, root)", () => {
  // Debian has no `ubuntu` user: make one the way cloud-init does on Ubuntu (the key pair in its and root's
  // authorized_keys), run the boot script, then remove it again.
  const ADMIN = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPq0q7d9Qm3vG0lq1W0mJ3JgYcE3k8m5bF8xqS9kqLwZ admin@laptop';
  afterAll(async () => {
    execInTarget(['userdel', '-r', 'ubuntu']);
    execInTarget(['rm', '-f', '/root/.ssh/authorized_keys']);
    expect((await rerunBootScript()).output).toMatch(/no user ubuntu on this image: nothing to remove/);
  });

  test('keeps none of its keys (no admin key), and the backup key leaves root too; with an admin key, only that one', async () => {
    const pub = fs.readFileSync(`${conn().keyFile}.pub`, 'utf8').trim();
    inTarget('useradd', '--create-home', '--shell', '/bin/bash', 'ubuntu');
    inTarget('install', '-d', '-m', '0700', '-o', 'ubuntu', '-g', 'ubuntu', '/home/ubuntu/.ssh');
    inTarget(
      'sh',
      '-c',
      `printf '%s\\n' '${pub}' > /home/ubuntu/.ssh/authorized_keys && chown ubuntu: /home/ubuntu/.ssh/authorized_keys`,
    );
    inTarget('install', '-d', '-m', '0700', '/root/.ssh');
    inTarget(
      'sh',
      '-c',
      `printf '%s\\n' 'no-port-forwarding,command="echo Please login as ubuntu;exit 142" ${pub}' > /root/.ssh/authorized_keys`,
    );

    const r = await rerunBootScript();
    expect(r.status).toBe(0);
    expect(r.output).toMatch(/changed: removed every key of ubuntu \(no admin key set\)/);
    expect(r.output).toMatch(/changed: removed the backup key from root's authorized_keys/);
    expect(inTarget('cat', '/home/ubuntu/.ssh/authorized_keys')).toBe('');
    expect(inTarget('cat', '/root/.ssh/authorized_keys')).toBe('');
    expect(ssh('ubuntu', 'true').status).toBe(255);

    const withAdmin = renderBootScript({
      volumeId: conn().volumeId,
      backupSshPublicKey: pub,
      adminSshPublicKey: ADMIN,
    });
    const a = execInTarget(['bash', '-s'], { input: withAdmin, timeout: 120_000 });
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(/changed: ubuntu keeps only the admin key/);
    expect(inTarget('cat', '/home/ubuntu/.ssh/authorized_keys')).toBe(`${ADMIN}\n`);
    expect(inTarget('stat', '-c', '%U %a', '/home/ubuntu/.ssh/authorized_keys')).toBe('ubuntu 600\n');
  });
});
