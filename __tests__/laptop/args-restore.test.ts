// backup.mjs's argument parsing and the restore plan (which backup, what is received, what is renamed, what is
// copied), with made-up facts; the laptop container's integration test runs the real restore.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { BACKUP } from '../../scripts/lib/cli/entries/backup.js';
import { resolve } from '../../scripts/lib/cli/runner.js';
import { parseBackupArgs } from '../../scripts/lib/laptop/args.js';
import { machineName, parseSnapshotName } from '../../scripts/lib/laptop/layout.js';
import { chooseBackup, formatRestore, planRestore, type RestoreFacts } from '../../scripts/lib/laptop/restore.js';
import type { Dated } from '../../scripts/lib/laptop/target.js';

const usage = (argv: string[]): string => {
  try {
    parseBackupArgs(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(OperatorError);
    expect((err as OperatorError).exitCode).toBe(2);
    return (err as OperatorError).what;
  }
  throw new Error('parsed');
};

describe('parseBackupArgs', () => {
  test('install with repeated --subvolume, interval, env', () => {
    expect(
      parseBackupArgs([
        'install',
        '--subvolume',
        '/home/',
        '--subvolume',
        '/srv',
        '--env',
        'x.env',
        '--interval',
        'daily',
      ]),
    ).toMatchObject({ verb: 'install', subvolumes: ['/home', '/srv'], env: 'x.env', interval: 'daily' });
  });
  test('install --exclude (repeatable) --make-subvolume', () => {
    expect(
      parseBackupArgs([
        'install',
        '--subvolume',
        '/home',
        '--exclude',
        '/home/me/.cache/',
        '--exclude',
        '/home/vm',
        '--make-subvolume',
      ]),
    ).toMatchObject({ exclude: ['/home/me/.cache', '/home/vm'], makeSubvolume: true });
  });
  test('status defaults and --max-age-hours', () => {
    expect(parseBackupArgs(['status'])).toMatchObject({ verb: 'status', maxAgeHours: 24, json: false });
    expect(parseBackupArgs(['status', '--json', '--max-age-hours', '2.5'])).toMatchObject({
      json: true,
      maxAgeHours: 2.5,
    });
  });
  test("--help alone, and with a verb (the verbs; the verb's options)", () => {
    const help = (argv: string[]): string => {
      const r = resolve(BACKUP, argv, 'backup.mjs');
      if (!('help' in r)) throw new Error('no help');
      return r.help;
    };
    expect(help(['--help'])).toMatch(/^verbs:\n {2}install +protect subvolumes/m);
    expect(help(['restore', '--help'])).toMatch(/^ {2}--make-live +make the backup the live subvolume/m);
    expect(help(['restore', '-h'])).not.toMatch(/--sample/);
    expect(() => parseBackupArgs(['status', '--help'])).toThrow(/--help asks for the help text/);
  });
  test.each([
    [[], /which verb/],
    [['backup'], /unknown command backup/],
    [['status', '--frobnicate'], /unknown option --frobnicate/],
    [['install'], /install needs --subvolume/],
    [['install', '--subvolume', 'home'], /absolute path/],
    [['install', '--subvolume', '/home', '--interval', 'hourly;reboot'], /--interval/],
    [['status', '--max-age-hours=-1'], /not a positive number/],
    [['restore'], /exactly one --subvolume/],
    [['restore', '--subvolume', '/home', '--make-live', '--path', 'a'], /exclude each other/],
    [['restore', '--subvolume', '/home', '--path', '../etc/shadow'], /without \.\./],
    [['restore', '--subvolume', '/home', '--path', '/etc/shadow'], /relative/],
    [['restore', '--subvolume', '/home', '--make-live', '--to', '/x'], /leave out --to/],
    [['status', '--env', 'a', '--env', 'b'], /given twice/],
    [['list', '--machine', '../x'], /--machine/],
    [['install', '--subvolume', '/home', '--make-subvolume'], /needs --exclude/],
    [['install', '--subvolume', '/home', '--exclude', 'cache'], /absolute path/],
    [['status', '--exclude', '/home/.cache'], /unknown option --exclude for status \(it is an option of install\)/],
  ])('%j is refused', (argv, what) => {
    expect(usage(argv as string[])).toMatch(what);
  });
  test("machineName keeps the gate's characters", () => {
    expect(machineName('my laptop.example.org')).toBe('my-laptop');
    expect(machineName('...')).toBe('laptop');
  });
});

const dated = (name: string, dir = '/backup_volume/backups/lap'): Dated => {
  const p = parseSnapshotName(name, 'home');
  if (!p) throw new Error(name);
  return { name, path: `${dir}/${name}`, time: p.time, timestamp: p.timestamp };
};
const backups = ['home.20261128T020000+0000', 'home.20261129T020000+0000', 'home.20261130T020000+0000'].map((n) =>
  dated(n),
);

describe('chooseBackup', () => {
  test('newest by default; --at by full timestamp, by its start, or by a date (newest at or before)', () => {
    expect(chooseBackup(backups, undefined, '/home').name).toBe('home.20261130T020000+0000');
    expect(chooseBackup(backups, '20261129T020000+0000', '/home').name).toBe('home.20261129T020000+0000');
    expect(chooseBackup(backups, '20261128', '/home').name).toBe('home.20261128T020000+0000');
    expect(chooseBackup(backups, '2026-11-29T12:00:00Z', '/home').name).toBe('home.20261129T020000+0000');
  });
  test('nothing matches, or nothing there: the error lists what there is', () => {
    expect(() => chooseBackup(backups, '2020-01-01', '/home')).toThrow(/no backup of \/home matches --at 2020-01-01/);
    expect(() => chooseBackup([], undefined, '/home')).toThrow(/no complete backup of \/home/);
  });
});

describe('planRestore', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'laptop-restore-'));
  const facts = (over: Partial<RestoreFacts> = {}): RestoreFacts => ({
    subvolume: path.join(dir, 'home'),
    snapshotDir: path.join(dir, 'snaps'),
    backups,
    local: [],
    liveExists: true,
    liveIsMountPoint: false,
    now: new Date('2026-11-30T12:00:00Z'),
    ...over,
  });

  test('--make-live on a new machine: receive into the snapshot dir, make a writable snapshot, rename nothing', () => {
    const p = planRestore(facts({ liveExists: false }), { makeLive: true });
    expect(p.receiveInto).toBe(path.join(dir, 'snaps'));
    expect(p.snapshot).toBe(path.join(dir, 'snaps', 'home.20261130T020000+0000'));
    expect(p.makeLive).toEqual({ live: path.join(dir, 'home'), keepAs: null });
  });

  test('--make-live over a live subvolume: it is kept renamed, never deleted; a same-named local snapshot is used without a transfer', () => {
    const local = [dated('home.20261130T020000+0000', path.join(dir, 'snaps'))];
    const p = planRestore(facts({ local }), { makeLive: true });
    expect(p.receiveInto).toBeNull();
    expect(p.makeLive?.keepAs).toBe(`${path.join(dir, 'home')}.before-restore-20261130T120000Z`);
    expect(p.steps.join('\n')).toMatch(/kept, never deleted/);
  });

  test('--make-live refuses a mounted subvolume and says what to do instead', () => {
    expect(() => planRestore(facts({ liveIsMountPoint: true }), { makeLive: true })).toThrow(/is a mount point/);
  });

  test('--path: a deleted file comes back under its own name; beside it (NAME.restored-TIMESTAMP) only when something is in its place; never over an existing file', () => {
    const own = path.join(dir, 'home', 'me/thesis.tex');
    const gone = planRestore(facts(), { path: 'me/thesis.tex', at: '20261129' });
    expect(gone.copy).toEqual({
      from: path.join(dir, 'snaps', 'home.20261129T020000+0000', 'me/thesis.tex'),
      to: own,
    });
    expect(gone.steps.join('\n')).toMatch(/is not there now, so it gets its own name back/);
    fs.mkdirSync(path.dirname(own), { recursive: true });
    fs.writeFileSync(own, 'edited');
    const there = planRestore(facts(), { path: 'me/thesis.tex', at: '20261129' });
    expect(there.copy?.to).toBe(`${own}.restored-20261129T020000+0000`);
    expect(there.steps.join('\n')).toMatch(/is there, so the copy goes beside it/);
    // a dangling symlink is something in its place too
    fs.rmSync(own);
    fs.symlinkSync('/nonexistent', own);
    expect(planRestore(facts(), { path: 'me/thesis.tex' }).copy?.to).toMatch(/\.restored-/);
    fs.rmSync(own);
    fs.mkdirSync(path.join(dir, 'out'));
    fs.writeFileSync(path.join(dir, 'out', 'taken'), 'x');
    expect(() => planRestore(facts(), { path: 'me/thesis.tex', copyTo: path.join(dir, 'out', 'taken') })).toThrow(
      /not overwriting/,
    );
  });

  test('where the data comes from: the local snapshot of the same name (said, nothing transferred) or the target; --from-target forces the target', () => {
    const local = [dated('home.20261130T020000+0000', path.join(dir, 'snaps'))];
    const p = planRestore(facts({ local }), {});
    expect(p.source).toBe('local');
    expect(p.receiveInto).toBeNull();
    expect(p.steps[0]).toMatch(
      /^use the local snapshot .*nothing is transferred and the off-site copy is not read \(--from-target reads it\)/,
    );
    const t = planRestore(facts({ local }), { fromTarget: true, makeLive: true });
    expect(t.source).toBe('target');
    // the received copy cannot take the local snapshot's name: it goes to a directory of its own beside it
    expect(t.receiveInto).toBe(path.join(dir, 'snaps', 'from-target-20261130T120000Z'));
    expect(t.snapshot).toBe(path.join(dir, 'snaps', 'from-target-20261130T120000Z', 'home.20261130T020000+0000'));
    expect(t.steps[0]).toMatch(/^receive \S+ from the target \(the off-site copy\)/);
    expect(planRestore(facts(), { fromTarget: true }).receiveInto).toBe(path.join(dir, 'snaps'));
    const r = { bytes: 1536, durationMs: 10 };
    expect(formatRestore({ plan: p, ...r })).toMatch(
      /^done, from the local snapshot .* nothing transferred, the off-site copy not read/,
    );
    expect(formatRestore({ plan: t, ...r })).toMatch(
      /^done, from the target's \/backup_volume\/backups\/lap\/home\.20261130T020000\+0000 \(1\.5 KiB received\)/,
    );
  });

  test('--to DIR receives there, even when the snapshot is here already', () => {
    const local = [dated('home.20261130T020000+0000', path.join(dir, 'snaps'))];
    const p = planRestore(facts({ local }), { to: path.join(dir, 'elsewhere') });
    expect(p.receiveInto).toBe(path.join(dir, 'elsewhere'));
    expect(p.makeLive).toBeNull();
  });
});

