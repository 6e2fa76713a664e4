// The first backup's estimate on the laptop side (backup.mjs install) and run's per-subvolume send sizes: which
// subvolumes have no backup on the target (a fake ssh), their sizes (a fake btrfs filesystem du), the option checks.
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import { parseBackupArgs } from '../../scripts/lib/laptop/args.js';
import {
  firstSendEstimate,
  firstSends,
  formatFirstSends,
  formatRunSendPlan,
  runSendPlan,
} from '../../scripts/lib/laptop/first-sends.js';
import type { Manifest } from '../../scripts/lib/laptop/install.js';
import { sampleConnection } from '../support/connection-fixture.js';

const conn = sampleConnection();
const targetDir = '/backup_volume/backups/lap';
const listing = (names: string[]) =>
  names
    .map(
      (n, i) =>
        `ID ${256 + i} gen 9 top level 5 received_uuid 0b5f0c2e-8d47-a84f-9f41-4a6c0f7e1b1${i} path <FS_TREE>/backups/lap/${n}`,
    )
    .join('\n');
const DU = (paths: string[]) =>
  `     Total   Exclusive  Set shared  Filename\n${paths.map((p) => ` 90000000000  80000000000  -  ${p}`).join('\n')}\n`;

function fake(ssh: ReturnType<typeof runResult>, du: 'ok' | 'fail' = 'ok'): { run: Run; calls: string[][] } {
  const calls: string[][] = [];
  const run: Run = async (cmd, args) => {
    calls.push([cmd, ...args]);
    if (cmd === 'ssh') return ssh;
    if (cmd === 'btrfs')
      return du === 'ok'
        ? runResult({ status: 0, stdout: DU(args.slice(4)) })
        : runResult({ status: 1, stderr: "ERROR: cannot check space of '/srv': Operation not permitted\n" });
    return runResult({ status: 1, stderr: 'unexpected' });
  };
  return { run, calls };
}

