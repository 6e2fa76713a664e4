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
import { checkVolume, parseRetentionReport, parseScrubReport } from '../../scripts/lib/diagnose/check-volume.js';
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
