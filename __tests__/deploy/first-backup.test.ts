// The first-backup estimate (both lanes), the sizes from `btrfs filesystem du`, and the fast lane in setup:
// the plan's -var override, the cost printed before the apply question, the option checks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseFilesystemDu } from '../../scripts/lib/core/btrfs-output.js';
import { runResult, type Run } from '../../scripts/lib/core/process.js';
import {
  bytesToSend,
  cpuRateMBps,
  estimateFirstBackup,
  formatFirstBackup,
  formatHours,
  pickFastLane,
  RECEIVE_CPU_SECONDS_PER_GIB,
  sourceSizes,
} from '../../scripts/lib/deploy/first-backup.js';
import {
  checkOptions,
  recordingReporter,
  stepFirstBackupEstimate,
  stepInitPlan,
} from '../../scripts/lib/deploy/setup.js';
import type { TfvarsValues } from '../../scripts/lib/deploy/tfvars.js';

const DU = `     Total   Exclusive  Set shared  Filename
  10002432           0     5001216  /home
 200000000   150000000           -  /srv/data with spaces
`;

test('btrfs filesystem du -s --raw: one summary per path, "-" as no shared bytes; sent bytes are exclusive + shared', () => {
  const du = parseFilesystemDu(DU);
  expect(du).toEqual([
    { path: '/home', total: 10002432, exclusive: 0, setShared: 5001216 },
    { path: '/srv/data with spaces', total: 200000000, exclusive: 150000000, setShared: null },
  ]);
  // a reflinked copy counts once (Total counts it twice)
  expect(bytesToSend(du)).toBe(5001216 + 150000000);
});

test("sourceSizes flushes the sources' filesystems (du counts extents; fresh writes have none yet), then runs du on them; a source it cannot size is an error that says what to do", async () => {
  const calls: string[][] = [];
  const ok: Run = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return runResult({ status: 0, stdout: cmd === 'btrfs' ? DU : '' });
  };
  await expect(sourceSizes(['/home', '/srv/data with spaces'], { run: ok })).resolves.toHaveLength(2);
  expect(calls).toEqual([
    ['sync', '-f', '/home', '/srv/data with spaces'],
    ['btrfs', 'filesystem', 'du', '-s', '--raw', '/home', '/srv/data with spaces'],
  ]);
  const bad: Run = async () =>
    runResult({ status: 1, stderr: "ERROR: cannot check space of '/tmp': Inappropriate ioctl for device" });
  await expect(sourceSizes(['/tmp'], { run: bad })).rejects.toThrow(/cannot measure the sources/);
});

test('t3a.nano: the 4 MB/s network baseline limits the first backup, not its CPU baseline', () => {
  expect(cpuRateMBps('t3a.nano')).toBeCloseTo((0.1 * 1024 ** 3) / RECEIVE_CPU_SECONDS_PER_GIB / 1e6, 5);
  expect(cpuRateMBps('t3a.nano')!).toBeGreaterThan(4);
  const e = estimateFirstBackup({ bytes: null, uploadMbit: 100, instanceType: 't3a.nano', region: 'eu-central-1' });
  expect(e.measured).toBe(false);
  expect(e.standard).toMatchObject({ instanceType: 't3a.nano', rateMBps: 4, limitedBy: 'network' });
  expect(e.standard.hours).toBeCloseTo(100e9 / 4e6 / 3600, 5); // 6.9 h
  // at 100 Mbit/s (12.5 MB/s) the fast lane is the smallest type that keeps up with the upload: t3a.small (16 MB/s)
  expect(e.fast).toMatchObject({
    instanceType: 't3a.small',
    rateMBps: 12.5,
    limitedBy: 'upload',
    pricePerHour: 0.0216,
  });
  expect(e.fast.hours).toBeCloseTo(100e9 / 12.5e6 / 3600, 5); // 2.2 h
  expect(e.fast.cost).toBeCloseTo(3 * 0.0216, 6);
});

test('the fast lane type follows the upload rate; without one it is t3a.medium', () => {
  expect(pickFastLane(null)).toBe('t3a.medium');
  expect(pickFastLane(5)).toBe('t3a.small'); // 40 Mbit/s
  expect(pickFastLane(12.5)).toBe('t3a.small'); // 100 Mbit/s: its 16 MB/s network baseline keeps up
  expect(pickFastLane(20)).toBe('t3a.medium');
  expect(pickFastLane(60)).toBe('t3a.large');
  expect(pickFastLane(1000)).toBe('t3a.xlarge');
  // a Graviton deployment's fast lane stays arm64 (a type of the other architecture would replace the instance)
  expect(pickFastLane(null, 'arm64')).toBe('t4g.medium');
  expect(pickFastLane(5, 'arm64')).toBe('t4g.small');
  expect(pickFastLane(1000, 'arm64')).toBe('t4g.xlarge');
  expect(
    estimateFirstBackup({ bytes: 1e9, uploadMbit: 100, instanceType: 't4g.nano', region: 'us-west-1' }).fast
      .instanceType,
  ).toMatch(/^t4g\./);
  expect(
    estimateFirstBackup({ bytes: 1e9, uploadMbit: 100, instanceType: 't3a.nano', region: 'us-west-1' }).fast
      .instanceType,
  ).toMatch(/^t3a\./);
});

