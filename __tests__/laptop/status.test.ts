// status's verdicts (fresh, stale, never backed up, target unreachable), from the rule and from the gathered facts
// with a fake ssh/systemctl (the real thing runs in the laptop container's integration test).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import type { Manifest } from '../../scripts/lib/laptop/install.js';
import { parseSnapshotName } from '../../scripts/lib/laptop/layout.js';
import { ageText, backupStatus, judge, statusJson } from '../../scripts/lib/laptop/status.js';
import { lastRunOf } from '../../scripts/lib/laptop/system.js';
import { sampleConnection } from '../support/connection-fixture.js';

const now = new Date('2026-11-30T12:00:00Z');
const base = { now, maxAgeHours: 24, subvolume: '/home', reachable: true };

describe('judge', () => {
  test.each([
    ['fresh', new Date('2026-11-30T11:00:00Z'), /60 min old/],
    ['stale', new Date('2026-11-28T11:00:00Z'), /2\.0 days old, more than 24 h/],
    ['never', null, /never been backed up/],
  ])('%s', (state, newestBackup, reason) => {
    const v = judge({ ...base, newestBackup });
    expect(v.state).toBe(state);
    expect(v.reason).toMatch(reason);
  });
  test('unreachable wins over everything, with the reason', () => {
    const v = judge({
      ...base,
      newestBackup: now,
      reachable: false,
      unreachableReason: 'the target refused the connection',
    });
    expect(v).toEqual({
      state: 'unreachable',
      reason: 'cannot ask the target about /home: the target refused the connection',
    });
  });
  test('ageText', () => {
    expect([ageText(30), ageText(600), ageText(5 * 3600), ageText(3 * 86400)]).toEqual([
      '30 s',
      '10 min',
      '5.0 h',
      '3.0 days',
    ]);
  });
});

describe('snapshot names', () => {
  test('long-iso and long timestamps, a _N suffix, other names refused', () => {
    expect(parseSnapshotName('home.20261130T043201+0000', 'home')?.time.toISOString()).toBe('2026-11-30T04:32:01.000Z');
    expect(parseSnapshotName('home.20261130T053201+0100_1', 'home')?.time.toISOString()).toBe(
      '2026-11-30T04:32:01.000Z',
    );
    expect(parseSnapshotName('home.20261130T0432', 'home')?.timestamp).toBe('20261130T0432');
    expect(parseSnapshotName('homes.20261130T0432', 'home')).toBeNull();
    expect(parseSnapshotName('home.latest', 'home')).toBeNull();
  });
});

