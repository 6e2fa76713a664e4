// What the verbs print, in-process and without root: the formatters the command table's rows call (the local
// target's and the laptop's state, install's and uninstall's reports, the round trip's summary), bench's setup
// timings with fake steps, and the `none` of --limits/--link.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setupTimings } from '../../scripts/lib/bench/setup-timings.js';
import { noneOr } from '../../scripts/lib/cli/entries/local-target.js';
import { wrap } from '../../scripts/lib/cli/runner.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { palette } from '../../scripts/lib/core/report.js';
import { formatRoundtripSummary, roundtripEventLine } from '../../scripts/lib/data/roundtrip-report.js';
import type { InstallReport, UninstallReport } from '../../scripts/lib/laptop/commands.js';
import { formatExclusions, formatInstall, formatUninstall } from '../../scripts/lib/laptop/report.js';
import { backupCommand } from '../../scripts/lib/laptop/system.js';
import {
  describeDown,
  describeLaptop,
  describeTarget,
  describeUp,
  formatInstanceTypeCheck,
  formatInstanceTypes,
} from '../../scripts/lib/local-target/describe.js';
import type { LaptopStatus } from '../../scripts/lib/local-target/laptop.js';
import type { LocalTargetStatus } from '../../scripts/lib/local-target/local-target.js';

const target = (over: Partial<LocalTargetStatus> = {}): LocalTargetStatus =>
  ({
    running: true,
    release: '12',
    healthy: true,
    port: 2222,
    sshBanner: 'SSH-2.0-OpenSSH_9.2p1',
    volumeId: 'vol-local0123',
    volumeImage: '/state/volume.img',
    volumeBytes: 2 * 2 ** 30,
    loopDevices: ['/dev/loop3'],
    mounted: true,
    mount: { fstype: 'btrfs', source: '/dev/loop3' },
    boot: { ready: { version: '7', completed: '2026-12-05T10:00:00Z' }, failed: null },
    limits: { type: 't3a.nano', cpuQuotaUs: 10000, cpuPeriodUs: 100000, memoryBytes: 512 * 2 ** 20 },
    link: { rateMbit: 32, rttMs: 40 },
    envFile: '/repo/local_connection.env',
    bootLog: '/state/boot.log',
    ...over,
  }) as LocalTargetStatus;