describe('verify options', () => {
  test('defaults: every subvolume, the default sample, a random seed', () => {
    const a = parseBackupArgs(['verify']);
    expect(a).toMatchObject({ verb: 'verify', subvolumes: [] });
    expect([a.sample, a.seed]).toEqual([undefined, undefined]);
  });
  test('--subvolume, --sample, --seed (leading zeros dropped: the same number both sides print)', () => {
    expect(parseBackupArgs(['verify', '--subvolume', '/home/', '--sample', '10', '--seed', '00042'])).toMatchObject({
      subvolumes: ['/home'],
      sample: 10,
      seed: '42',
    });
    expect(parseBackupArgs(['verify', '--sample', '100'])).toMatchObject({ sample: 100, json: false });
    expect(parseBackupArgs(['verify', '--json'])).toMatchObject({ verb: 'verify', json: true });
    expect(parseBackupArgs(['list', '--sizes'])).toMatchObject({ verb: 'list', sizes: true });
    expect(parseBackupArgs(['list'])).toMatchObject({ sizes: false });
    expect(() => parseBackupArgs(['status', '--sizes'])).toThrow(
      /unknown option --sizes for status \(it is an option of list\)/,
    );
    expect(parseBackupArgs(['verify', '--sample', '100']).seed).toBeUndefined();
    expect(parseBackupArgs(['verify', '--seed', '123456789012345678'])).toMatchObject({ seed: '123456789012345678' });
  });
  test.each([
    [['verify', '--sample', '0'], /whole percentage 1\.\.100/],
    [['verify', '--sample', '101'], /whole percentage/],
    [['verify', '--sample', '2.5'], /whole percentage/],
    [['verify', '--sample', '-5'], /whole percentage|needs a value|unknown option/],
    [['verify', '--seed', 'x1'], /at most 18 digits/],
    [['verify', '--seed', '1234567890123456789'], /at most 18 digits/],
    [['verify', '--sample', '100', '--seed', '7'], /every file/],
    [['verify', '--sample', '5', '--sample', '6'], /given twice/],
    [['status', '--sample', '5'], /unknown option --sample for status \(it is an option of verify\)/],
    [['verify', 'now'], /unexpected argument/],
  ])('%j is refused', (argv, what) => {
    expect(usage(argv as string[])).toMatch(what);
  });
});
