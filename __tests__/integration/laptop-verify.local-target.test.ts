// `backup.mjs verify` on a real laptop (the laptop container: Debian 13, btrbk 0.32.6, its own btrfs disk) against
// the run's local target through the SSH gate, as a person runs it: after a fresh backup it verifies clean, in full
// and sampled (the same seed twice compares the same entries); a file changed inside the backup on the host by root
// behind the gate's back is caught and named (exit 1); a newer local snapshot not sent yet is reported as "not the
// newest snapshot's" (exit 1); `status` shows when the last verify ran and how it ended.
import { jest } from '@jest/globals';
import path from 'node:path';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';
import type { RunResult } from '../../scripts/lib/core/process.js';
import { FILES } from '../../scripts/lib/laptop/layout.js';
import { laptopNetwork, LAPTOP_DISK_MOUNT, LAPTOP_ENV_FILE } from '../../scripts/lib/local-target/laptop.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { startTestLaptop, type TestLaptop } from './laptop-harness.js';

jest.setTimeout(20 * 60_000);

const HOME = `${LAPTOP_DISK_MOUNT}/home`;
const SNAPSHOTS = `${LAPTOP_DISK_MOUNT}/.btrbk-aws-snapshots`;
let laptop: TestLaptop;
let targetDir: string;

const ok = (r: RunResult, what: string): RunResult => {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.output.slice(-3000)}`);
  return r;
};
const sh = (script: string): RunResult => ok(laptop.exec(['bash', '-euo', 'pipefail', '-c', script]), script);
const inTarget = (argv: string[]): string => {
  const r = execInTarget(argv);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} in the target failed (${r.status}): ${r.stderr}`);
  return r.stdout;
};
const newestBackup = (): string => {
  const names = inTarget(['ls', '-1', targetDir])
    .split('\n')
    .filter((n) => /^home\.\d{8}T/.test(n))
    .sort();
  return path.posix.join(targetDir, names[names.length - 1]);
};
const compared = (out: string): number => Number(/compared (\d+) entries/.exec(out)?.[1] ?? NaN);
const lastVerify = (): {
  ok: boolean;
  sample: number;
  seed: string | null;
  subvolumes: Array<{ state: string; differences: number }>;
} | null => {
  const r = laptop.backup(['status', '--json']);
  return (JSON.parse(r.stdout) as { lastVerify: never }).lastVerify;
};

let firstRun = '';
let firstRunErr = '';

beforeAll(async () => {
  laptop = await startTestLaptop('vf');
  targetDir = path.posix.join(BACKUP_ROOT, laptop.paths.name);
  sh(
    `mkdir -p ${HOME}/me/docs && head -c $((16 * 1024 * 1024)) /dev/urandom > ${HOME}/me/data.bin && for i in $(seq 1 200); do echo "note $i" > ${HOME}/me/docs/note-$i.txt; done` +
      ` && printf mine > ${HOME}/me/docs/private && chown 1000:1000 ${HOME}/me/docs/private && chmod 600 ${HOME}/me/docs/private && ln -s /etc/shadow ${HOME}/me/docs/to-shadow` +
      ` && printf odd > "${HOME}/me/docs/odd"$'\\n'"name "$'\\xff'`,
  );
  ok(laptop.backup(['install', '--subvolume', HOME, '--env', LAPTOP_ENV_FILE]), 'install');
  const first = ok(laptop.backup(['run']), 'the first backup');
  firstRun = first.stdout;
  firstRunErr = first.stderr;
});
afterAll(async () => {
  await laptop?.destroy();
});

test('run: the first backup is a full send whose size and expected time are said before btrbk starts (incrementals: the unit test)', () => {
  expect(firstRun).toMatch(
    new RegExp(
      `^${HOME}: first backup, a full send of [\\d.]+ [GM]B: about \\d+ min at 4\\.0 MB/s \\(t3a\\.nano, limited by its network baseline`,
      'm',
    ),
  );
});

