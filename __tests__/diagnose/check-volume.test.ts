// check-volume with injected fakes: every diagnosis it can make about the backup volume, and the retention report
// read from the real btrbk-prune.
import {
  SCRUB_KERNEL_LOG,
  SCRUB_STATUS_CLEAN,
  SCRUB_STATUS_CORRUPT,
  STATS_OUT,
  USAGE_OUT,
} from '../support/btrfs-samples.js';
import { CHECK_COMMANDS } from '../../scripts/lib/diagnose/check-commands.js';
import {
  ago,
  checkVolume,
  formatFreshness,
  gateDevice,
  parseRetentionReport,
  parseScrubReport,
  showCreated,
} from '../../scripts/lib/diagnose/check-volume.js';
import {
  conn,
  rejected,
  retentionReport,
  scrubReport,
  scrubState,
  LAST_RUN_OK,
  healthy,
  fakes,
  connectError,
  byName,
} from '../support/diagnose-fakes.js';

describe('check-volume: the last scrub (btrbk-diag scrub, the real btrbk-scrub report)', () => {
  const withScrub = (stdout: string) => ({ ...healthy(), [CHECK_COMMANDS.scrub]: { code: 0, stdout } });
  const scrub = async (stdout: string) => byName(await checkVolume(conn(), fakes(withScrub(stdout)).deps), /scrub/);

  it('a clean recent scrub passes with when, how much was read and how long it took', async () => {
    const report = parseScrubReport(scrubReport(scrubState(SCRUB_STATUS_CLEAN)));
    expect(report).toMatchObject({
      schedule: 'monthly',
      last: { seconds: 1261, exit: 0, status: { status: 'finished', bytesScrubbed: 21331968 } },
    });
    const r = await scrub(scrubReport(scrubState(SCRUB_STATUS_CLEAN)));
    expect(r).toMatchObject({ ok: true, detail: expect.stringMatching(/read 20\.\d MiB in 1261 s, no errors$/) });
    expect(r.warn).toBeFalsy();
  });

  it('uncorrectable errors fail, naming the backups and files the kernel named, and what to do', async () => {
    const rest = `${SCRUB_KERNEL_LOG}--- subvolumes\nID 258 gen 13 top level 5 path backups/laptop/home.20260101T0200\n--- logical-resolve\n30425088 /backup_volume/backups/laptop/home.20260101T0200/docs/a b.txt\n`;
    const r = await scrub(scrubReport(scrubState(SCRUB_STATUS_CORRUPT, { exit: 3, rest })));
    expect(r).toMatchObject({ ok: false });
    expect(r.cause).toMatch(/2 uncorrectable error\(s\) \(csum=2, uncorrectable=2\)/);
    expect(r.cause).toMatch(/subvolume backups\/laptop\/home\.20260101T0200/);
    expect(r.cause).toMatch(/root 258: docs\/a b\.txt/);
    expect(r.next).toMatch(/new full backup/);
    expect(r.next).toMatch(/RESTORE\.md.*restore_snapshot_id/);
  });

  it('uncorrectable errors the kernel log did not name: it says how to find the files', async () => {
    const r = await scrub(scrubReport(scrubState(SCRUB_STATUS_CORRUPT, { exit: 3 })));
    expect(r).toMatchObject({ ok: false, cause: expect.stringMatching(/logical-resolve LOGICAL \/backup_volume/) });
  });

  it('no scrub yet with the timer scheduled passes (a new host); with no next run, or the last older than twice the interval, warns; a host without the diagnostic warns', async () => {
    // no systemd here: the real report says `next: unknown`, as a host whose timer is not scheduled does
    const unscheduled = scrubReport();
    expect(unscheduled).toMatch(/^next: unknown$/m);
    expect(await scrub(unscheduled)).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/no next run.*never read end to end/),
      next: expect.stringMatching(/btrbk-scrub run --now/),
    });
    const fresh = await scrub(unscheduled.replace(/^next: unknown$/m, 'next: Mon 2026-11-30 08:03:13 UTC'));
    expect(fresh).toMatchObject({
      ok: true,
      detail: expect.stringMatching(
        /^no scrub has finished on this host yet; .*next at Mon 2026-11-30 08:03:13 UTC\)$/,
      ),
    });
    expect(fresh.warn).toBeFalsy();
    expect(await scrub(scrubReport(scrubState(SCRUB_STATUS_CLEAN, { daysAgo: 63 })))).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/63 days old/),
    });
    const recent = await scrub(scrubReport(scrubState(SCRUB_STATUS_CLEAN, { daysAgo: 61 })));
    expect(recent.ok && !recent.warn).toBe(true);
    const a = { ...healthy(), [CHECK_COMMANDS.scrub]: rejected("unknown diagnostic (try 'btrbk-diag help')") };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /scrub/)).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/before the scheduled scrub/),
    });
  });
});