describe('the local target as text', () => {
  test('running and healthy: ssh, volume, mount, boot, limits, link, connection file', () => {
    expect(describeTarget(target())).toBe(
      [
        '● running and healthy',
        '  ssh:     btrbk@127.0.0.1 port 2222 (SSH-2.0-OpenSSH_9.2p1)',
        '  volume:  vol-local0123 /state/volume.img (2.0 GiB sparse) on /dev/loop3',
        '  mounted: /backup_volume (btrfs on /dev/loop3)',
        '  boot:    ready (Debian 12, boot script version 7, 2026-12-05T10:00:00Z)',
        '  limits:  t3a.nano: CPU 10 % of one core, memory 512 MiB (kernel threads are not limited)',
        '  link:    32 Mbit/s, 40 ms round trip (sshd port only)',
        '  env:     /repo/local_connection.env',
      ].join('\n'),
    );
  });
  test('a failed boot, no ssh answer, nothing mounted; stopped: no mount line', () => {
    const failed = describeTarget(
      target({
        healthy: false,
        sshBanner: null,
        mounted: false,
        boot: { ready: null, failed: { step: 'payload', failed: 'sha256 mismatch' } },
        limits: null,
        link: null,
      }),
    );
    expect(failed).toMatch(/^● running but not healthy\n/);
    expect(failed).toContain('port 2222 (no answer)');
    expect(failed).toContain('  mounted: no');
    expect(failed).toContain('  boot:    FAILED at step payload (sha256 mismatch); log: /state/boot.log');
    const stopped = describeTarget(
      target({ running: false, healthy: false, volumeId: null, volumeImage: null, loopDevices: [] }),
    );
    expect(stopped.split('\n').slice(0, 3)).toEqual([
      '○ stopped',
      '  ssh:     btrbk@127.0.0.1 port 2222',
      '  volume:  (none yet)',
    ]);
    expect(stopped).not.toContain('mounted:');
  });
  test('up and down say what happened; colours only when asked', () => {
    const up = describeUp({ ...target(), alreadyUp: false, timings: { totalSeconds: 41.26 } });
    expect(up).toMatch(/^✓ the local target is up in 41\.3 s\n● running/);
    expect(up).toMatch(/\nUse it with any script: --env \/repo\/local_connection\.env {2}\(or BTRBK_ENV_FILE=/);
    expect(describeUp({ ...target(), alreadyUp: true, timings: {} })).toMatch(
      /^✓ the local target is already up; nothing to do/,
    );
    const down = { wasRunning: true, purged: false, volumeImage: '/state/volume.img', volumeKept: true, seconds: 3 };
    expect(describeDown(down)).toBe(
      '✓ the local target is down (3.0 s); nothing is mounted or attached\n  the volume is kept: /state/volume.img (down --purge deletes it)',
    );
    expect(describeDown({ ...down, purged: true })).toMatch(/the volume image is deleted \(--purge\)$/);
    expect(describeTarget(target(), palette(true))).toContain('\x1b[');
    expect(describeTarget(target())).not.toContain('\x1b[');
  });
  test('the laptop: disk, network up or down (and why), connection file', () => {
    const names = { diskMount: '/mnt/laptop', uplinkUnit: 'laptop-uplink.service' };
    const s = {
      running: true,
      healthy: true,
      name: 'btrbk-laptop',
      diskImage: '/state/disk.img',
      diskBytes: 2 ** 30,
      loopDevices: ['/dev/loop4'],
      diskMounted: true,
      port: 2222,
      uplink: { host: true, unit: true },
      envFile: '/etc/laptop.env',
    } as LaptopStatus;
    expect(describeLaptop(s, names)).toBe(
      [
        '● laptop running and healthy (btrbk-laptop)',
        '  disk:    /state/disk.img (1.0 GiB sparse) on /dev/loop4 at /mnt/laptop',
        '  network: 127.0.0.1:2222 -> the local target (up)',
        '  env:     /etc/laptop.env (inside the laptop)',
      ].join('\n'),
    );
    expect(describeLaptop({ ...s, uplink: { host: true, unit: false } }, names)).toContain(
      '(down: laptop-uplink.service stopped)',
    );
    expect(describeLaptop({ ...s, uplink: { host: false, unit: true } }, names)).toContain(
      "(down: this machine's socat is gone)",
    );
  });
  test('the instance types, and their check against DescribeInstanceTypes', () => {
    expect(formatInstanceTypes()).toMatch(/^t3a\.nano +x86_64 2 vCPU +512 MiB {2}baseline +5 %\/vCPU {2}network /m);
    expect(formatInstanceTypeCheck([])).toMatch(/^✓ DescribeInstanceTypes agrees with the table/);
    expect(formatInstanceTypeCheck([{ type: 't3a.nano', field: 'vcpus', table: 2, live: 4 }] as never)).toBe(
      '✗ t3a.nano vcpus: table 2, DescribeInstanceTypes 4',
    );
  });
});

describe("backup.mjs install's and uninstall's reports", () => {
  const report = (over: Partial<InstallReport> = {}): InstallReport =>
    ({
      sources: [{ subvolume: '/home', snapshotDir: '/home/.btrbk_snapshots' }],
      added: ['/home'],
      kept: [],
      dropped: [],
      device: 'lap',
      targetDir: '/backup_volume/backups/lap',
      warnings: ['the pre-sleep snapshot needs systemd'],
      files: [
        { path: '/etc/btrbk/btrbk-aws.conf', action: 'create' },
        { path: '/etc/ssh/ssh_config.d/btrbk-aws.conf', action: 'unchanged' },
      ],
      snapshotDirsCreated: ['/home/.btrbk_snapshots'],
      steps: [
        { what: 'ssh to the target with the backup key', ok: true },
        { what: 'enable btrbk-aws.timer', ok: false, detail: 'Failed to enable\nunit not found' },
      ],
      hostMode: 'append-only',
      dryRun: false,
      exclusions: [],
      firstSends: { targetAnswered: true, reason: null, full: [], incremental: ['/home'] },
      firstBackup: null,
      instanceType: 't3a.nano',
      schedule: { interval: 'hourly', randomDelaySeconds: 600 },
      ...over,
    }) as InstallReport;

  test('install: subvolumes, files, steps (a failed one with its detail), warnings, what changed, what next', () => {
    expect(formatInstall(report())).toBe(
      [
        '✓ /home is a btrfs subvolume; snapshots in /home/.btrbk_snapshots',
        '  created the snapshot directory /home/.btrbk_snapshots',
        '  device lap: backups go to /backup_volume/backups/lap on the target (host mode: append-only)',
        'protected now: /home',
        '  timer: OnCalendar=hourly, each run after a random delay of up to 10 min (a sixth of the interval, at most 1 h)',
        '  create    /etc/btrbk/btrbk-aws.conf',
        '  unchanged 1 file(s)',
        '✓ ssh to the target with the backup key',
        '✗ enable btrbk-aws.timer',
        '    Failed to enable',
        '    unit not found',
        '! the pre-sleep snapshot needs systemd',
        '1 file(s) changed.',
        `Next: ${backupCommand('run')}   (one backup now), then: ${backupCommand('status')}`,
      ].join('\n'),
    );
  });
  test('install says what is protected after it: an earlier subvolume kept (install adds), or dropped with --replace', () => {
    const srv = { subvolume: '/srv', snapshotDir: '/.btrbk-aws-snapshots' };
    const home = { subvolume: '/home', snapshotDir: '/.btrbk-aws-snapshots' };
    const added = formatInstall(report({ sources: [home, srv], added: ['/srv'], kept: ['/home'] }));
    expect(added).toMatch(/^protected now: \/home, \/srv \(added \/srv; kept from the earlier install \/home\)$/m);
    expect(added).toMatch(/--replace protects only the --subvolume paths given/);
    const replaced = formatInstall(report({ sources: [srv], added: ['/srv'], dropped: [home] }));
    expect(replaced).toMatch(/^protected now: \/srv$/m);
    expect(replaced).toContain(
      '! /home is no longer protected (--replace): its snapshots in /.btrbk-aws-snapshots and its backups on the target are kept; install --subvolume /home protects it again',
    );
    expect(formatInstall(report({ schedule: { interval: '*:0/15', randomDelaySeconds: 150 } }))).toMatch(
      /^ {2}timer: OnCalendar=\*:0\/15, each run after a random delay of up to 2\.5 min/m,
    );
    expect(formatInstall(report({ dryRun: true, sources: [srv], added: ['/srv'], dropped: [home] }))).toMatch(
      /^would protect: \/srv[\s\S]*\/home would be no longer protected/m,
    );
  });
  test('the command in hints is the one that works here: sudo when not root, npx where it is on PATH, else the project zx', () => {
    const repo = '/work/p';
    expect(backupCommand('run', { uid: 0, pathEnv: '', cwd: repo, repo })).toBe(
      'node_modules/.bin/zx scripts/backup.mjs run',
    );
    expect(backupCommand('status', { uid: 1000, pathEnv: '', cwd: '/root', repo })).toBe(
      'sudo /work/p/node_modules/.bin/zx /work/p/scripts/backup.mjs status',
    );
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'bin-'));
    fs.writeFileSync(path.join(bin, 'npx'), '#!/bin/sh\n', { mode: 0o755 });
    expect(backupCommand('', { uid: 0, pathEnv: `/nonexistent:${bin}`, cwd: repo, repo })).toBe(
      'npx zx scripts/backup.mjs',
    );
    fs.rmSync(bin, { recursive: true });
  });
  test('install --dry-run says so and writes no tally; a converted exclusion says where the original is', () => {
    const dry = formatInstall(report({ dryRun: true, hostMode: null }));
    expect(dry).toMatch(/^dry run: nothing written\n/);
    expect(dry).toContain('would create the snapshot directory');
    expect(dry).toContain('(host mode: not reachable now)');
    expect(dry).not.toMatch(/file\(s\) changed|Nothing changed|Next:/);
    const plan = {
      dir: '/home/vm',
      within: '/home',
      action: 'convert' as const,
      keptAs: '/home/vm.orig',
      steps: ['a', 'b'],
    };
    expect(formatInstall(report({ exclusions: [plan] }))).toContain(
      '! /home/vm is now a nested subvolume (not in the backups). The original is kept at /home/vm.orig: look, then delete it (rm -rf /home/vm.orig)',
    );
    expect(formatExclusions([plan], true)).toEqual(['--exclude /home/vm (dry run: would do)', '  1. a', '  2. b']);
    expect(formatExclusions([{ ...plan, action: 'none', steps: ['already a subvolume'] }], false)).toEqual([
      '--exclude /home/vm:',
      '  already a subvolume',
    ]);
  });
  test('uninstall: what was removed, and what was kept (snapshots, backups)', () => {
    const r: UninstallReport = {
      files: [
        { path: '/etc/btrbk/btrbk-aws.conf', action: 'remove' as never },
        { path: '/etc/x', action: 'absent' },
      ],
      steps: [{ what: 'disable btrbk-aws.timer', ok: false, detail: 'not loaded' }],
      keptSnapshotDirs: ['/home/.btrbk_snapshots'],
      targetDir: '/backup_volume/backups/lap',
      installed: false,
    };
    expect(formatUninstall(r)).toBe(
      [
        'no install manifest found; removed any of the known files that were there',
        '! disable btrbk-aws.timer (not loaded)',
        '  remove    /etc/btrbk/btrbk-aws.conf',
        '  kept      /home/.btrbk_snapshots (your snapshots; delete them with btrfs subvolume delete if you want)',
        '  kept      the backups in /backup_volume/backups/lap on the target',
      ].join('\n'),
    );
  });
});

