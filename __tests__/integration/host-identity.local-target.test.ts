// What AWS keeps when the host cannot (issue 10), proven on a local target of this file's own (root, btrfs, a
// systemd-nspawn container, real sshd, the real gate), so that nothing else runs on its volume:
//   - the host keeps its SSH identity on the data volume: pinned once, it survives an instance replacement (down,
//     a changed boot script, up: a new root with new host keys, the same volume); the old known_hosts with
//     StrictHostKeyChecking=yes still connects;
//   - the kept key is out of every reach of the backup key: the gate cannot name it, a crafted clone in a send
//     stream cannot read it;
//   - an idle volume sees no writes (what the missed-backup alarm on the EBS write metric relies on): the host's
//     timers, the gate's diagnostics and reads of backups leave the block device's write counters as they were; a
//     backup arriving moves them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, BOOT_LOG, HOST_IDENTITY_DIR, MOUNT_POINT } from '../../user-data/host-layout.js';
import { checkVolume } from '../../scripts/lib/diagnose/check-volume.js';
import { GATE_COMMANDS, gateLine } from '../../scripts/lib/remote/gate-commands.js';
import {
  BOOT_SCRIPT_IN_CONTAINER,
  down,
  execInTarget,
  localTargetPaths,
  rerunBootScript,
  up,
  type LocalTargetPaths,
} from '../../scripts/lib/local-target/local-target.js';
import { newUuid, SendStream, simpleSubvolume } from '../support/send-stream.js';
import { freePort } from './test-target.js';
import {
  QUIET_SECONDS,
  SHORT_COMMIT_SECONDS,
  untilQuiet,
  volumeDevice,
  withShortCommit,
  writeCounters,
  type InTarget,
} from './volume-writes.js';

jest.setTimeout(600_000);

const KEY = 'ssh_host_ed25519_key';
const DIR = `${BACKUP_ROOT}/identity-test`;
let stateDir: string;
let paths: LocalTargetPaths;
let pinned: string; // a copy of the known_hosts pinned after the first up
let pinnedFingerprint: string;
const log: string[] = [];

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-identity-'));
  paths = localTargetPaths({
    ...process.env,
    BTRBK_LOCAL_TARGET_STATE: stateDir,
    BTRBK_LOCAL_TARGET_NAME: `btrbk-identity-${path.basename(stateDir).slice(-6)}`,
    BTRBK_LOCAL_TARGET_ENV_FILE: path.join(stateDir, 'connection.env'),
    BTRBK_LOCAL_TARGET_PORT: String(await freePort()),
  });
  await up({ paths, onProgress: (l) => log.push(l) });
});

afterAll(async () => {
  if (paths) await down({ paths, purge: true }).catch(() => undefined);
  if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
});

