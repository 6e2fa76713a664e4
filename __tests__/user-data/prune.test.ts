// The backup host's own pruning (user-data/btrbk-prune.sh), without btrfs: synthetic histories are fed as a
// listing (EPOCH<TAB>STATE<TAB>PATH) with an injected clock. `--dry-run` prints each decision; a run without it
// (still with --listing) goes through the real guards, lock and state files, and only prints its deletions,
// which the tests apply to their simulated volume. Every expectation is an exact set.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';

const SCRIPT = path.join(REPO_ROOT, 'user-data', 'btrbk-prune.sh');
const HOUR = 3600;
const DAY = 86400;
const at = (iso: string) => Date.parse(iso) / 1000;
/** btrbk's long timestamp, YYYYMMDDTHHMM, for names. */
const stamp = (t: number) => new Date(t * 1000).toISOString().replace(/[-:]/g, '').slice(0, 13);

type State = 'complete' | 'partial' | 'other';
interface Backup {
  t: number;
  path: string;
  state: State;
}
interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  keep: Map<string, string>;
  del: Map<string, string>;
}

/** A scratch host: BACKUP_ROOT, STAGING, STATE_DIR and the receive lock under one temp dir, MOUNT its mount. */
class Host {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), 'prune-'));
  readonly root = path.join(this.dir, 'backups');
  readonly staging = path.join(this.dir, 'staging');
  readonly stateDir = path.join(this.dir, 'state');
  readonly lock = path.join(this.dir, 'receive.lock');
  readonly conf = path.join(this.dir, 'prune.conf');
  readonly mount = spawnSync('findmnt', ['-n', '-o', 'TARGET', '-T', this.dir], { encoding: 'utf8' }).stdout.trim();
  /** The simulated volume: what a real run would leave. */
  world = new Map<string, Backup>();
  private children: ChildProcess[] = [];

  constructor(settings: Record<string, string> = {}) {
    fs.mkdirSync(this.staging);
    this.configure(settings);
  }

  configure(settings: Record<string, string>, raw = '') {
    const all: Record<string, string> = {
      APPEND_ONLY: 'true',
      RETENTION: "'48h 14d 8w 12m'",
      RETENTION_MIN: '1d',
      BACKUP_ROOT: this.root,
      MOUNT: this.mount,
      STAGING: this.staging,
      STATE_DIR: this.stateDir,
      RECEIVE_LOCK: this.lock,
      ...settings,
    };
    fs.writeFileSync(
      this.conf,
      `# written by the test\n${Object.entries(all)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')}\n${raw}`,
    );
  }

  /** A backup of subvolume `name` (group laptop/NAME) received at host time t; the name carries `named` (default t). */
  add(t: number, { name = 'home', dir = 'laptop', named = t, state = 'complete' as State, file = '' } = {}) {
    const p = path.join(this.root, dir, file || `${name}.${stamp(named)}`);
    this.world.set(p, { t, path: p, state });
    return p;
  }

  listing(backups: Iterable<Backup> = this.world.values()) {
    const file = path.join(this.dir, 'listing');
    fs.writeFileSync(file, [...backups].map((b) => `${b.t}\t${b.state}\t${b.path}\n`).join(''));
    return file;
  }

  run(now: number, args: string[] = [], backups?: Iterable<Backup>): Run {
    const r = spawnSync(
      'bash',
      [SCRIPT, '--config', this.conf, '--listing', this.listing(backups), '--now', String(now), ...args],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    const keep = new Map<string, string>();
    const del = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m = /^(keep|delete) (\S+) (.*)$/.exec(line);
      if (m) (m[1] === 'keep' ? keep : del).set(m[2], m[3]);
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, keep, del };
  }

  dryRun(now: number, backups?: Iterable<Backup>) {
    return this.run(now, ['--dry-run'], backups);
  }

  /** A scheduled run: deletions it printed are applied to the simulated volume. */
  prune(now: number) {
    const r = this.run(now);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const p of r.del.keys()) this.world.delete(p);
    return r;
  }

  /** An earlier run saw every complete backup but the newest (so the newest is "a new backup"). */
  primeWithoutNewest(now: number) {
    const complete = [...this.world.values()].filter((b) => b.state === 'complete').sort((a, b) => a.t - b.t);
    const r = this.run(now - HOUR, [], complete.slice(0, -1));
    expect(r.status).toBe(0);
    expect(r.del.size).toBe(0);
  }

  names(paths: Iterable<string>) {
    return [...paths].map((p) => path.relative(this.root, p)).sort();
  }

  state(file: string) {
    const f = path.join(this.stateDir, file);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined;
  }

  /** Holds an exclusive flock on `file` in a child process until cleanup. */
  async holdLock(file: string) {
    const child = spawn('flock', [file, 'sleep', '120'], { detached: true, stdio: 'ignore' });
    this.children.push(child);
    for (let i = 0; i < 200; i++) {
      if (spawnSync('flock', ['-n', file, 'true']).status !== 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`could not hold ${file}`);
  }

  cleanup() {
    for (const c of this.children) {
      if (!c.pid) continue;
      // a holder the prune already ended (and node reaped) has no process group left
      try {
        process.kill(-c.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
      }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

let host: Host;
afterEach(() => host?.cleanup());

/** Hourly backups at HH:05 over 3 days, the newest at 2024-03-13 12:05, now 12:30 (a Wednesday). */
const NOW_HOURLY = at('2024-03-13T12:30:00Z');
function hourly(h: Host) {
  for (let i = 71; i >= 0; i--) h.add(at('2024-03-13T12:05:00Z') - i * HOUR);
}
/** Daily backups at 03:00 from 2024-01-01 to 2024-03-31, now 2024-03-31 12:00 (a Sunday). */
const NOW_DAILY = at('2024-03-31T12:00:00Z');
function daily(h: Host) {
  for (let t = at('2024-01-01T03:00:00Z'); t <= at('2024-03-31T03:00:00Z'); t += DAY) h.add(t);
}
/** Monthly backups on the 15th at 10:00 from 2022-04 to 2024-03, now 2024-03-20. */
const NOW_MONTHLY = at('2024-03-20T00:00:00Z');
function monthly(h: Host) {
  for (let m = 0; m < 24; m++) h.add(Date.UTC(2022, 3 + m, 15, 10) / 1000);
}
const hours = (from: string, to: string) => {
  const out: string[] = [];
  for (let t = at(from); t <= at(to); t += HOUR) out.push(`laptop/home.${stamp(t)}`);
  return out;
};
const days = (...isoDays: string[]) => isoDays.map((d) => `laptop/home.${d.replace(/-/g, '')}T0300`);
const dayRange = (from: string, to: string) => {
  const out: string[] = [];
  for (let t = at(`${from}T03:00:00Z`); t <= at(`${to}T03:00:00Z`); t += DAY) out.push(`laptop/home.${stamp(t)}`);
  return out;
};
const months = (...ym: string[]) => ym.map((m) => `laptop/home.${m.replace('-', '')}15T1000`);

/** The policy's decisions for a history whose newest backup is new since the previous run. */
function decide(history: (h: Host) => void, now: number, settings: Record<string, string>) {
  host = new Host(settings);
  history(host);
  host.primeWithoutNewest(now);
  const r = host.dryRun(now);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(r.keep.size + r.del.size).toBe(host.world.size);
  return { kept: host.names(r.keep.keys()), deleted: host.names(r.del.keys()), r };
}

describe('retention policy (btrbk semantics, host clock, UTC)', () => {
  test('hourly over 3 days, 48h: the current hour and the 48 before', () => {
    const { kept, deleted } = decide(hourly, NOW_HOURLY, { RETENTION: '48h', RETENTION_MIN: 'no' });
    expect(kept).toEqual(hours('2024-03-11T12:05:00Z', '2024-03-13T12:05:00Z'));
    expect(deleted).toEqual(hours('2024-03-10T13:05:00Z', '2024-03-11T11:05:00Z'));
  });

  test("hourly over 3 days, '48h 14d 8w 12m': plus the first of each older day (also first of week and month)", () => {
    const { kept, r } = decide(hourly, NOW_HOURLY, { RETENTION: "'48h 14d 8w 12m'", RETENTION_MIN: 'no' });
    expect(kept).toEqual([
      'laptop/home.20240310T1305',
      'laptop/home.20240311T0005',
      ...hours('2024-03-11T12:05:00Z', '2024-03-13T12:05:00Z'),
    ]);
    expect(r.keep.get(path.join(host.root, 'laptop/home.20240311T0005'))).toBe('first of its day, 2 ago');
    expect(r.keep.get(path.join(host.root, 'laptop/home.20240313T1205'))).toBe('newest complete backup');
  });

  test('RETENTION_MIN=1d alone keeps everything from yesterday 00:00 UTC on', () => {
    const { kept } = decide(hourly, NOW_HOURLY, { RETENTION: 'no', RETENTION_MIN: '1d' });
    expect(kept).toEqual(hours('2024-03-12T00:05:00Z', '2024-03-13T12:05:00Z'));
  });

  test('*h keeps every hourly backup', () => {
    expect(decide(hourly, NOW_HOURLY, { RETENTION: '*h', RETENTION_MIN: 'no' }).deleted).toEqual([]);
  });

  test('daily over 3 months, 7d: today and the 7 days before', () => {
    const { kept } = decide(daily, NOW_DAILY, { RETENTION: '7d', RETENTION_MIN: 'no' });
    expect(kept).toEqual(dayRange('2024-03-24', '2024-03-31'));
  });

  test('daily over 3 months, *d keeps all 91', () => {
    const { kept, deleted } = decide(daily, NOW_DAILY, { RETENTION: '*d', RETENTION_MIN: 'no' });
    expect(kept).toHaveLength(91);
    expect(deleted).toEqual([]);
  });

  test('weeks start on Sunday (btrbk preserve_day_of_week default): 4w keeps 5 Sundays', () => {
    const { kept } = decide(daily, NOW_DAILY, { RETENTION: '4w', RETENTION_MIN: 'no' });
    expect(kept).toEqual(days('2024-03-03', '2024-03-10', '2024-03-17', '2024-03-24', '2024-03-31'));
  });

  test('months start on their first Sunday (btrbk): 2m keeps Mar 3, Feb 4, Jan 7, and the newest', () => {
    const { kept } = decide(daily, NOW_DAILY, { RETENTION: '2m', RETENTION_MIN: 'no' });
    expect(kept).toEqual(days('2024-01-07', '2024-02-04', '2024-03-03', '2024-03-31'));
  });

  test("daily over 3 months, '48h 14d 8w 12m'", () => {
    const { kept } = decide(daily, NOW_DAILY, { RETENTION: "'48h 14d 8w 12m'", RETENTION_MIN: 'no' });
    expect(kept).toEqual([
      ...days(
        '2024-01-01',
        '2024-01-07',
        '2024-02-04',
        '2024-02-11',
        '2024-02-18',
        '2024-02-25',
        '2024-03-03',
        '2024-03-10',
      ),
      ...dayRange('2024-03-17', '2024-03-31'),
    ]);
  });

  test('monthly over 2 years, 12m: this month and the 12 before', () => {
    const { kept } = decide(monthly, NOW_MONTHLY, { RETENTION: '12m', RETENTION_MIN: 'no' });
    expect(kept).toEqual(
      months(
        '2023-03',
        '2023-04',
        '2023-05',
        '2023-06',
        '2023-07',
        '2023-08',
        '2023-09',
        '2023-10',
        '2023-11',
        '2023-12',
        '2024-01',
        '2024-02',
        '2024-03',
      ),
    );
  });

  test("monthly over 2 years, '6m 2y': plus the first of each year", () => {
    const { kept } = decide(monthly, NOW_MONTHLY, { RETENTION: "'6m 2y'", RETENTION_MIN: 'no' });
    expect(kept).toEqual(
      months('2022-04', '2023-01', '2023-09', '2023-10', '2023-11', '2023-12', '2024-01', '2024-02', '2024-03'),
    );
  });

  test.each([
    ['0d', 'no'],
    ['no', 'no'],
    ['no', 'latest'],
    ["'0h 0d 0w 0m 0y'", 'no'],
  ])('the newest complete backup stays, whatever the policy (RETENTION=%s RETENTION_MIN=%s)', (retention, min) => {
    const { kept, deleted } = decide(hourly, NOW_HOURLY, { RETENTION: retention, RETENTION_MIN: min });
    expect(kept).toEqual(['laptop/home.20240313T1205']);
    expect(deleted).toHaveLength(71);
  });

  test('matches btrbk 0.32 schedule() (ported below) on random histories', () => {
    let seed = 42;
    const rnd = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    for (let c = 0; c < 25; c++) {
      const now = at('2024-01-01T00:00:00Z') + rnd(400 * DAY);
      const span = [3 * DAY, 100 * DAY, 800 * DAY][c % 3];
      const times = [...new Set(Array.from({ length: 1 + rnd(80) }, () => now - rnd(span)))].sort((a, b) => a - b);
      const policy: Record<string, number | '*'> = {};
      for (const u of 'hdwmy') if (rnd(10) < 6) policy[u] = rnd(10) === 0 ? '*' : rnd(30);
      const retention =
        Object.entries(policy)
          .map(([u, n]) => `${n}${u}`)
          .join(' ') || 'no';
      const min = ['no', 'latest', `${rnd(8)}${'hdwmy'[rnd(5)]}`][rnd(3)];
      host?.cleanup();
      host = new Host({ RETENTION: `'${retention}'`, RETENTION_MIN: min });
      times.forEach((t, i) => host.add(t, { file: `home.${String(i).padStart(8, '0')}` }));
      host.primeWithoutNewest(now);
      const r = host.dryRun(now);
      const expected = btrbkPreserved(now, times, policy, min);
      expected.add(times[times.length - 1]);
      const kept = [...r.keep.keys()].map((p) => times[Number(p.split('.').pop())]);
      expect({ retention, min, kept: kept.sort((a, b) => a - b) }).toEqual({
        retention,
        min,
        kept: [...expected].sort((a, b) => a - b),
      });
    }
  });
});

describe('time alone never deletes', () => {
  test('a group seen for the first time is only recorded; it is pruned once a newer backup arrives', () => {
    host = new Host({ RETENTION: '7d', RETENTION_MIN: 'no' });
    daily(host);
    const first = host.prune(NOW_DAILY);
    expect(first.del.size).toBe(0);
    expect(first.keep.get(path.join(host.root, 'laptop/home.20240101T0300'))).toBe(
      'will go at the next prune after a new backup arrives',
    );
    expect(host.state('seen')).toBe(`${at('2024-03-31T03:00:00Z')}\t${host.root}/laptop/home.*\n`);
    expect(host.prune(NOW_DAILY + 30 * DAY).del.size).toBe(0); // a month later, nothing new: nothing goes
    host.add(NOW_DAILY + 30 * DAY + HOUR);
    const pruned = host.prune(NOW_DAILY + 30 * DAY + 2 * HOUR);
    expect(host.names(pruned.del.keys())).toHaveLength(91);
    expect(host.names(host.world.keys())).toEqual(['laptop/home.20240430T1300']);
  });

  test('a partial or non-received subvolume is not a new backup', () => {
    host = new Host({ RETENTION: '7d', RETENTION_MIN: 'no' });
    daily(host);
    host.prune(NOW_DAILY);
    const partial = host.add(NOW_DAILY + DAY, { state: 'partial' });
    const other = host.add(NOW_DAILY + DAY, { name: 'snap', state: 'other' });
    const r = host.prune(NOW_DAILY + DAY + HOUR);
    expect([...r.del.keys()]).toEqual([partial]);
    expect(r.keep.get(other)).toBe('not a received backup');
    expect(host.world.size).toBe(92);
  });

  test('a lost laptop keeps its last backups exactly, over a year of timer runs; a live one is pruned', () => {
    host = new Host({ RETENTION: "'7d 4w'", RETENTION_MIN: 'no' });
    const start = at('2024-01-01T03:00:00Z');
    for (let d = 0; d < 60; d++) {
      host.add(start + d * DAY, { dir: 'lost' });
      host.add(start + d * DAY, { dir: 'live' });
      if (d % 3 === 2) host.prune(start + d * DAY + HOUR); // every third day, the last on the 60th
    }
    const lastDay = start + 59 * DAY; // 2024-02-29 (Thursday)
    const lost = () => host.names(host.world.keys()).filter((n) => n.startsWith('lost/'));
    // 7d: Feb 22..29; 4w (weeks from Sunday): Jan 28, Feb 4, 11, 18 (and 25)
    const expectedLost = [
      '0128',
      '0204',
      '0211',
      '0218',
      '0222',
      '0223',
      '0224',
      '0225',
      '0226',
      '0227',
      '0228',
      '0229',
    ].map((d) => `lost/home.2024${d}T0300`);
    expect(lost()).toEqual(expectedLost);
    // every 9 days and 7 hours (another hour, weekday and week of the month each time): each step ages the lost
    // backups by more than the policy's week, so a run that pruned them by time alone shows in the next check
    for (let t = lastDay + 2 * HOUR; t < lastDay + 400 * DAY; t += 9 * DAY + 7 * HOUR) {
      host.prune(t); // nobody sent anything
      expect(lost()).toEqual(expectedLost);
      host.add(t + HOUR, { dir: 'live' });
      host.prune(t + 2 * HOUR);
      expect(lost()).toEqual(expectedLost);
    }
    const live = host.names(host.world.keys()).filter((n) => n.startsWith('live/'));
    expect(live.length).toBeLessThanOrEqual(7);
    expect(live).not.toContain('live/home.20240229T0300');
  }, 120_000);

  test('names with forged timestamps do not matter: age, order and "newest" come from the host creation time', () => {
    host = new Host({ RETENTION: '1d', RETENTION_MIN: 'no' });
    const now = at('2024-03-13T12:00:00Z');
    host.add(at('2024-03-10T10:00:00Z'), { named: at('2099-12-31T23:59:00Z') });
    host.add(at('2024-03-11T10:00:00Z'), { named: at('2024-03-13T11:59:00Z') });
    host.add(at('2024-03-12T10:00:00Z'), { named: at('1970-01-01T00:00:00Z') });
    host.add(at('2024-03-13T10:00:00Z'), { named: at('2000-01-01T00:00:00Z') });
    host.primeWithoutNewest(now);
    const r = host.dryRun(now);
    expect(host.names(r.del.keys())).toEqual(['laptop/home.20240313T1159', 'laptop/home.20991231T2359']);
    expect(r.keep.get(path.join(host.root, 'laptop/home.20000101T0000'))).toBe('newest complete backup');
    expect(r.keep.get(path.join(host.root, 'laptop/home.19700101T0000'))).toBe('first of its day, 1 ago');
  });

  test('a backup created "in the future" (the host clock went back) is kept', () => {
    host = new Host({ RETENTION: 'no', RETENTION_MIN: 'no' });
    const now = at('2024-03-13T12:00:00Z');
    const past = host.add(now - HOUR);
    const future = host.add(now + 5 * DAY);
    const newest = host.add(now + 6 * DAY);
    host.run(now - 2 * HOUR, [], [host.world.get(past)!]);
    const r = host.dryRun(now);
    expect([...r.del.keys()]).toEqual([past]);
    expect(r.keep).toEqual(
      new Map([
        [future, 'created after now'],
        [newest, 'newest complete backup'],
      ]),
    );
  });

  test("groups: dir + name without btrbk's timestamp (.YYYYMMDD[THHMM[SS[+ZZZZ]]][_N]); other names are groups of their own", () => {
    host = new Host({ RETENTION: 'no', RETENTION_MIN: 'no' });
    const now = at('2024-03-13T12:00:00Z');
    const files = [
      'home.20240101',
      'home.20240102T1200',
      'home.20240103T120000+0100',
      'home.20240104T1200_1',
      'home',
      'home.old',
      'root.20240101',
      'root.20240102',
    ];
    files.forEach((file, i) => host.add(now - (10 - i) * HOUR, { file }));
    host.add(now - 9 * HOUR, { dir: 'other-laptop', file: 'home.20240101' });
    const seen = host.run(
      now - 12 * HOUR,
      [],
      [...host.world.values()].map((b) => ({ ...b, t: 1 })),
    );
    expect(seen.status).toBe(0);
    const r = host.dryRun(now);
    expect(host.names(r.del.keys())).toEqual([
      'laptop/home.20240101',
      'laptop/home.20240102T1200',
      'laptop/home.20240103T120000+0100',
      'laptop/root.20240101',
    ]);
    expect(host.names(r.keep.keys())).toEqual([
      'laptop/home',
      'laptop/home.20240104T1200_1',
      'laptop/home.old',
      'laptop/root.20240102',
      'other-laptop/home.20240101',
    ]);
  });
});

describe('half-received and staging leftovers', () => {
  test('partials are deleted (newer than the newest complete one, and with no new backup); others are kept', () => {
    host = new Host();
    daily(host);
    host.prune(NOW_DAILY); // first sight: recorded
    const a = host.add(NOW_DAILY + HOUR, { state: 'partial' });
    const b = host.add(NOW_DAILY - 50 * DAY, { dir: 'laptop2', state: 'partial' });
    const r = host.prune(NOW_DAILY + 2 * HOUR);
    expect([...r.del.keys()].sort()).toEqual([a, b].sort());
    expect(r.del.get(a)).toBe('half-received');
  });

  test('staging: every rcv.* directory left there is deleted (receives hold the receive lock, which prune holds), nothing else', () => {
    host = new Host();
    for (const d of ['rcv.a', 'rcv.b', 'unrelated']) fs.mkdirSync(path.join(host.staging, d));
    fs.symlinkSync('/etc', path.join(host.staging, 'rcv.link'));
    const r = host.prune(NOW_DAILY);
    const s = (n: string) => path.join(host.staging, n);
    expect([...r.del.keys()].sort()).toEqual([s('rcv.a'), s('rcv.b')]);
  });

  test("next to the lock: a killed receive's error file and FIFO go (said), a symlink and other files stay; a dry run removes nothing", () => {
    host = new Host();
    const at = (n: string) => path.join(host.dir, n);
    fs.writeFileSync(at('receive-err.AbC12345'), 'ERROR: x\n');
    expect(spawnSync('mkfifo', [at('receive-err.AbC12345.fifo')]).status).toBe(0);
    fs.symlinkSync('/etc/hostname', at('receive-err.link'));
    fs.writeFileSync(at('other'), '');
    const left = () => fs.readdirSync(host.dir).filter((n) => n.startsWith('receive-err') || n === 'other');
    expect(host.dryRun(NOW_DAILY).status).toBe(0);
    expect(left().sort()).toEqual(['other', 'receive-err.AbC12345', 'receive-err.AbC12345.fifo', 'receive-err.link']);
    const r = host.prune(NOW_DAILY);
    expect(r.stdout).toContain(`removed 2 error file(s) of killed receives from ${host.dir}\n`);
    expect(left().sort()).toEqual(['other', 'receive-err.link']);
    expect(host.prune(NOW_DAILY).stdout).not.toContain('error file');
  });

  test('APPEND_ONLY=false: every complete backup stays (the client prunes); partials and staging leftovers go', () => {
    host = new Host({ APPEND_ONLY: 'false', RETENTION: 'no', RETENTION_MIN: 'no' });
    hourly(host);
    host.primeWithoutNewest(NOW_HOURLY);
    fs.mkdirSync(path.join(host.staging, 'rcv.x'));
    const partial = host.add(NOW_HOURLY - 60, { state: 'partial' });
    const r = host.prune(NOW_HOURLY);
    expect([...r.del.keys()].sort()).toEqual([partial, path.join(host.staging, 'rcv.x')].sort());
    expect(r.keep.size).toBe(72);
    expect(r.keep.get(path.join(host.root, 'laptop/home.20240310T1305'))).toBe('APPEND_ONLY=false: the client prunes');
  });
});

describe('guards: nothing is deleted when it is not safe', () => {
  const refused: [string, Record<string, string>, string][] = [
    ['RETENTION unit', { RETENTION: '48x' }, "RETENTION='48x'"],
    ['RETENTION order', { RETENTION: "'14d 48h'" }, "RETENTION='14d 48h'"],
    ['RETENTION repeated unit', { RETENTION: "'1d 2d'" }, "RETENTION='1d 2d'"],
    ['RETENTION empty', { RETENTION: "''" }, "RETENTION=''"],
    ['RETENTION no number', { RETENTION: "'48h d'" }, 'in this order'],
    ['RETENTION without number', { RETENTION: 'd' }, "RETENTION='d'"],
    ['RETENTION negative', { RETENTION: '-1d' }, "RETENTION='-1d'"],
    ['RETENTION all', { RETENTION: 'all' }, "RETENTION='all'"],
    ['RETENTION commas', { RETENTION: '48h,14d' }, "RETENTION='48h,14d'"],
    ['RETENTION glob', { RETENTION: '*' }, "RETENTION='*'"],
    ['RETENTION_MIN word', { RETENTION_MIN: 'forever' }, "RETENTION_MIN='forever'"],
    ['RETENTION_MIN unit', { RETENTION_MIN: '1q' }, "RETENTION_MIN='1q'"],
    ['RETENTION_MIN empty', { RETENTION_MIN: '' }, "RETENTION_MIN=''"],
    ['APPEND_ONLY', { APPEND_ONLY: 'yes' }, "APPEND_ONLY='yes'"],
    ['relative BACKUP_ROOT', { BACKUP_ROOT: 'backups' }, "BACKUP_ROOT='backups'"],
    ['BACKUP_ROOT with ..', { BACKUP_ROOT: '/backup_volume/../etc' }, 'not a plain absolute path'],
    ['BACKUP_ROOT outside MOUNT', { BACKUP_ROOT: '/srv/elsewhere', MOUNT: '/backup_volume' }, 'below MOUNT'],
  ];
  test.each(refused)('bad policy refused: %s', (_what, settings, message) => {
    host = new Host({ RETENTION: 'no', RETENTION_MIN: 'no' });
    hourly(host);
    host.primeWithoutNewest(NOW_HOURLY); // a good config would now delete 71 backups and the partial
    host.add(NOW_HOURLY, { name: 'x', state: 'partial' });
    fs.mkdirSync(path.join(host.staging, 'rcv.x'));
    host.configure(settings);
    const r = host.run(NOW_HOURLY);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^btrbk-prune: ERROR: refusing to prune, nothing deleted: /);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toMatch(/\n {2}cause: .+\n {2}next: fix .*prune\.conf\n$/);
    expect(r.del.size).toBe(0);
    expect(r.stdout).not.toMatch(/^delete /m);
  });

  test.each([
    ['an unknown key', 'RETENTON=1d'],
    ['a line that is not KEY=value', 'rm -rf /'],
    ['a command substitution', 'RETENTION=$(touch /tmp/x)'],
  ])('a config with %s is refused', (_what, line) => {
    host = new Host();
    host.configure({}, `${line}\n`);
    host.add(NOW_HOURLY, { state: 'partial' });
    const r = host.run(NOW_HOURLY);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/refusing to prune, nothing deleted/);
    expect(r.del.size).toBe(0);
  });

  test('quoted and unquoted values, comments and blank lines are accepted', () => {
    host = new Host({ RETENTION: '"7d"', RETENTION_MIN: "'no'" });
    host.configure({ RETENTION: '"7d"', RETENTION_MIN: "'no'" }, '\n   # a comment\n\n');
    daily(host);
    host.primeWithoutNewest(NOW_DAILY);
    expect(host.names(host.dryRun(NOW_DAILY).keep.keys())).toEqual(dayRange('2024-03-24', '2024-03-31'));
  });

  test('the config exactly as the boot script writes it (unquoted values) is accepted', () => {
    host = new Host();
    fs.writeFileSync(
      host.conf,
      `APPEND_ONLY=true\nRETENTION=48h 14d 8w 12m\nRETENTION_MIN=1d\nBACKUP_ROOT=${host.root}\nMOUNT=${host.mount}\nSTAGING=${host.staging}\n`,
    );
    daily(host);
    const r = host.run(NOW_DAILY, ['report']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^policy: APPEND_ONLY=true RETENTION='48h 14d 8w 12m' RETENTION_MIN=1d /);
  });

  test('a missing config file is an error and nothing is deleted', () => {
    host = new Host();
    host.add(NOW_HOURLY, { state: 'partial' });
    fs.rmSync(host.conf);
    const r = host.run(NOW_HOURLY);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ERROR: cannot read .*prune\.conf/);
    expect(r.del.size).toBe(0);
  });

  test('MOUNT not mounted: nothing deleted, the error is recorded in last-run', () => {
    host = new Host();
    host.configure({ MOUNT: host.dir, BACKUP_ROOT: host.root, STAGING: host.staging });
    host.add(NOW_HOURLY, { state: 'partial' });
    const r = host.run(NOW_HOURLY);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`ERROR: ${host.dir} is not mounted, nothing deleted`);
    expect(r.del.size).toBe(0);
    expect(host.state('last-run')).toMatch(/^when=2024-03-13T12:30:00Z\nresult=failed\nerror=.* is not mounted/);
  });

  test('MOUNT read-only (a read-only tmpfs mounted for the test: needs root): nothing deleted, the error is recorded', () => {
    host = new Host();
    const roMount = path.join(host.dir, 'ro');
    fs.mkdirSync(roMount);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', roMount]).status).toBe(0);
    try {
      host.configure({ MOUNT: roMount, BACKUP_ROOT: `${roMount}/backups`, STAGING: `${roMount}/staging` });
      host.add(NOW_HOURLY, { state: 'partial' });
      const r = host.run(NOW_HOURLY);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`ERROR: ${roMount} is read-only, nothing deleted`);
      expect(r.del.size).toBe(0);
      expect(host.state('last-run')).toMatch(/^when=.*\nresult=failed\nerror=.* is read-only/);
    } finally {
      spawnSync('umount', [roMount]);
    }
  });

  test.each([
    [['--frobnicate'], /ERROR: unknown argument --frobnicate\n {2}cause: usage: btrbk-prune /],
    [['--now', 'yesterday'], /ERROR: bad --now yesterday/],
  ])('bad command line %j', (args, message) => {
    host = new Host();
    const r = spawnSync('bash', [SCRIPT, '--config', host.conf, '--dry-run', ...args], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  test('a running receive (the receive lock is held): the run does nothing and exits 0', async () => {
    host = new Host();
    daily(host);
    host.prune(NOW_DAILY);
    const seen = host.state('seen');
    host.add(NOW_DAILY + HOUR);
    host.add(NOW_DAILY + HOUR, { name: 'x', state: 'partial' });
    fs.mkdirSync(path.join(host.staging, 'rcv.old'));
    await host.holdLock(host.lock);
    const r = host.run(NOW_DAILY + 2 * HOUR);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('a receive is running: nothing done this run\n');
    expect(host.state('seen')).toBe(seen);
  });

  test('receives that held the lock at every run for RECEIVE_HOLD_MAX_SECONDS are ended, and that run prunes; a run that found it free starts the count again', async () => {
    host = new Host({ RECEIVE_HOLD_MAX_SECONDS: String(2 * HOUR) });
    daily(host);
    host.prune(NOW_DAILY);
    const held = path.join(host.stateDir, 'receives-held-since');
    await host.holdLock(host.lock);
    let r = host.run(NOW_DAILY + HOUR);
    expect(r.stdout).toBe('a receive is running: nothing done this run\n');
    expect(fs.readFileSync(held, 'utf8')).toBe(`${NOW_DAILY + HOUR}\n`);
    // an hour later, the same receive still holds it: not yet
    r = host.run(NOW_DAILY + 2 * HOUR);
    expect(r.stdout).toBe('a receive is running: nothing done this run\n');
    // two hours after the first run that found it held: the holders are ended and the run prunes
    const holders = () => spawnSync('flock', ['-n', host.lock, 'true']).status !== 0;
    expect(holders()).toBe(true);
    r = host.run(NOW_DAILY + 3 * HOUR);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(
      /^receives held the receive lock at every run for 7200 s \(RECEIVE_HOLD_MAX_SECONDS=7200\): ended them \([1-9]\d* process\(es\)\); their senders try again at their next run\n/,
    );
    expect(r.stdout).toMatch(/^done: deleted \d+, kept/m);
    expect(holders()).toBe(false);
    expect(fs.existsSync(held)).toBe(false);
    // held again: the count starts at the first run that finds it held, not at the old one
    await host.holdLock(host.lock);
    expect(host.run(NOW_DAILY + 4 * HOUR).stdout).toBe('a receive is running: nothing done this run\n');
    expect(host.run(NOW_DAILY + 5 * HOUR).stdout).toBe('a receive is running: nothing done this run\n');
    expect(holders()).toBe(true);
  });

  test('--dry-run changes nothing: no state, no status', () => {
    host = new Host();
    daily(host);
    host.add(NOW_DAILY, { name: 'x', state: 'partial' });
    const r = host.dryRun(NOW_DAILY);
    expect(r.status).toBe(0);
    expect(r.del.size).toBe(1);
    expect(fs.existsSync(host.stateDir)).toBe(false);
  });
});

describe('status and report', () => {
  test('last-run records when, what was deleted and the counts', () => {
    host = new Host({ RETENTION: '7d', RETENTION_MIN: 'no' });
    daily(host);
    host.primeWithoutNewest(NOW_DAILY);
    host.prune(NOW_DAILY);
    const deleted = dayRange('2024-01-01', '2024-03-23').map((n) => `deleted=${path.join(host.root, n)}`);
    expect(host.state('last-run')).toBe(
      ['when=2024-03-31T12:00:00Z', 'result=ok', 'deleted_count=83', 'kept_count=8', 'groups=1', ...deleted, ''].join(
        '\n',
      ),
    );
  });

  test('report: policy, last run, each backup with its host time and fate; it changes nothing', () => {
    host = new Host({ RETENTION: '2d', RETENTION_MIN: 'no' });
    for (let d = 0; d < 5; d++) host.add(at('2024-03-01T03:00:00Z') + d * DAY);
    host.prune(at('2024-03-05T04:00:00Z'));
    host.add(at('2024-03-06T03:00:00Z'));
    const partial = host.add(at('2024-03-06T05:00:00Z'), { name: 'x', state: 'partial' });
    const before = [host.state('seen'), host.state('last-run')];
    const r = host.run(at('2024-03-06T06:00:00Z'), ['report']);
    expect(r.status).toBe(0);
    const p = (d: string) => path.join(host.root, `laptop/home.202403${d}T0300`);
    expect(r.stdout).toBe(
      [
        "policy: APPEND_ONLY=true RETENTION='2d' RETENTION_MIN=no (btrbk semantics, UTC, host clock)",
        'last run:',
        'when=2024-03-05T04:00:00Z',
        'result=ok',
        'deleted_count=0',
        'kept_count=5',
        'groups=1',
        `group ${host.root}/laptop/home.*`,
        `2024-03-01T03:00:00Z goes ${p('01')} not kept by RETENTION`,
        `2024-03-02T03:00:00Z goes ${p('02')} not kept by RETENTION`,
        `2024-03-03T03:00:00Z goes ${p('03')} not kept by RETENTION`,
        `2024-03-04T03:00:00Z keep ${p('04')} first of its day, 2 ago`,
        `2024-03-05T03:00:00Z keep ${p('05')} first of its day, 1 ago`,
        `2024-03-06T03:00:00Z keep ${p('06')} newest complete backup`,
        `group ${host.root}/laptop/x.*`,
        `2024-03-06T05:00:00Z goes ${partial} half-received`,
        '',
      ].join('\n'),
    );
    expect([host.state('seen'), host.state('last-run')]).toEqual(before);
  });

  test('report without a new backup: what will go once one arrives', () => {
    host = new Host({ RETENTION: '2d', RETENTION_MIN: 'no' });
    for (let d = 0; d < 5; d++) host.add(at('2024-03-01T03:00:00Z') + d * DAY);
    host.prune(at('2024-03-05T04:00:00Z'));
    const r = host.run(at('2024-04-05T04:00:00Z'), ['report']);
    expect(r.stdout).toContain(
      `2024-03-01T03:00:00Z keep ${path.join(host.root, 'laptop/home.20240301T0300')} will go at the next prune after a new backup arrives\n`,
    );
    expect(r.stdout).toContain(
      `2024-03-05T03:00:00Z keep ${path.join(host.root, 'laptop/home.20240305T0300')} newest complete backup\n`,
    );
  });
});

/**
 * btrbk 0.32.5 schedule() for a target (preserve_hour_of_day 0, preserve_day_of_week sunday, UTC), ported
 * line by line from the Perl: deltas per backup, preserve_min, then first-in-hour -> first-in-day -> weekly ->
 * monthly -> yearly. Returns the preserved times (without the host's own "newest always stays").
 */
function btrbkPreserved(now: number, times: number[], policy: Record<string, number | '*'>, min: string): Set<number> {
  const n = new Date(now * 1000);
  const nowH = Date.UTC(n.getUTCFullYear(), n.getUTCMonth(), n.getUTCDate(), n.getUTCHours()) / 1000;
  const rows = [...times]
    .sort((a, b) => a - b)
    .map((t) => {
      const d = new Date(t * 1000);
      const eow = d.getUTCDay();
      let month = d.getUTCMonth();
      let year = d.getUTCFullYear();
      if (d.getUTCDate() <= eow) {
        month -= 1;
        if (month < 0) [month, year] = [11, year - 1];
      }
      const dh = Math.trunc(
        (nowH - Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()) / 1000) / 3600,
      );
      const dd = Math.trunc((dh + d.getUTCHours()) / 24);
      const dy = n.getUTCFullYear() - year;
      return { t, delta: [dh, dd, Math.trunc((dd + eow) / 7), dy * 12 + (n.getUTCMonth() - month), dy] };
    });
  const keep = new Set<number>();
  const m = /^(\d+)([hdwmy])$/.exec(min);
  for (const r of rows) if (m && r.delta['hdwmy'.indexOf(m[2])] <= Number(m[1])) keep.add(r.t);
  let level = rows;
  'hdwmy'.split('').forEach((u, k) => {
    const first = new Map<number, (typeof rows)[0]>();
    for (const r of level) if (!first.has(r.delta[k])) first.set(r.delta[k], r);
    const p = policy[u];
    for (const r of first.values()) if (p && (p === '*' || r.delta[k] <= p)) keep.add(r.t);
    level = [...first.values()];
  });
  return keep;
}

describe('devices (issue 20): a revoked device is frozen until it is a device again or the admin thaws it', () => {
  const registry = (h: Host, text: string) => fs.writeFileSync(path.join(h.dir, 'devices'), text);
  const within = (h: Host, dir: string) => h.names(h.world.keys()).filter((n) => n.startsWith(`${dir}/`));
  const thaw = (h: Host, name: string) =>
    spawnSync('bash', [SCRIPT, '--config', h.conf, '--thaw', name], { encoding: 'utf8', timeout: 20_000 });
  const start = at('2024-01-01T03:00:00Z');
  /** 60 days: a daily backup in a/, b/ (b revoked) and the legacy key's laptop/, pruned every third day (each run
   * with three new backups in each group), the last on the 60th. */
  function twoMonths(h: Host) {
    for (let d = 0; d < 60; d++) {
      for (const dir of ['a/laptop', 'b/laptop', 'laptop']) h.add(start + d * DAY, { dir });
      if (d % 3 === 2) h.prune(start + d * DAY + HOUR);
    }
  }

  test("a revoked device's backups all stay over 60 days of prunes, while new ones keep arriving; a device's and the legacy key's are pruned", () => {
    host = new Host({ RETENTION: "'7d 4w'", RETENTION_MIN: 'no' });
    host.configure({ RETENTION: "'7d 4w'", RETENTION_MIN: 'no', DEVICES_FILE: path.join(host.dir, 'devices') });
    registry(host, 'device a AAAA\nrevoked b\nlegacy LLLL\n');
    twoMonths(host);
    expect(within(host, 'b')).toHaveLength(60);
    expect(within(host, 'a').length).toBeLessThanOrEqual(13);
    expect(within(host, 'laptop').length).toBeLessThanOrEqual(13);
    expect(within(host, 'a')).toEqual(
      within(host, 'laptop')
        .map((n) => `a/${n}`)
        .sort(),
    );
    const last = host.prune(start + 60 * DAY);
    expect(last.stdout).toMatch(
      /done: deleted \d+, kept \d+, groups 2, failed 0, frozen=b:60 \(revoked devices: nothing pruned\)/,
    );
    expect(host.state('last-run')).toMatch(/^frozen=b:60$/m);
    expect(
      [...last.keep]
        .filter(([p]) => p.includes('/b/'))
        .every(([, why]) => why === 'frozen: device b was revoked (btrbk-prune --thaw b)'),
    ).toBe(true);
    // and a year on, nothing of b went
    for (let t = start + 61 * DAY; t < start + 420 * DAY; t += 9 * DAY) {
      host.add(t, { dir: 'b/laptop' }); // the legacy key still reaches b's directory
      host.prune(t + HOUR);
    }
    expect(within(host, 'b')).toHaveLength(60 + 40);
  }, 120_000);

  test('the report names the frozen device; --thaw lets the next prune after a new backup apply the policy', () => {
    host = new Host();
    host.configure({ RETENTION: "'7d 4w'", RETENTION_MIN: 'no', DEVICES_FILE: path.join(host.dir, 'devices') });
    registry(host, 'device a AAAA\nrevoked b\n');
    twoMonths(host);
    const report = host.run(start + 60 * DAY, ['report']);
    expect(report.stdout).toMatch(
      /^frozen device b: 60 backups kept, it was revoked \(sudo btrbk-prune --thaw b releases them; so does b a device again\)$/m,
    );
    expect(report.stdout).toMatch(/ keep \S+\/b\/laptop\/home\.\S+ frozen: device b was revoked/);
    // the registry ends the report (check-volume lists the devices from it), no key in it
    expect(report.stdout.trim().split('\n').slice(-2)).toEqual(['device a current', 'device b frozen']);
    expect(report.stdout).not.toContain('AAAA');

    expect(thaw(host, 'a')).toMatchObject({ status: 1, stderr: expect.stringMatching(/a is not a revoked device/) });
    expect(thaw(host, '../x')).toMatchObject({ status: 1, stderr: expect.stringMatching(/is not a device name/) });
    const t = thaw(host, 'b');
    expect(t.status).toBe(0);
    expect(t.stdout).toMatch(/^thawed device b: /);
    expect(fs.existsSync(path.join(host.stateDir, 'thawed', 'b'))).toBe(true);
    // thawed: first seen again (time alone never deletes), pruned once a newer backup arrives
    host.prune(start + 60 * DAY);
    expect(within(host, 'b')).toHaveLength(60);
    host.add(start + 60 * DAY + 2 * HOUR, { dir: 'b/laptop' });
    const r = host.prune(start + 60 * DAY + 3 * HOUR);
    expect(r.stdout).not.toMatch(/frozen/);
    expect(host.run(start + 60 * DAY + 3 * HOUR, ['report']).stdout).toMatch(/^device b thawed$/m);
    expect(within(host, 'b').length).toBeLessThanOrEqual(13);
  }, 120_000);

  test('a device again unfreezes it and clears a thaw: removed again, it is frozen again', () => {
    host = new Host();
    host.configure({ RETENTION: "'7d'", RETENTION_MIN: 'no', DEVICES_FILE: path.join(host.dir, 'devices') });
    registry(host, 'revoked b\n');
    for (let d = 0; d < 20; d++) host.add(start + d * DAY, { dir: 'b/laptop' });
    host.prune(start + 19 * DAY + HOUR);
    host.add(start + 20 * DAY, { dir: 'b/laptop' });
    expect(host.prune(start + 20 * DAY + HOUR).del.size).toBe(0);
    expect(thaw(host, 'b').status).toBe(0);
    registry(host, 'device b BBBB\n');
    // a device again: first seen (only recorded: time alone never deletes), pruned once a newer backup arrives
    host.add(start + 21 * DAY, { dir: 'b/laptop' });
    expect(host.prune(start + 21 * DAY + HOUR).del.size).toBe(0);
    host.add(start + 22 * DAY, { dir: 'b/laptop' });
    const live = host.prune(start + 22 * DAY + HOUR);
    expect(live.del.size).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(host.stateDir, 'thawed', 'b'))).toBe(false);
    registry(host, 'revoked b\n');
    const count = within(host, 'b').length;
    for (let d = 23; d < 40; d++) {
      host.add(start + d * DAY, { dir: 'b/laptop' });
      if (d % 3 === 0 || d === 39) expect(host.prune(start + d * DAY + HOUR).del.size).toBe(0); // each after new ones
    }
    expect(within(host, 'b')).toHaveLength(count + 17);
  }, 120_000);
});