test("run: each send's progress is read from the running pipeline; its closing line says what it moved (the stream: about the data's 16 MiB, counted every 0.1 s) and how", () => {
  const closing = new RegExp(
    `^  home\\.\\d{8}T\\d{4,6}([+-]\\d{4})?: ([\\d.]+) MiB sent in \\d+:\\d{2}(, [\\d.]+ [KMG]?i?B/s)? \\(full send\\)$`,
    'm',
  ).exec(firstRunErr);
  expect({ closing: closing?.[0] ?? null, stderr: firstRunErr }).toMatchObject({ closing: expect.any(String) });
  expect(Number(closing![2])).toBeGreaterThan(8);
  expect(Number(closing![2])).toBeLessThan(18);
});

test("run: a small incremental gets its closing line with the bytes it moved (even one too short to watch); with the target unreachable the run fails naming btrbk's own lines", async () => {
  sh(`echo a small change >> ${HOME}/me/docs/note-2.txt`);
  const r = ok(laptop.backup(['run']), 'an incremental run');
  // one incremental, with its closing line
  const closing = [
    ...r.stderr.matchAll(
      /^ {2}(home\.\d{8}T\d{4,6}([+-]\d{4})?): ([\d.]+) (B|KiB|MiB) sent in \d+:\d{2}(, \S+ \S+)? \(incremental\)$/gm,
    ),
  ];
  const snaps = sh(`ls -1 ${SNAPSHOTS}`)
    .stdout.split('\n')
    .filter((n) => n.startsWith('home.'))
    .sort();
  expect({ closing: closing.map((m) => m[1]), stderr: r.stderr }).toMatchObject({ closing: snaps.slice(-1) });
  for (const m of closing) {
    const bytes = Number(m[3]) * { B: 1, KiB: 1024, MiB: 1024 * 1024 }[m[4] as 'B'];
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(1024 * 1024); // a line or two of text changed, not the 16 MiB file
  }
  process.stderr.write(
    `[laptop-verify] the incremental run's closing lines:\n${closing.map((m) => m[0]).join('\n')}\n`,
  );
  await laptopNetwork('down', laptop.paths);
  try {
    sh(`echo offline >> ${HOME}/me/docs/note-3.txt`);
    const failed = laptop.backup(['run']);
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toMatch(/^✗ btrbk run failed \(exit \d+\)$/m);
    expect(failed.stderr).toMatch(/^ {4}btrbk said:$/m);
    expect(failed.stderr).toMatch(/^ {4}!!! Target .*aborted/m);
    expect(failed.stderr).toMatch(/^ {2}cause: the target could not be reached/m);
    expect(failed.output).not.toMatch(/ERROR lines/);
    process.stderr.write(
      `[laptop-verify] a run with the network down:\n${failed.stderr
        .split('\n')
        .filter((l) => /^(✗| {2,4}\S)/.test(l))
        .join('\n')}\n`,
    );
  } finally {
    await laptopNetwork('up', laptop.paths);
  }
  // online again: the next run sends what the failed one snapshotted (the verify tests below start from there)
  ok(laptop.backup(['run']), 'a run after the network is back');
});

test('before any verify, status says so', () => {
  expect(laptop.backup(['status']).stdout).toMatch(/^last verify: never/m);
  expect(laptop.exec(['test', '-e', FILES.lastVerify]).status).toBe(1);
});

test('a fresh backup verifies clean: every file, and sampled (the same seed twice compares the same entries)', () => {
  const full = laptop.backup(['verify', '--sample', '100']);
  expect({ status: full.status, out: full.output }).toMatchObject({ status: 0 });
  expect(full.stdout).toMatch(/identity: the backup is a receive of this snapshot/);
  expect(full.stdout).toMatch(/✓ clean/);
  expect(full.stdout).toMatch(/sample: every file/);
  expect(compared(full.stdout)).toBeGreaterThan(200); // ., me, me/docs, data.bin, 200 notes, private, the link, the odd name

  const a = laptop.backup(['verify', '--sample', '20', '--seed', '777']);
  const b = laptop.backup(['verify', '--sample', '20', '--seed', '777']);
  expect([a.status, b.status]).toEqual([0, 0]);
  expect(a.stdout).toMatch(/--sample 20 --seed 777/);
  expect(compared(a.stdout)).toBeGreaterThan(10);
  expect(compared(a.stdout)).toBeLessThan(compared(full.stdout) / 2);
  expect(compared(b.stdout)).toBe(compared(a.stdout));

  // the default: a sample, its seed printed
  const d = laptop.backup(['verify']);
  expect(d.status).toBe(0);
  const seed = /verify: a 5 % sample, seed (\d+)/.exec(d.stdout)?.[1];
  expect(seed).toMatch(/^\d+$/);
  expect(lastVerify()).toMatchObject({ ok: true, sample: 5, seed, subvolumes: [{ state: 'clean', differences: 0 }] });
  expect(laptop.backup(['status']).stdout).toMatch(
    new RegExp(`^last verify: clean, \\d+ s ago \\(5 % sample, seed ${seed}\\)$`, 'm'),
  );
  expect(sh(`stat -c '%U %a' ${FILES.lastVerify}`).stdout.trim()).toBe('root 644');
});