describe('check-volume', () => {
  it('all pass on a healthy volume', async () => {
    const r = await checkVolume(conn(), fakes().deps);
    expect(r.filter((x: any) => !x.ok || x.warn)).toEqual([]);
    expect(byName(r, /usage/).detail).toBe('10.0 % full: 10.0 GiB used, 90.0 GiB free (device 100 GiB)');
  });

  it("the host's retention: policy, last prune and what goes next, from the real btrbk-prune report", async () => {
    const report = parseRetentionReport(retentionReport(LAST_RUN_OK));
    expect(report.policy).toEqual({ appendOnly: true, retention: '48h 14d 8w 12m', retentionMin: '1d' });
    expect(report.lastRun).toMatchObject({
      when: '2027-02-28T23:05:12Z',
      result: 'ok',
      deleted_count: '1',
      deleted: ['/backup_volume/backups/laptop/home.20251201T0200'],
    });
    expect(report.backups.map((b) => [b.action, b.path.replace(/.*\//, '')])).toEqual([
      ['goes', 'home.20260101T0200'],
      ['goes', 'home.20260102T0200'],
      ['keep', 'home.20260103T0200'],
    ]);
    expect(report.backups[2].reason).toBe('newest complete backup');
    const r = byName(await checkVolume(conn(), fakes().deps), /retention/);
    expect(r).toMatchObject({
      ok: true,
      detail:
        'append-only, keeps 48h 14d 8w 12m (everything younger than 1d); last prune 2027-02-28T23:05:12Z: ok, 1 deleted; 3 backup(s), 2 to go at the next prune',
    });
    expect(r.warn).toBeFalsy();
  });

  it("the host's retention: a failed prune fails the check with its error; a host from before append-only warns", async () => {
    const a = healthy();
    a[CHECK_COMMANDS.retention] = {
      code: 0,
      stdout: retentionReport(
        'when=2027-02-28T23:05:12Z\nresult=failed\nerror=/backup_volume is read-only, nothing deleted: btrfs may have hit an error\n',
      ),
    };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/^the last prune failed: \/backup_volume is read-only/),
      next: expect.stringMatching(/journalctl -u btrbk-prune/),
    });
    a[CHECK_COMMANDS.retention] = rejected("unknown diagnostic (try 'btrbk-diag help')");
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/from before append-only/),
    });
    a[CHECK_COMMANDS.retention] = { code: 1, stderr: 'sudo: a password is required\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({ ok: false });
  });

  it('unmounted volume: named, with where to look next', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.mount] = {
      code: 1,
      stderr: 'btrbk-diag: nothing is mounted at /backup_volume (the data volume is not attached or not mounted)\n',
    };
    a[CHECK_COMMANDS.backupRoot('/backup_volume/backups')] = {
      code: 1,
      stderr: 'readlink: /backup_volume/backups: No such file or directory\n',
    };
    const r = await checkVolume(conn(), fakes(a).deps);
    expect(byName(r, /mounted at/)).toMatchObject({
      ok: false,
      cause: 'nothing is mounted at /backup_volume',
      next: expect.stringMatching(/check-aws.*check-logs/),
    });
    expect(byName(r, /backup root/)).toMatchObject({ ok: false, cause: expect.stringMatching(/not mounted/) });
    expect(r.find((x: any) => /usage|device stats/.test(x.name))).toBeUndefined();
  });

  it('another filesystem, or read-only after errors', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.mount] = { code: 0, stdout: '/backup_volume /dev/nvme1n1 ext4 rw,relatime\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /btrfs/)).toMatchObject({
      ok: false,
      cause: '/backup_volume is ext4, not btrfs',
    });
    a[CHECK_COMMANDS.mount] = { code: 0, stdout: '/backup_volume /dev/nvme1n1 btrfs ro,noatime\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /read-write/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/read-only/),
    });
  });

  it('usage above 90 % warns (and still passes); 99 % fails', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.usage] = { code: 0, stdout: USAGE_OUT(100, 93) };
    const w = byName(await checkVolume(conn(), fakes(a).deps), /usage/);
    expect(w).toMatchObject({
      ok: true,
      warn: true,
      cause: 'the volume is 93.0 % full',
      next: expect.stringMatching(/prune|grow/),
    });
    a[CHECK_COMMANDS.usage] = { code: 0, stdout: USAGE_OUT(100, 100) };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /usage/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/full.*next backup will fail/),
    });
  });

  it('device errors are named by counter', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.deviceStats] = { code: 0, stdout: STATS_OUT(3) };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /device stats/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/corruption_errs=3/),
      next: expect.stringMatching(/scrub/),
    });
  });

  it('missing backup root on a mounted volume', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.backupRoot('/backup_volume/backups')] = { code: 1, stderr: 'readlink: No such file\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /backup root/)).toMatchObject({
      ok: false,
      cause: '/backup_volume/backups does not exist',
    });
  });

  it('warns about half-received subvolumes (no received UUID) and names them', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = {
      code: 0,
      stdout: [
        'ID 256 gen 9 cgen 9 top level 5 parent_uuid - received_uuid 4b1e-0001 uuid 1 path <FS_TREE>/backups/home.20261101',
        'ID 257 gen 12 cgen 12 top level 5 parent_uuid - received_uuid - uuid 2 path <FS_TREE>/backups/home.20261102',
      ].join('\n'),
    };
    const w = byName(await checkVolume(conn(), fakes(a).deps), /half-received/);
    expect(w).toMatchObject({ ok: true, warn: true, detail: '2 subvolume(s) below /backup_volume/backups' });
    expect(w.cause).toMatch(/^1 without a received UUID \(\/backup_volume\/backups\/home\.20261102\)/);
    expect(w.next).toMatch(/hourly prune removes them/);
    const clean = byName(await checkVolume(conn(), fakes().deps), /half-received/);
    expect(clean).toMatchObject({ ok: true, detail: '1 subvolume(s) below /backup_volume/backups, all complete' });
    expect(clean.warn).toBeUndefined();
  });

  it('SSH down: one failure that sends you to check-ssh', async () => {
    const r = await checkVolume(
      conn(),
      fakes(healthy(), { connect: connectError('refused', 'nothing accepts SSH connections at 203.0.113.7:22') }).deps,
    );
    expect(r).toEqual([
      expect.objectContaining({
        ok: false,
        cause: expect.stringMatching(/nothing accepts SSH/),
        next: expect.stringMatching(/check-ssh/),
      }),
    ]);
  });
});