test("the round trip's events and summary", () => {
  const c = palette(false);
  expect(roundtripEventLine({ type: 'kept', local: ['/tmp/a'], remote: [] }, c, false)).toBe(
    '  kept (--keep): local /tmp/a; remote -',
  );
  expect(roundtripEventLine({ type: 'start', runId: 'x', remoteDir: '/d', snapshots: [] }, c, false)).toBeUndefined();
  const r = {
    runId: 'x',
    remoteDir: '/d',
    steps: [],
    transfers: [
      {
        name: 'full',
        direction: 'push' as const,
        streamBytes: 2 ** 20,
        wireBytes: 2 ** 19,
        durationMs: 1500,
        rate: 2 ** 20,
      },
    ],
    ratio: 0.01234,
    passed: 9,
    failed: 1,
    ok: false,
  };
  const text = formatRoundtripSummary(r, c);
  expect(text).toMatch(/^\nTransfers\n {2}full +512 KiB on the wire +1\.0 MiB stream +1\.50 s {2}1\.0 MiB\/s\n/);
  expect(text).toContain('  incremental/full ratio: 0.0123');
  expect(text).toMatch(/\n\n9 passed, 1 failed$/);
  expect(formatRoundtripSummary({ ...r, transfers: [], failed: 0 }, c)).toBe('\n9 passed, 0 failed');
});