describe('backupStatus with a fake target', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'laptop-status-'));
  const snaps = path.join(dir, 'snaps');
  fs.mkdirSync(path.join(snaps, 'home.20261130T110000+0000'), { recursive: true });
  const manifest = {
    version: 1,
    targetDir: '/backup_volume/backups/lap',
    machine: 'lap',
    sources: [{ subvolume: '/home', snapshotDir: snaps }],
  } as unknown as Manifest;
  const conn = sampleConnection();
  const listing = (names: string[]) =>
    names
      .map(
        (n, i) =>
          `ID ${256 + i} gen 9 top level 5 received_uuid 0b5f0c2e-8d47-a84f-9f41-4a6c0f7e1b1${i} path <FS_TREE>/backups/lap/${n}`,
      )
      .join('\n');
  const fake = (ssh: ReturnType<typeof runResult>): { run: Run; calls: string[][] } => {
    const calls: string[][] = [];
    const run: Run = async (cmd, args) => {
      calls.push([cmd, ...args]);
      if (cmd === 'ssh') return ssh;
      if (args.some((a) => a.includes('NextElapseUSecRealtime')))
        return runResult({ status: 0, stdout: 'Mon 2026-11-30 13:04:11 UTC\n' });
      if (cmd === 'systemctl')
        return runResult({
          status: 0,
          stdout:
            'Result=exit-code\nExecMainStatus=255\nExecMainExitTimestamp=Mon 2026-11-30 11:30:00 UTC\nLoadState=loaded\n',
        });
      return runResult({ status: 0, stdout: 'ERROR: Failed to fetch subvolume detail\n' });
    };
    return { run, calls };
  };

  test('fresh: the newest complete backup is young; the listing goes through the gate with the installed key', async () => {
    const f = fake(
      runResult({
        status: 0,
        stdout: `${listing(['home.20261129T110000+0000', 'home.20261130T110000+0000'])}\nID 300 gen 9 top level 5 received_uuid - path <FS_TREE>/backups/lap/home.20261130T115900+0000\n`,
      }),
    );
    const s = await backupStatus({ conn, manifest, maxAgeHours: 24, now, run: f.run });
    expect(s.ok).toBe(true);
    expect(s.subvolumes[0]).toMatchObject({
      state: 'fresh',
      backups: 2,
      newestBackup: { name: 'home.20261130T110000+0000' },
      newestSnapshot: { name: 'home.20261130T110000+0000' },
    });
    const ssh = f.calls.find((c) => c[0] === 'ssh') ?? [];
    expect(ssh.at(-1)).toBe("sudo -n btrfs subvolume list -a -R -o '/backup_volume/backups/lap'");
    expect(ssh).toContain('StrictHostKeyChecking=yes');
    expect(s.nextRun?.toISOString()).toBe('2026-11-30T13:04:11.000Z');
    expect(s.lastRun).toMatchObject({ result: 'exit-code', exitStatus: 255 });
    expect(statusJson(s)).toMatchObject({ ok: true, subvolumes: [{ state: 'fresh', newestBackupAgeSeconds: 3600 }] });
  });

  test('stale: exit non-zero with the age', async () => {
    const f = fake(runResult({ status: 0, stdout: listing(['home.20261127T110000+0000']) }));
    const s = await backupStatus({ conn, manifest, maxAgeHours: 24, now, run: f.run });
    expect(s.ok).toBe(false);
    expect(s.subvolumes[0].state).toBe('stale');
  });

  test('never: the target answers with no backup of this subvolume (only another one, or no directory yet)', async () => {
    const other = await backupStatus({
      conn,
      manifest,
      maxAgeHours: 24,
      now,
      run: fake(runResult({ status: 0, stdout: listing(['srv.20261130T110000+0000']) })).run,
    });
    expect(other.subvolumes[0].state).toBe('never');
    const nodir = await backupStatus({
      conn,
      manifest,
      maxAgeHours: 24,
      now,
      run: fake(
        runResult({
          status: 1,
          stderr: "ERROR: cannot access '/backup_volume/backups/lap': No such file or directory\n",
        }),
      ).run,
    });
    expect(nodir.subvolumes[0].state).toBe('never');
    expect(nodir.ok).toBe(false);
  });

  test.each([
    [
      'refused',
      runResult({ status: 255, stderr: 'ssh: connect to host 203.0.113.7 port 22: Connection refused\n' }),
      /refused the connection/,
    ],
    [
      'host key',
      runResult({ status: 255, stderr: 'Host key verification failed.\n' }),
      /host key is not the pinned one/,
    ],
    ['timeout', runResult({ status: null, signal: 'SIGTERM' }), /did not answer in time/],
    ['gate', runResult({ status: 255, stderr: 'rejected: path outside the backup root\n' }), /SSH gate refused/],
  ])('unreachable (%s): exit non-zero with the reason', async (_n, r, reason) => {
    const s = await backupStatus({ conn, manifest, maxAgeHours: 24, now, run: fake(r).run });
    expect(s.ok).toBe(false);
    expect(s.subvolumes[0].state).toBe('unreachable');
    expect(s.subvolumes[0].reason).toMatch(reason);
  });

  test('nothing installed (never, or after uninstall): says so and how to install, without reading a connection file', async () => {
    await expect(backupStatus({ conn, manifest: null, maxAgeHours: 24 })).rejects.toThrow(/nothing is installed/);
    const err = await backupStatus({
      conn: () => {
        throw new Error('no connection file at aws_connection.env');
      },
      manifest: null,
      maxAgeHours: 24,
    }).catch((e: unknown) => e as OperatorError);
    expect(err).toBeInstanceOf(OperatorError);
    expect((err as OperatorError).format()).toMatch(
      /^✗ nothing is installed on this machine: no backups are scheduled here\n {2}cause: .*or uninstall removed it \(it keeps every snapshot and backup\)\n {2}next: .*install --subvolume \/home/,
    );
  });
});

describe('the last scheduled run (systemctl show)', () => {
  const base = { LoadState: 'loaded', ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0' };
  test('never ran: null', () => {
    expect(lastRunOf({ ...base, ExecMainExitTimestamp: '', InactiveEnterTimestamp: '' })).toBeNull();
    expect(lastRunOf({ LoadState: 'not-found' })).toBeNull();
  });
  test('ran and succeeded', () => {
    expect(
      lastRunOf({
        ...base,
        ExecMainExitTimestamp: 'Mon 2026-11-30 11:30:00 UTC',
        InactiveEnterTimestamp: 'Mon 2026-11-30 11:30:01 UTC',
      }),
    ).toEqual({ result: 'success', exitStatus: 0, endedAt: new Date('2026-11-30T11:30:00Z') });
  });
  test('failed before its main process (ExecStartPre: the target unreachable) still counts as a failed run', () => {
    expect(
      lastRunOf({
        ...base,
        ActiveState: 'failed',
        Result: 'exit-code',
        ExecMainExitTimestamp: '',
        InactiveEnterTimestamp: 'Mon 2026-11-30 11:40:00 UTC',
      }),
    ).toEqual({ result: 'exit-code', exitStatus: 0, endedAt: new Date('2026-11-30T11:40:00Z') });
  });
  test('running now', () => {
    expect(
      lastRunOf({
        ...base,
        ActiveState: 'activating',
        ExecMainExitTimestamp: '',
        InactiveEnterTimestamp: 'Mon 2026-11-30 10:00:00 UTC',
      })?.result,
    ).toBe('running');
  });
});