describe('check-volume with devices (issue 20): whose key it is, and the devices with their newest backup', () => {
  const T = Date.UTC(2026, 11, 1, 8) / 1000; // 2026-12-01T08:00:00Z
  const ROOT = '/backup_volume/backups';
  const REGISTRY = 'legacy LLLL\ndevice alpha AAAA\ndevice bravo BBBB\nrevoked carol\n';
  const listLine = (id: number, received: string, rel: string) =>
    `ID ${id} gen ${id} cgen ${id} top level 5 parent_uuid - received_uuid ${received} uuid u${id} path <FS_TREE>/${rel}`;
  /** The gate's answer to `subvolume list`: one line per [ID, received UUID, path below the mount]. */
  const listing = (...lines: Array<[number, string, string]>) => ({
    code: 0,
    stdout: lines.map((l) => listLine(...l)).join('\n'),
  });

  it("the legacy key: every device of the registry (the revoked one frozen) and the legacy key's directories, each with its newest backup; the tools' scratch left out", async () => {
    const report = retentionReport(LAST_RUN_OK, {
      registry: REGISTRY,
      more: [
        [T, 'complete', 'alpha/home.20261201T0800'],
        [T + 3600, 'complete', 'alpha/home.20261201T0900'],
        [T + 7200, 'partial', 'alpha/home.20261201T1000'],
        [T - 86400, 'complete', 'carol/laptop/home.20261130T0800'],
        [T + 9000, 'complete', 'selftest/rt.1'],
        [T + 9000, 'complete', 'alpha/selftest/rt.2'],
      ],
    });
    expect(parseRetentionReport(report).devices).toEqual([
      { name: 'alpha', state: 'current' },
      { name: 'bravo', state: 'current' },
      { name: 'carol', state: 'frozen' },
    ]);
    const a = healthy();
    a[CHECK_COMMANDS.retention] = { code: 0, stdout: report };
    // the device directories are subvolumes without a received UUID: not half-received backups
    a[CHECK_COMMANDS.subvolumeList(ROOT)] = listing(
      [256, '-', 'backups'],
      [257, '-', 'backups/alpha'],
      [258, '-', 'backups/bravo'],
      [259, '-', 'backups/carol'],
      [260, 'r1', 'backups/alpha/home.20261201T0800'],
      [261, 'r2', 'backups/carol/laptop/home.20261130T0800'],
    );
    const r = await checkVolume(conn(), fakes(a).deps);
    expect(byName(r, /whose key/)).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/^the legacy \(single\) key/),
    });
    const half = byName(r, /half-received/);
    expect(half).toMatchObject({
      ok: true,
      detail: `2 subvolume(s) below ${ROOT} (and 3 device directories), all complete`,
    });
    expect(half.warn).toBeUndefined();
    const devices = byName(r, /devices and their newest backup/);
    expect(devices).toMatchObject({
      ok: true,
      detail: "3 device(s), 1 revoked and frozen; 1 directory of the legacy key's",
    });
    const lines = devices.output.split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^alpha   device: newest backup 2026-12-01T09:00:00Z \(\d+ days ago\), 2 backup\(s\)$/),
      'bravo   device: no backup yet',
      expect.stringMatching(
        /^carol   device, revoked, frozen \(nothing of it is pruned\): newest backup 2026-11-30T08:00:00Z .*, 1 backup\(s\)$/,
      ),
      expect.stringMatching(
        /^laptop  the legacy key's directory: newest backup 2026-01-03T02:00:00Z .*, 3 backup\(s\)$/,
      ),
    ]);
    expect(devices.output).not.toMatch(/selftest/);
  });

  it("a device's key: says whose it is and what it cannot see, lists its own newest backup, asks for nothing the gate keeps from it", async () => {
    const own = {
      ...conn(),
      device: 'alpha',
      backupRoot: `${ROOT}/alpha`,
      targetUrl: `ssh://203.0.113.7${ROOT}/alpha/`,
    };
    const newest = `${ROOT}/alpha/laptop/home.20261201T0900`;
    const a: Record<string, any> = {
      ...healthy(),
      [CHECK_COMMANDS.version]: {
        code: 0,
        stdout: `btrbk-ssh-gate 1 root=${ROOT}/alpha mount=/backup_volume mode=append-only device=alpha\n`,
      },
      [CHECK_COMMANDS.backupRoot(`${ROOT}/alpha`)]: { code: 0, stdout: `${ROOT}/alpha\n` },
      [CHECK_COMMANDS.subvolumeList(`${ROOT}/alpha`)]: listing(
        [256, '-', 'backups'],
        [257, '-', 'backups/alpha'],
        [262, 'r2', 'backups/alpha/laptop/home.20261201T0900'],
        [260, 'r1', 'backups/alpha/laptop/home.20261201T0800'],
        [270, 'r3', 'backups/alpha/selftest/rt.1'],
      ),
      [CHECK_COMMANDS.subvolumeShow(newest)]: {
        code: 0,
        stdout: `backups/alpha/laptop/home.20261201T0900\n\tName: \t\t\thome.20261201T0900\n\tCreation time: \t\t2026-12-01 10:00:05 +0100\n`,
      },
    };
    for (const k of ['usage', 'retention', 'scrub'] as const)
      a[CHECK_COMMANDS[k]] = rejected(
        `${k}: not for a device's key (it shows the whole volume or the other devices); the admin reads it`,
      );
    const { deps, calls } = fakes(a);
    const r = await checkVolume(own, deps);
    expect(r.filter((x: any) => !x.ok || x.warn)).toEqual([]);
    expect(byName(r, /whose key/).detail).toBe(
      `device alpha's key: it sees only ${ROOT}/alpha (the volume's usage, retention and scrub, and the other devices, only the legacy key or the admin see)`,
    );
    expect(byName(r, /devices and their newest backup/)).toMatchObject({
      detail: "device alpha (this key's own; the legacy key lists every device)",
      output: expect.stringMatching(/^alpha  device: newest backup 2026-12-01T09:00:05Z \(.*\), 2 backup\(s\)$/),
    });
    expect(byName(r, /usage, retention and scrub/)).toMatchObject({
      ok: true,
      skipped: true,
      output: expect.stringMatching(/legacy key's connection file, or on the host as the admin: .*btrbk-prune report/),
    });
    expect(calls).not.toContain(CHECK_COMMANDS.usage);
    expect(calls).not.toContain(CHECK_COMMANDS.retention);
    expect(calls).not.toContain(CHECK_COMMANDS.scrub);
  });

  it("another device's file with this key fails by name; a device's key in a file of the single key's form checks the device's own directory", async () => {
    const version = {
      code: 0,
      stdout: `btrbk-ssh-gate 1 root=${ROOT}/alpha mount=/backup_volume mode=append-only device=alpha\n`,
    };
    const a: Record<string, any> = { ...healthy(), [CHECK_COMMANDS.version]: version };
    a[CHECK_COMMANDS.backupRoot(`${ROOT}/alpha`)] = { code: 0, stdout: `${ROOT}/alpha\n` };
    a[CHECK_COMMANDS.subvolumeList(`${ROOT}/alpha`)] = listing([257, '-', 'backups/alpha']);
    const bravo = { ...conn(), device: 'bravo', backupRoot: `${ROOT}/bravo` };
    const wrong = byName(await checkVolume(bravo, fakes(a).deps), /whose key/);
    expect(wrong).toMatchObject({
      ok: false,
      cause: `the key ${bravo.keyFile} is device alpha's key, not device bravo's: the target refuses it for bravo's backups`,
      next: expect.stringMatching(/^use device bravo's own connection file and key \(--env connection-bravo\.env\)/),
    });
    const { deps, calls } = fakes(a);
    const single = await checkVolume(conn(), deps);
    expect(byName(single, /backup root/)).toMatchObject({ ok: true, name: `backup root ${ROOT}/alpha present` });
    expect(calls).toContain(CHECK_COMMANDS.backupRoot(`${ROOT}/alpha`));
    expect(byName(single, /devices and their newest/).output).toBe('alpha  device: no backup yet');
  });

  it('the legacy key in a file that names a device warns: it reaches every device', async () => {
    const r = byName(
      await checkVolume({ ...conn(), device: 'alpha', backupRoot: `${ROOT}/alpha` }, fakes().deps),
      /whose key/,
    );
    expect(r).toMatchObject({
      ok: true,
      warn: true,
      cause: expect.stringMatching(/names device alpha, and its key is the legacy key/),
    });
  });

  it('the pieces: the gate names the device; show times in UTC; ages', () => {
    expect(gateDevice('btrbk-ssh-gate 1 root=/r mount=/m mode=append-only device=a-1.b\n')).toBe('a-1.b');
    expect(gateDevice('btrbk-ssh-gate 1 root=/r mount=/m mode=append-only\n')).toBeNull();
    expect(showCreated('\tCreation time: \t\t2026-12-05 01:02:03 -0230\n')).toBe('2026-12-05T03:32:03Z');
    expect(showCreated('no time here')).toBeNull();
    const now = new Date('2026-12-05T12:00:00Z');
    expect([
      ago('2026-12-05T11:30:00Z', now),
      ago('2026-12-04T12:00:00Z', now),
      ago('2026-11-01T00:00:00Z', now),
    ]).toEqual(['less than 1 h ago', '24 h ago', '34 days ago']);
    expect(formatFreshness([{ name: 'x', state: 'thawed', newest: null, backups: 0 }], now)).toEqual([
      'x  device, revoked, thawed (pruned by the policy): no backup yet',
    ]);
  });
});