describe("bench's setup timings", () => {
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-timings-'));
  afterAll(() => fs.rmSync(tmpDir, { recursive: true, force: true }));
  test('up and a warm synth (the second of two runs) are timed; the synth directory is removed', async () => {
    let t = 0;
    const dirs: string[] = [];
    const out = await setupTimings({
      up: async () => ((t += 2000), { alreadyUp: true }),
      synth: async (dir) => (dirs.push(dir), (t += 500)),
      now: () => t,
      tmpDir,
    });
    expect(out).toEqual([
      {
        label: 'local-target up (warm rootfs cache; target already running: the idempotent re-run)',
        seconds: 2,
        alreadyUp: true,
      },
      { label: 'cdktf synth (warm, second run)', seconds: 0.5 },
    ]);
    expect(dirs).toHaveLength(2);
    expect(fs.existsSync(dirs[0])).toBe(false);
  });
  test('a failed step is reported with its error and the rest still runs', async () => {
    const out = await setupTimings({
      up: async () => {
        throw new OperatorError('the local target is not running');
      },
      synth: async () => {
        throw new Error('cdktf: not found');
      },
      tmpDir,
    });
    expect(out).toEqual([
      { label: 'local-target up', error: 'the local target is not running' },
      { label: 'cdktf synth', error: 'cdktf: not found' },
    ]);
  });
});

test('--limits/--link none: null (lift), absent: undefined (keep), else parsed', () => {
  for (const v of ['none', 'off', 'false']) expect(noneOr(v, Number)).toBeNull();
  expect(noneOr(undefined, Number)).toBeUndefined();
  expect(noneOr('32', Number)).toBe(32);
});

test('help text wraps at word boundaries', () => {
  expect(wrap('aa bb cc dd', 5)).toEqual(['aa bb', 'cc dd']);
  expect(wrap('averyveryverylongword x\nnext', 8)).toEqual(['averyveryverylongword', 'x', 'next']);
});