test('a file changed inside the backup on the host, by root behind the gate, is caught and named: exit 1', () => {
  const backup = newestBackup();
  inTarget(['btrfs', 'property', 'set', '-f', '-t', 'subvol', backup, 'ro', 'false']);
  try {
    inTarget(['sh', '-c', `printf X | dd of='${backup}/me/docs/note-42.txt' bs=1 seek=2 conv=notrunc status=none`]);
  } finally {
    inTarget(['btrfs', 'property', 'set', '-t', 'subvol', backup, 'ro', 'true']);
  }
  const r = laptop.backup(['verify', '--sample', '100']);
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/✗ differences/);
  expect(r.stdout).toMatch(
    /^ {4}me\/docs\/note-42\.txt: content, mtime \(local -> backup: mtime \d+\.\d+ -> \d+\.\d+\)$/m,
  ); // dd wrote: a new mtime too
  // the flip to writable took the received UUID away: the identity check says so too
  expect(r.stdout).toMatch(/no received UUID/);
  expect(r.stdout).not.toMatch(/note-41\.txt/);
  expect(lastVerify()).toMatchObject({ ok: false, seed: null, subvolumes: [{ state: 'differences', differences: 1 }] });
  // the same report for a script: --json (stdout is the JSON alone, the commentary on stderr), the same exit status
  const j = laptop.backup(['verify', '--sample', '100', '--json']);
  expect(j.status).toBe(1);
  const report = JSON.parse(j.stdout) as {
    ok: boolean;
    subvolumes: Array<{ subvolume: string; state: string; differences: Array<{ path: string; what: string[] }> }>;
  };
  expect(report).toMatchObject({ ok: false, subvolumes: [{ subvolume: HOME, state: 'differences' }] });
  expect(report.subvolumes[0].differences).toEqual([
    expect.objectContaining({ path: 'me/docs/note-42.txt', what: expect.arrayContaining(['content', 'mtime']) }),
  ]);
  expect(j.stderr).toMatch(/^verify: every file \(--sample 100\)$/m);
  const status = laptop.backup(['status']).stdout;
  expect(status).toMatch(/^last verify: not clean, /m);
  expect(status).toContain(`    ${HOME}: differences: 1 entry differs`);
});

test("a newer local snapshot not sent yet: the newest backup is not the newest snapshot's, both named, exit 1", () => {
  sh(`echo more >> ${HOME}/me/docs/note-1.txt && btrbk -c ${FILES.btrbkConf} snapshot`);
  const snaps = sh(`ls -1 ${SNAPSHOTS}`)
    .stdout.split('\n')
    .filter((n) => n.startsWith('home.'))
    .sort();
  expect(snaps.length).toBeGreaterThanOrEqual(2);
  const r = laptop.backup(['verify']);
  expect(r.status).toBe(1);
  expect(r.stdout).toMatch(/✗ not-newest/);
  expect(r.stdout).toContain(
    `the newest backup is not the newest snapshot's: newest on the target ${path.posix.basename(newestBackup())}, newest here ${snaps.at(-1)}`,
  );
  expect(r.stdout).toMatch(/run a backup \(npx zx scripts\/backup\.mjs run\)/);
  expect(lastVerify()).toMatchObject({ ok: false, subvolumes: [{ state: 'not-newest' }] });
});