test("the printed estimate names both lanes, what limits each, and the fast lane's hours at its price", () => {
  const lines = formatFirstBackup(
    estimateFirstBackup({ bytes: 250e9, uploadMbit: 40, instanceType: 't3a.nano', region: 'us-east-1' }),
  );
  expect(lines[0]).toBe('first backup of 250.0 GB, your upload 40 Mbit/s:');
  expect(lines[1]).toMatch(
    /^standard\s+t3a\.nano\s+4\.0 MB\/s \(limited by its network baseline\): 17\.4 h, 18 h × \$0\.0047\/h = \$0\.08$/,
  );
  expect(lines[2]).toMatch(
    /^fast lane t3a\.small\s+5\.0 MB\/s \(limited by your upload\): 13\.9 h, 14 h × \$0\.0188\/h = \$0\.26$/,
  );
  expect(formatHours(0.2)).toBe('12 min');
  expect(formatHours(null)).toBe('unknown');
});

const values = { aws_region: 'us-west-1', instance_type: 't3a.nano' } as TfvarsValues;

test('--first-backup: the plan overrides instance_type, and the cost of the fast lane is printed before the apply question', async () => {
  const calls: string[][] = [];
  const run: Run = async (cmd, args) => {
    calls.push([path.basename(cmd), ...args]);
    return runResult({ status: 0, stdout: '' });
  };
  const reporter = recordingReporter();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'first-backup-'));
  try {
    const prepare = () => ({
      engine: { name: 'terraform' as const, path: '/fake/terraform', version: '1.11.4' },
      mirror: null,
      env: {},
    });
    await stepInitPlan(
      dir,
      '/x/terraform.tfvars',
      { target: 'aws', stateDir: dir, firstBackupType: 't3a.large' },
      { reporter, run, prepare },
    );
    expect(calls.find((c) => c[1] === 'plan')).toEqual([
      'terraform',
      'plan',
      '-input=false',
      '-no-color',
      '-var-file=/x/terraform.tfvars',
      '-var=instance_type=t3a.large',
      `-out=${path.join(dir, 'plan.tfplan')}`,
    ]);
    calls.length = 0;
    await stepInitPlan(dir, '/x/terraform.tfvars', { target: 'aws', stateDir: dir }, { reporter, run, prepare });
    expect(calls.find((c) => c[1] === 'plan')!.some((a) => a.startsWith('-var=instance_type'))).toBe(false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const est = await stepFirstBackupEstimate(
    values,
    { target: 'aws', uploadMbit: 100, firstBackupType: 't3a.medium' },
    { reporter, run },
  );
  expect(est.fast.instanceType).toBe('t3a.medium');
  const warn = reporter.events.find((e) => e[0] === 'warn')!;
  expect(String(warn[1])).toMatch(
    /moves the instance to t3a\.medium \(an in-place stop and start.*\$0\.0448\/h.*run setup without --first-backup: it moves back to t3a\.nano/,
  );
});

test('without --first-backup only the estimate is printed; a source that cannot be sized is a warning, not a failure', async () => {
  const reporter = recordingReporter();
  const run: Run = async () => runResult({ status: 1, stderr: 'ERROR: not a btrfs filesystem' });
  const est = await stepFirstBackupEstimate(values, { target: 'aws', sources: ['/tmp'] }, { reporter, run });
  expect(est.measured).toBe(false);
  expect(reporter.events.filter((e) => e[0] === 'warn').map((e) => String(e[1]))).toEqual([
    expect.stringMatching(/cannot measure the sources/),
  ]);
  expect(
    reporter.events.some((e) => e[0] === 'info' && /first backup of 100\.0 GB \(an example size/.test(String(e[1]))),
  ).toBe(true);
});

test('option checks: --upload-mbit must be a rate; --first-backup needs a known x86_64 type and the AWS target', () => {
  expect(() => checkOptions({ target: 'aws', uploadMbit: 0 })).toThrow(/--upload-mbit must be your upload rate/);
  expect(() => checkOptions({ target: 'aws', firstBackupType: 'm5.large' })).toThrow(
    /not an instance type the fast lane can use/,
  );
  expect(() => checkOptions({ target: 'aws', firstBackupType: 't4g.large' })).toThrow(
    /not an instance type the fast lane can use/,
  );
  expect(() => checkOptions({ target: 'local', firstBackupType: 't3a.large' })).toThrow(
    /does not apply to the local target/,
  );
  expect(checkOptions({ target: 'aws', uploadMbit: 40, firstBackupType: 't3a.large' })).toMatchObject({
    firstBackupType: 't3a.large',
  });
});