function inTarget(...argv: string[]): string {
  const r = execInTarget(argv, { paths });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** ssh as the backup user with the given known_hosts file and StrictHostKeyChecking=yes: what btrbk does. */
function ssh(
  command: string,
  { knownHosts = readConnection(paths.envFile).knownHostsFile, input }: { knownHosts?: string; input?: Buffer } = {},
) {
  const c = readConnection(paths.envFile);
  const r = spawnSync(
    'ssh',
    [
      '-F',
      '/dev/null',
      '-p',
      String(c.port),
      '-i',
      c.keyFile,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      `${c.user}@${c.host}`,
      command,
    ],
    { input: input ?? Buffer.alloc(0), maxBuffer: 64 << 20, timeout: 120_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString('utf8') };
}

/** The ed25519 fingerprint the target's sshd presents now. */
function presentedFingerprint(): string {
  const port = readConnection(paths.envFile).port;
  const scan = spawnSync('ssh-keyscan', ['-T', '5', '-t', 'ed25519', '-p', String(port), '127.0.0.1'], {
    encoding: 'utf8',
  }).stdout;
  return spawnSync('ssh-keygen', ['-l', '-f', '-'], { input: scan, encoding: 'utf8' }).stdout.split(' ')[1];
}

const receive = (stream: Buffer, opts = '') =>
  ssh(`${gateLine(GATE_COMMANDS.receive(DIR)).replace(' receive ', ` receive ${opts}`)}`, { input: stream });

describe('the host keeps its SSH identity on the data volume (own local target, root)', () => {
  test('a blank volume: the key sshd has is kept in the identity dir, root-only (0700, key 0600), outside the backup root', () => {
    expect(inTarget('cat', BOOT_LOG)).toMatch(
      new RegExp(`\\[hostkey\\]: changed: kept the SSH host key in ${HOST_IDENTITY_DIR} \\(SHA256:`),
    );
    expect(inTarget('stat', '-c', '%n %U:%G %a', HOST_IDENTITY_DIR, `${HOST_IDENTITY_DIR}/${KEY}`)).toBe(
      `${HOST_IDENTITY_DIR} root:root 700\n${HOST_IDENTITY_DIR}/${KEY} root:root 600\n`,
    );
    expect(inTarget('cmp', `${HOST_IDENTITY_DIR}/${KEY}`, `/etc/ssh/${KEY}`)).toBe('');
    pinned = path.join(stateDir, 'known_hosts.pinned');
    fs.copyFileSync(readConnection(paths.envFile).knownHostsFile, pinned);
    pinnedFingerprint = presentedFingerprint();
    expect(pinnedFingerprint).toMatch(/^SHA256:/);
    expect(ssh(gateLine(GATE_COMMANDS.mkdir(DIR)), { knownHosts: pinned }).status).toBe(0);
  });

  test('the gate cannot name it: every command on the identity dir or its key is refused, no key bytes come back', () => {
    const key = `${HOST_IDENTITY_DIR}/${KEY}`;
    const lines = [
      gateLine(GATE_COMMANDS.send(HOST_IDENTITY_DIR)),
      gateLine(GATE_COMMANDS.send(`${BACKUP_ROOT}/../${HOST_IDENTITY_DIR.slice(MOUNT_POINT.length + 1)}`)),
      gateLine(GATE_COMMANDS.subvolumeShow(HOST_IDENTITY_DIR)),
      gateLine(GATE_COMMANDS.subvolumeList(HOST_IDENTITY_DIR)),
      gateLine(GATE_COMMANDS.readlink(key)),
      gateLine(GATE_COMMANDS.mkdir(`${HOST_IDENTITY_DIR}/x`)),
      gateLine(GATE_COMMANDS.receive(HOST_IDENTITY_DIR)),
      `cat '${key}'`,
    ];
    for (const line of lines) {
      const r = ssh(line);
      expect({ line, status: r.status === 0 ? 0 : 'refused' }).toEqual({ line, status: 'refused' });
      expect(r.stdout.toString('latin1')).not.toContain('OPENSSH PRIVATE KEY');
    }
    expect(inTarget('ls', '-A', HOST_IDENTITY_DIR).split('\n').filter(Boolean).sort()).toEqual([KEY, `${KEY}.pub`]);
  });

  test("a crafted clone in a send stream cannot read it: btrbk-receive's namespace covers it (the same climb to a backup works)", () => {
    // an earlier backup, found by its received UUID as clone source; the clone paths climb out of it:
    // DIR/home.1/../../.. is the volume's top (the identity dir's parent)
    const home = simpleSubvolume('home.1', { 'data.txt': 'reachable backup data\n' });
    expect(receive(home.stream).status).toBe(0);
    const top = '../../../';
    // the control: the same climb to the volume's top and back down into the backup root reaches a backup's bytes,
    // so a leak would show here
    const control = new SendStream()
      .subvol('control.1', newUuid(), 1)
      .mkfile('o257', 257)
      .rename('o257', 'copy')
      .clone('copy', 0, 0, home.uuid, 10, `${top}${DIR.slice(MOUNT_POINT.length + 1)}/home.1/data.txt`, 0)
      .chmod('copy', 0o644)
      .chmod('', 0o755)
      .end()
      .toBuffer();
    const c = receive(control);
    expect({ status: c.status, stderr: c.stderr }).toEqual({
      status: 0,
      stderr: expect.stringMatching(/received .*control\.1/),
    });
    expect(inTarget('cat', `${DIR}/control.1/copy`)).toBe('reachable backup data\n');
    // the attacks: the same clone aimed at the kept key, by `..`, from far above the root, and through /proc (every
    // process outside the receive's namespace shows its root and working directory there; PID 1's are the host's /,
    // where the volume is mounted with nothing covered: these two copied the key before btrbk-receive took every
    // procfs out of its namespace). One stream each: btrfs receive stops at a stream's first error
    const identity = HOST_IDENTITY_DIR.slice(MOUNT_POINT.length + 1);
    const far = '../'.repeat(8);
    const attacks = {
      'key-dotdot': `${top}${identity}/${KEY}`,
      'key-abs': `${far}${HOST_IDENTITY_DIR.slice(1)}/${KEY}`,
      'key-proc-root': `${far}proc/1/root${HOST_IDENTITY_DIR}/${KEY}`,
      'key-proc-cwd': `${far}proc/1/cwd${HOST_IDENTITY_DIR}/${KEY}`,
      'key-proc-self': `${far}proc/self/root${HOST_IDENTITY_DIR}/${KEY}`,
    };
    const outcomes = Object.entries(attacks).map(([name, source]) => {
      const leak = new SendStream()
        .subvol(`${name}.1`, newUuid(), 1)
        .mkfile('o257', 257)
        .rename('o257', 'key')
        .clone('key', 0, 0, home.uuid, 10, source, 0)
        .chmod('key', 0o644)
        .chmod('', 0o755)
        .end()
        .toBuffer();
      const l = receive(leak, '--max-errors=0 ');
      const text = `${l.stdout.toString('latin1')}${l.stderr}`;
      return { name, landed: l.status === 0, key: text.includes('OPENSSH PRIVATE KEY') };
    });
    expect(outcomes).toEqual(Object.keys(attacks).map((name) => ({ name, landed: false, key: false })));
    // nor can a clone path tell which paths the host has: a directory, a file of another filesystem and nothing at
    // all get the same answer, which names none of them
    const probes = ['etc', 'etc/hostname', `no-such-${newUuid()}`].map((where) => {
      const probe = new SendStream()
        .subvol('probe.1', newUuid(), 1)
        .mkfile('o257', 257)
        .rename('o257', 'f')
        .clone('f', 0, 0, home.uuid, 10, `${far}${where}`, 0)
        .end()
        .toBuffer();
      const r = receive(probe);
      return { status: r.status === 0 ? 'landed' : 'refused', said: String(r.stderr).replaceAll(where, '<where>') };
    });
    expect(probes[0]).toMatchObject({
      status: 'refused',
      said: expect.stringMatching(/ERROR: clone: cannot clone from the path the stream names/),
    });
    expect(probes[0].said).not.toMatch(/<where>|directory|cross-device|No such file/);
    expect(probes[1]).toEqual(probes[0]);
    expect(probes[2]).toEqual(probes[0]);
    // nothing landed, and nothing in the backup root holds a byte of the key
    expect(inTarget('sh', '-c', `grep -rl 'OPENSSH PRIVATE KEY' ${BACKUP_ROOT} || true`)).toBe('');
    expect(inTarget('sh', '-c', `ls -d ${DIR}/key-* 2>/dev/null || true`)).toBe('');
  });

  test('replaced instance (down, a changed boot script, up; volume kept): the old known_hosts connects with StrictHostKeyChecking=yes, same fingerprint', async () => {
    const scriptBefore = inTarget('cat', BOOT_SCRIPT_IN_CONTAINER);
    const d = await down({ paths });
    expect(d).toMatchObject({ wasRunning: true, volumeKept: true });
    // a changed setting changes the rendered user data, as on AWS: a new backup key (key rotation)
    fs.rmSync(paths.sshKey);
    fs.rmSync(`${paths.sshKey}.pub`);
    const u = await up({ paths, onProgress: (l) => log.push(l) });
    expect(u).toMatchObject({ alreadyUp: false, healthy: true });
    expect(inTarget('cat', BOOT_SCRIPT_IN_CONTAINER)).not.toBe(scriptBefore);
    // the new instance came with its own host keys (ssh-keygen -A on a fresh root); the boot script put the kept one back
    expect(inTarget('cat', BOOT_LOG)).toMatch(
      new RegExp(
        `\\[hostkey\\]: changed: restored the SSH host key kept in ${HOST_IDENTITY_DIR} \\(${pinnedFingerprint.replace(/[+/]/g, '\\$&')}\\)`,
      ),
    );
    expect(presentedFingerprint()).toBe(pinnedFingerprint);
    const r = ssh(gateLine(GATE_COMMANDS.subvolumeListBelow(DIR)), { knownHosts: pinned });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout.toString('utf8')).toMatch(/identity-test\/home\.1/);
    expect(fs.readFileSync(readConnection(paths.envFile).knownHostsFile, 'utf8')).toBe(fs.readFileSync(pinned, 'utf8'));
  });

  test('a volume from before the host kept its key (no identity dir): the next boot script run saves the key the host has, it is not replaced', async () => {
    inTarget('rm', '-rf', HOST_IDENTITY_DIR);
    const r = await rerunBootScript({ paths });
    expect(r.status).toBe(0);
    expect(r.output).toMatch(
      new RegExp(
        `\\[hostkey\\]: changed: kept the SSH host key in ${HOST_IDENTITY_DIR} \\(${pinnedFingerprint.replace(/[+/]/g, '\\$&')}\\)`,
      ),
    );
    expect(inTarget('cmp', `${HOST_IDENTITY_DIR}/${KEY}`, `/etc/ssh/${KEY}`)).toBe('');
    expect(presentedFingerprint()).toBe(pinnedFingerprint);
    expect(ssh(gateLine(GATE_COMMANDS.subvolumeListBelow(DIR)), { knownHosts: pinned }).status).toBe(0);
  });
});

// ------------------------------------------------------------------------------------------------ the idle volume
// The volume's write counters, read after the kernel's own after-work has landed: see volume-writes.ts for the wait
// (commit=1 while measuring, then no movement for QUIET_SECONDS) and why it proves what 32 s at commit=30 did.
const run: InTarget = (argv) => inTarget(...argv);

describe('an idle volume sees no writes (what the missed-backup alarm relies on; own local target, root)', () => {
  test('mounted noatime: reading a backup changes no inode', () => {
    expect(inTarget('findmnt', '-n', '-o', 'OPTIONS', MOUNT_POINT).split(',')).toEqual(
      expect.arrayContaining(['noatime', 'nosuid', 'nodev', 'noexec']),
    );
  });

  test("the host's timers, the gate's diagnostics and reads of backups: the write counters do not move; a backup arriving moves them", async () => {
    // the monthly scrub runs only in the 90 minutes after a backup arrived (its commits must not stand in for a
    // backup): the backups of this test arrived minutes ago, so this run scrubs (or, if not, waits) before the quiet
    // point; the timer's runs below find it not due
    const dev = volumeDevice(run);
    await withShortCommit(run, async () => {
      inTarget('systemctl', 'start', 'btrbk-scrub.service');
      // quiet first: whatever the replacement's boot and the scrub wrote is committed, their after-work too (the scrub
      // replaces a block group, which async discard lets the cleaner delete some 10 s later)
      const t0 = Date.now();
      const before = await untilQuiet(run, dev);
      const t1 = Date.now();

      // every timer of the host's own (btrbk-prune.timer, and any other btrbk-* timer), its service run three times. A
      // timer whose service writes to the volume would fake the alarm's signal and fails here: btrfs scrub, for one,
      // writes even with -r (measured on kernel 6.18: 17-25 writes per run on an idle 300 MB volume), hence its rule
      const timers = inTarget('systemctl', 'list-unit-files', '--no-legend', '--plain', 'btrbk-*.timer')
        .split('\n')
        .map((l) => l.split(/\s+/)[0])
        .filter(Boolean);
      expect(timers).toContain('btrbk-prune.timer');
      for (let round = 0; round < 3; round++) {
        for (const timer of timers) inTarget('systemctl', 'start', timer.replace(/\.timer$/, '.service'));
      }
      expect(inTarget('systemctl', 'show', '-p', 'Result', 'btrbk-prune.service').trim()).toBe('Result=success');
      // the gate's read-only diagnostics, as troubleshoot check-volume runs them
      const results = await checkVolume(readConnection(paths.envFile));
      expect(results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.cause}`)).toEqual([]);
      expect(results.length).toBeGreaterThan(3);
      // reads of backups: a full send of the earlier backup through the gate, and the listings
      const sent = ssh(gateLine(GATE_COMMANDS.send(`${DIR}/home.1`)));
      expect(sent.status).toBe(0);
      expect(sent.stdout.subarray(0, 12).toString('latin1')).toBe('btrfs-stream');
      expect(ssh(gateLine(GATE_COMMANDS.subvolumeList(BACKUP_ROOT))).status).toBe(0);
      expect(ssh(gateLine(GATE_COMMANDS.subvolumeShow(`${DIR}/home.1`))).status).toBe(0);
      // the same reading as the quiet point: whatever these wrote, at once or as after-work, has landed
      const t2 = Date.now();
      const idle = await untilQuiet(run, dev);
      const t3 = Date.now();
      expect(idle).toEqual(before);

      // a backup arriving writes (so the test above could fail): its commit, which sync -f forces, moves them
      expect(receive(simpleSubvolume('home.2', { 'data.txt': 'a new backup\n' }).stream).status).toBe(0);
      inTarget('sync', '-f', MOUNT_POINT);
      const after = writeCounters(dev);
      expect(after.writes).toBeGreaterThan(idle.writes);
      expect(after.sectors).toBeGreaterThan(idle.sectors);
      process.stderr.write(
        `[idle volume] write counters: before ${JSON.stringify(before)}, after timers+diagnostics+send ${JSON.stringify(idle)}, after a backup ${JSON.stringify(after)} (timers: ${timers.join(', ')}; commit=${SHORT_COMMIT_SECONDS}: quiet for ${QUIET_SECONDS} s after ${((t1 - t0) / 1000).toFixed(0)} s, again after ${((t3 - t2) / 1000).toFixed(0)} s)\n`,
      );
    });
  });
});