test('only the subvolumes with no complete backup on the target are full sends; only they are sized', async () => {
  const f = fake(
    runResult({
      status: 0,
      stdout: `${listing(['home.20261130T110000+0000'])}\nID 300 gen 9 top level 5 received_uuid - path <FS_TREE>/backups/lap/srv.20261130T115900+0000\n`,
    }),
  );
  const s = await firstSends({ conn, targetDir, subvolumes: ['/home', '/srv'], run: f.run });
  // srv's only entry there is a broken transfer: not a backup, so its next send is a full one
  expect(s).toEqual({
    targetAnswered: true,
    reason: null,
    full: [{ subvolume: '/srv', bytes: 80e9 }],
    incremental: ['/home'],
    sizeProblem: null,
  });
  expect(f.calls.find((c) => c[0] === 'btrfs')).toEqual(['btrfs', 'filesystem', 'du', '-s', '--raw', '/srv']);
  const e = firstSendEstimate(s, { uploadMbit: 40 })!;
  expect(e.standard).toMatchObject({ instanceType: 't3a.nano', rateMBps: 4, limitedBy: 'network' });
  const lines = formatFirstSends(s, e, 't3a.nano');
  expect(lines).toHaveLength(3);
  expect(lines[0]).toBe('first backup (/srv) of 80.0 GB, your upload 40 Mbit/s:');
  expect(lines[1]).toMatch(
    /^ {2}standard\s+t3a\.nano\s+4\.0 MB\/s \(limited by its network baseline\): 5\.6 h \(host type assumed, --instance-type if not/,
  );
  expect(lines.join('\n')).not.toMatch(/fast lane t3a/);
});

test('a target with every backup already there: nothing to estimate, nothing printed, du not run', async () => {
  const f = fake(runResult({ status: 0, stdout: listing(['home.20261130T110000+0000']) }));
  const s = await firstSends({ conn, targetDir, subvolumes: ['/home'], run: f.run });
  expect(s.full).toEqual([]);
  expect(firstSendEstimate(s, {})).toBeNull();
  expect(formatFirstSends(s, null, 't3a.nano')).toEqual([]);
  expect(f.calls.some((c) => c[0] === 'btrfs')).toBe(false);
});

test('the target directory not there yet (first install): every subvolume is a full send', async () => {
  const f = fake(
    runResult({ status: 1, stderr: "ERROR: cannot access '/backup_volume/backups/lap': No such file or directory\n" }),
  );
  const s = await firstSends({ conn, targetDir, subvolumes: ['/home'], run: f.run });
  expect(s).toMatchObject({ targetAnswered: true, full: [{ subvolume: '/home', bytes: 80e9 }] });
});

test('a target that does not answer: the estimate is printed anyway, labelled; a larger type is faster', async () => {
  const f = fake(runResult({ status: 255, stderr: 'ssh: connect to host 203.0.113.7 port 22: Connection refused\n' }));
  const s = await firstSends({ conn, targetDir, subvolumes: ['/home', '/srv'], run: f.run });
  expect(s.targetAnswered).toBe(false);
  expect(s.reason).toMatch(/refused the connection/);
  expect(s.full.map((x) => x.bytes)).toEqual([80e9, 80e9]);
  const e = firstSendEstimate(s, { instanceType: 't3a.medium' })!;
  expect(e.bytes).toBe(160e9);
  const lines = formatFirstSends(s, e, 't3a.medium');
  expect(lines[0]).toMatch(
    /^the target did not answer \(the target refused the connection.*this estimate assumes no backup there yet$/,
  );
  expect(lines[1]).toBe('first backup (/home, /srv) of 160.0 GB (give --upload-mbit N for your uplink):');
  expect(lines[2]).toMatch(/t3a\.medium .*from --instance-type/);
  // asked not to ask (install knows the target is down): no ssh at all
  const g = fake(runResult({ status: 0, stdout: '' }));
  const t = await firstSends({
    conn,
    targetDir,
    subvolumes: ['/home'],
    ask: false,
    reason: 'the target did not answer',
    run: g.run,
  });
  expect(t).toMatchObject({ targetAnswered: false, reason: 'the target did not answer' });
  expect(g.calls.some((c) => c[0] === 'ssh')).toBe(false);
});

test('du cannot size a subvolume: no estimate, one line that says why', async () => {
  const s = await firstSends({
    conn,
    targetDir,
    subvolumes: ['/srv'],
    run: fake(runResult({ status: 0, stdout: '' }), 'fail').run,
  });
  expect(s.full).toEqual([{ subvolume: '/srv', bytes: null }]);
  expect(firstSendEstimate(s, {})).toBeNull();
  expect(formatFirstSends(s, null, 't3a.nano')).toEqual([
    expect.stringMatching(
      /^first backup of \/srv: no estimate \(cannot measure the sources .*Operation not permitted\)$/,
    ),
  ]);
});

test("install: --upload-mbit and --instance-type are checked like setup's and belong to install", () => {
  expect(
    parseBackupArgs(['install', '--subvolume', '/home', '--upload-mbit', '40', '--instance-type', 't3a.small']),
  ).toMatchObject({ uploadMbit: 40, instanceType: 't3a.small' });
  expect(parseBackupArgs(['install', '--subvolume', '/home']).instanceType).toBeUndefined();
  expect(() => parseBackupArgs(['install', '--subvolume', '/home', '--upload-mbit', '0'])).toThrow(
    /--upload-mbit must be your upload rate in Mbit\/s/,
  );
  expect(() => parseBackupArgs(['install', '--subvolume', '/home', '--upload-mbit', 'fast'])).toThrow(/--upload-mbit/);
  expect(() => parseBackupArgs(['install', '--subvolume', '/home', '--instance-type', 'm5.large'])).toThrow(
    /--instance-type m5\.large: not a type this tool knows .*t3a\.nano/,
  );
  expect(() => parseBackupArgs(['status', '--upload-mbit', '40'])).toThrow(
    /--upload-mbit for status \(it is an option of install\)/,
  );
});

test('run: a full send says its size and expected time (the type and upload install recorded); an incremental says its size is not known', async () => {
  const manifest = {
    version: 1,
    connection: conn,
    targetDir,
    sources: [{ subvolume: '/home' }, { subvolume: '/srv' }],
    instanceType: 't3a.small',
    uploadMbit: 40,
  } as unknown as Manifest;
  const f = fake(runResult({ status: 0, stdout: listing(['home.20261130T110000+0000']) }));
  const p = await runSendPlan(manifest, { run: f.run });
  expect(p.instanceType).toBe('t3a.small');
  const lines = formatRunSendPlan(p);
  // 80 GB at 40 Mbit/s (5 MB/s, below t3a.small's 16 MB/s network baseline): 4.4 h
  expect(lines).toEqual([
    '/srv: first backup, a full send of 80.0 GB: about 4.4 h at 5.0 MB/s (t3a.small, limited by your upload; compressible data goes faster)',
    '/home: incremental, only the changes since its last backup: their size is not known in advance (no ETA)',
  ]);
  // nothing recorded: the stack's default type, no upload rate
  const plain = await runSendPlan(
    { ...manifest, instanceType: undefined, uploadMbit: undefined } as unknown as Manifest,
    { run: f.run },
  );
  expect(formatRunSendPlan(plain)[0]).toMatch(
    /about 5\.6 h at 4\.0 MB\/s \(t3a\.nano, limited by its network baseline/,
  );
  const down = await runSendPlan(manifest, {
    run: fake(runResult({ status: 255, stderr: 'ssh: connect to host 203.0.113.7 port 22: Connection refused\n' })).run,
  });
  expect(formatRunSendPlan(down)).toEqual([
    expect.stringMatching(/^the target did not answer \(the target refused the connection.*btrbk tries anyway/),
  ]);
});
