// backup.mjs verify on the laptop side (its options: args-restore.test.ts): the choice of the backup/snapshot pair, and the whole flow with
// a fake target (ssh answered here: the listing, `btrfs subvolume show`, and the gate's btrbk-manifest run by the
// real user-data/btrbk-manifest on a copy of the "snapshot" tree), the record status shows. The real target and
// laptop: __tests__/integration/laptop-verify.local-target.test.ts.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { run as realRun, runResult, type Run } from '../../scripts/lib/core/process.js';
import type { Manifest } from '../../scripts/lib/laptop/install.js';
import { FILES } from '../../scripts/lib/laptop/layout.js';
import { uninstall } from '../../scripts/lib/laptop/commands.js';
import { backupStatus, formatStatus, statusJson } from '../../scripts/lib/laptop/status.js';
import { datedFor } from '../../scripts/lib/laptop/target.js';
import {
  DEFAULT_SAMPLE,
  formatVerify,
  MANIFEST_PROGRAM,
  pickPair,
  readLastVerify,
  verifyBackups,
} from '../../scripts/lib/laptop/verify.js';
import { sampleConnection } from '../support/connection-fixture.js';

const plain = {
  green: (s: string) => s,
  red: (s: string) => s,
  bold: (s: string) => s,
  yellow: (s: string) => s,
  dim: (s: string) => s,
} as unknown as Parameters<typeof formatStatus>[1];

describe('pickPair', () => {
  const d = (names: string[]) =>
    datedFor(
      names.map((n) => ({ name: n, path: `/x/${n}` })),
      'home',
    );
  test('the newest backup and the snapshot of the same name, when it is the newest here', () => {
    const p = pickPair('/home', d(['home.20261129T1100', 'home.20261130T1100']), d(['home.20261130T1100']));
    expect(p).toMatchObject({
      ok: true,
      backup: { name: 'home.20261130T1100' },
      snapshot: { name: 'home.20261130T1100' },
    });
  });
  test("a newer snapshot not sent yet: not the newest snapshot's, both named, run a backup", () => {
    const p = pickPair('/home', d(['home.20261130T1100']), d(['home.20261130T1100', 'home.20261130T1200']));
    expect(p).toMatchObject({ ok: false, state: 'not-newest' });
    expect(!p.ok && p.reason).toMatch(
      /newest on the target home\.20261130T1100, newest here home\.20261130T1200 .*backup\.mjs run/,
    );
  });
  test('a _1 snapshot of the same minute is newer', () => {
    expect(
      pickPair('/home', d(['home.20261130T1100']), d(['home.20261130T1100', 'home.20261130T1100_1'])),
    ).toMatchObject({ ok: false, state: 'not-newest' });
  });
  test('no backup: never; the snapshot gone: nothing to compare with', () => {
    expect(pickPair('/home', [], d(['home.20261130T1100']))).toMatchObject({ ok: false, state: 'never' });
    const gone = pickPair('/home', d(['home.20261130T1200']), d(['home.20261130T1100']));
    expect(gone).toMatchObject({ ok: false, state: 'failed' });
    expect(!gone.ok && gone.reason).toMatch(/home\.20261130T1200 .* is not here/);
  });
});

describe('verifyBackups with a fake target', () => {
  const NAME = 'home.20261130T110000+0000';
  const SNAP_UUID = '6a2f5c1e-0000-4c4c-8a8a-000000000001';
  let work: string;
  let snaps: string;
  let hostCopy: string;
  let manifest: Manifest;
  const show = (uuid: string, received: string) =>
    `${NAME}\n\tName: \t\t\t${NAME}\n\tUUID: \t\t\t${uuid}\n\tParent UUID: \t\t-\n\tReceived UUID: \t\t${received}\n\tFlags: \t\t\treadonly\n`;
  const remotePath = `/backup_volume/backups/lap/${NAME}`;

  /** ssh answered as the target would; everything else (perl on the snapshot, btrfs show) as here. */
  const fakeTarget = ({ received = SNAP_UUID, names = [NAME] }: { received?: string; names?: string[] } = {}) => {
    const remote: string[] = [];
    const run: Run = async (cmd, args, opts) => {
      if (cmd === 'ssh') {
        const line = args.at(-1) ?? '';
        remote.push(line);
        if (line.includes('subvolume list'))
          return runResult({
            status: 0,
            stdout: names
              .map(
                (n, i) => `ID ${256 + i} gen 9 top level 5 received_uuid ${received} path <FS_TREE>/backups/lap/${n}\n`,
              )
              .join(''),
          });
        if (line.includes('subvolume show')) return runResult({ status: 0, stdout: show('bbbb-2', received) });
        const m = /^btrbk-manifest (.*)'(.*)'$/.exec(line);
        if (m && m[2] === remotePath) {
          const r = spawnSync('perl', [MANIFEST_PROGRAM, ...m[1].trim().split(' ').filter(Boolean), hostCopy], {
            encoding: 'latin1',
          });
          return runResult({ status: r.status, stdout: r.stdout, stderr: r.stderr });
        }
        return runResult({ status: 255, stderr: `rejected: ${line}\n` });
      }
      if (cmd === 'btrfs') return runResult({ status: 0, stdout: show(SNAP_UUID, '-') });
      return realRun(cmd, args, opts);
    };
    return { run, remote };
  };

  beforeEach(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'laptop-verify-'));
    fs.chmodSync(work, 0o755);
    snaps = path.join(work, 'snaps');
    const snap = path.join(snaps, NAME);
    fs.mkdirSync(path.join(snap, 'me', 'docs'), { recursive: true });
    for (let i = 0; i < 60; i++)
      fs.writeFileSync(path.join(snap, 'me', 'docs', `n${i}.txt`), `note ${i}\n`.repeat(i + 1));
    hostCopy = path.join(work, 'host');
    expect(spawnSync('cp', ['-a', snap, hostCopy]).status).toBe(0);
    manifest = {
      version: 1,
      targetDir: '/backup_volume/backups/lap',
      machine: 'lap',
      sources: [{ subvolume: '/home', snapshotDir: snaps }],
    } as unknown as Manifest;
  });
  afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

  const verify = (over: Partial<Parameters<typeof verifyBackups>[0]> & { run: Run }) => {
    const said: string[] = [];
    return {
      said,
      done: verifyBackups({
        conn: sampleConnection() as never,
        manifest,
        root: work,
        say: (l) => said.push(l),
        now: () => new Date('2026-11-30T12:00:00Z'),
        ...over,
      }),
    };
  };

  test('clean in full: identity, every entry compared, recorded for status', async () => {
    const f = fakeTarget();
    const v = verify({ run: f.run, sample: 100 });
    const r = await v.done;
    expect(r).toMatchObject({
      ok: true,
      sample: 100,
      seed: null,
      subvolumes: [{ state: 'clean', differences: [], problems: [], backup: remotePath }],
    });
    expect(r.subvolumes[0].compared).toBe(63); // ., me, me/docs and 60 notes
    expect(f.remote).toContain(`btrbk-manifest '${remotePath}'`);
    expect(v.said.join('\n')).toMatch(/this can take minutes/);
    expect(formatVerify(r, plain)).toMatch(/✓ clean {2}\/home {2}home\.\S+\n {4}clean: 63 entries/);
    const rec = readLastVerify(work);
    expect(rec).toMatchObject({
      ok: true,
      at: '2026-11-30T12:00:00.000Z',
      sample: 100,
      seed: null,
      subvolumes: [{ subvolume: '/home', state: 'clean', compared: 63, differences: 0 }],
    });
    expect(fs.existsSync(path.join(work, FILES.lastVerify))).toBe(true);
  });

  test('the identity and the manifests are asked for at once (one ssh round trip less), and said in that order', async () => {
    const f = fakeTarget();
    let manifestAsked = (): void => {};
    const asked = new Promise<void>((resolve) => (manifestAsked = resolve));
    // the host answers `subvolume show` only once the manifest was asked for: one after the other never gets there
    const run: Run = async (cmd, args, opts) => {
      const line = cmd === 'ssh' ? (args.at(-1) ?? '') : '';
      if (line.startsWith('btrbk-manifest')) manifestAsked();
      if (line.includes('subvolume show'))
        await Promise.race([
          asked,
          new Promise((_, reject) => setTimeout(() => reject(new Error('the manifest was not asked for')), 5000)),
        ]);
      return f.run(cmd, args, opts);
    };
    const v = verify({ run, sample: 100 });
    expect((await v.done).subvolumes[0]).toMatchObject({ state: 'clean', compared: 63 });
    const identity = v.said.findIndex((l) => /identity: the backup is a receive/.test(l));
    expect(identity).toBeGreaterThan(0);
    expect(v.said[identity + 1]).toMatch(/^ {2}manifests: /);
  });

  test('the default is a sample with a printed seed; the same seed picks the same entries again', async () => {
    const f = fakeTarget();
    const first = verify({ run: f.run });
    const a = await first.done;
    expect(a.sample).toBe(DEFAULT_SAMPLE);
    expect(a.seed).toMatch(/^\d+$/);
    expect(first.said[0]).toContain(`--sample ${DEFAULT_SAMPLE} --seed ${a.seed}`);
    expect(f.remote).toContain(`btrbk-manifest --sample ${DEFAULT_SAMPLE} --seed ${a.seed} '${remotePath}'`);
    const again = await verify({ run: f.run, sample: 30, seed: '4242' }).done;
    const twice = await verify({ run: f.run, sample: 30, seed: '4242' }).done;
    expect(again.subvolumes[0].state).toBe('clean');
    expect(again.subvolumes[0].compared).toBeLessThan(63);
    expect(again.subvolumes[0].compared).toBeGreaterThan(3);
    expect(twice.subvolumes[0].compared).toBe(again.subvolumes[0].compared);
    expect(formatVerify(again, plain)).toMatch(/--sample 30 --seed 4242/);
  });

  test('a file changed in the backup is named with what differs; not ok; the record says so', async () => {
    fs.writeFileSync(path.join(hostCopy, 'me', 'docs', 'n7.txt'), 'tampered\n');
    fs.chmodSync(path.join(hostCopy, 'me', 'docs', 'n8.txt'), 0o600);
    const r = await verify({ run: fakeTarget().run, sample: 100 }).done;
    expect(r.ok).toBe(false);
    expect(r.subvolumes[0].state).toBe('differences');
    const text = formatVerify(r, plain);
    expect(text).toMatch(/me\/docs\/n7\.txt: content, size/);
    expect(text).toMatch(/me\/docs\/n8\.txt: mode \(local -> backup: mode 0644 -> 0600\)/);
    expect(readLastVerify(work)).toMatchObject({ ok: false, subvolumes: [{ state: 'differences', differences: 2 }] });
  });

  test('a backup received from another snapshot: not-same even when the compared files match', async () => {
    const r = await verify({ run: fakeTarget({ received: 'cccc-3' }).run, sample: 100 }).done;
    expect(r.subvolumes[0]).toMatchObject({
      state: 'not-same',
      problems: [expect.stringMatching(/received from another snapshot/)],
    });
    expect(r.ok).toBe(false);
  });

  test('a newer snapshot here, not sent yet: not-newest, no manifest asked for', async () => {
    fs.mkdirSync(path.join(snaps, 'home.20261130T113000+0000'));
    const f = fakeTarget();
    const r = await verify({ run: f.run }).done;
    expect(r.subvolumes[0]).toMatchObject({
      state: 'not-newest',
      reason: expect.stringMatching(/newest here home\.20261130T113000\+0000/),
    });
    expect(f.remote.filter((l) => l.startsWith('btrbk-manifest'))).toEqual([]);
    expect(r.ok).toBe(false);
  });

  test("the host's manifest fails (the gate refuses): failed with the reason, not clean", async () => {
    const base = fakeTarget();
    const run: Run = async (cmd, args, opts) =>
      cmd === 'ssh' && /btrbk-manifest/.test(args.at(-1) ?? '')
        ? runResult({ status: 1, stderr: 'rejected: not allowed\n' })
        : base.run(cmd, args, opts);
    const r = await verify({ run, sample: 100 }).done;
    expect(r.subvolumes[0]).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(
        /the backup on the target's manifest failed \(exit 1\): rejected: not allowed \(next: npx zx scripts\/troubleshoot.mjs check-ssh/,
      ),
    });
  });

  test('an unreachable target: an OperatorError with what to try, nothing recorded', async () => {
    const run: Run = async (cmd) =>
      cmd === 'ssh'
        ? runResult({ status: 255, stderr: 'ssh: connect to host 203.0.113.7 port 22: Connection refused\n' })
        : runResult({ status: 0 });
    await expect(verify({ run }).done).rejects.toMatchObject({
      what: 'cannot list the backups on the target',
      next: expect.stringMatching(/check-ssh/),
    });
    expect(readLastVerify(work)).toBeNull();
  });

  test('uninstall removes the record with the rest', async () => {
    await verify({ run: fakeTarget().run, sample: 100 }).done;
    const r = await uninstall({ root: work });
    expect(r.files).toContainEqual({ path: FILES.lastVerify, action: 'removed' });
    expect(readLastVerify(work)).toBeNull();
  });

  test('a long manifest says it is still running, once a minute', async () => {
    const f = fakeTarget();
    const slow: Run = async (cmd, args, opts) => {
      if (cmd === 'ssh' && /btrbk-manifest/.test(args.at(-1) ?? '')) await new Promise((res) => setTimeout(res, 250));
      return f.run(cmd, args, opts);
    };
    const v = verify({ run: slow, sample: 100, tickMs: 100 });
    await v.done;
    expect(v.said.filter((l) => /still running \(\d+ s\)/.test(l)).length).toBeGreaterThanOrEqual(1);
  });

  describe('--at and --all (issue 21)', () => {
    const OLD = 'home.20261129T110000+0000';
    const oldPath = `/backup_volume/backups/lap/${OLD}`;
    /** The target holds OLD (its snapshot is gone here) and NAME; OLD's manifest is read from the same copy. */
    const twoBackups = () => {
      const f = fakeTarget({ names: [OLD, NAME] });
      const run: Run = async (cmd, args, opts) =>
        f.run(cmd, cmd === 'ssh' ? args.map((a) => a.replace(oldPath, remotePath)) : args, opts);
      return { f, run };
    };

    test('--at an older backup whose snapshot is gone: read back on the host only (readable), ok', async () => {
      const { f, run } = twoBackups();
      const r = await verify({ run, sample: 100, at: '20261129' }).done;
      expect(r.ok).toBe(true);
      expect(r.subvolumes).toMatchObject([
        { state: 'readable', backup: oldPath, snapshot: null, compared: 63, differences: [] },
      ]);
      expect(r.subvolumes[0].reason).toMatch(
        /^readable: 63 entries read back on the host without an error .* nothing was compared$/,
      );
      expect(f.remote.filter((l) => l.startsWith('btrbk-manifest'))).toEqual([`btrbk-manifest '${remotePath}'`]);
      expect(formatVerify(r, plain)).toMatch(/^✓ readable {2}\/home {2}home\.20261129T110000\+0000$/m);
    });

    test('--at the newest: compared with its snapshot as without --at', async () => {
      const { run } = twoBackups();
      const r = await verify({ run, sample: 100, at: NAME }).done;
      expect(r.subvolumes).toMatchObject([{ state: 'clean', backup: remotePath, compared: 63 }]);
    });

    test('--all: every complete backup, its cost said first; one that cannot be read fails the run', async () => {
      const { run } = twoBackups();
      const v = verify({ run, sample: 100, all: true });
      const r = await v.done;
      expect(v.said[1]).toMatch(/^verify --all: 2 backup\(s\); each is read on the host .* costs 2 times one verify/);
      expect(r.subvolumes.map((x) => [x.backup, x.state])).toEqual([
        [oldPath, 'readable'],
        [remotePath, 'clean'],
      ]);
      expect(r.ok).toBe(true);
      // the older backup's manifest refused (the fake answers only for the path it knows): failed, not ok
      const f2 = fakeTarget({ names: [OLD, NAME] });
      const bad = await verify({ run: f2.run, sample: 100, all: true }).done;
      expect(bad.subvolumes.map((x) => x.state)).toEqual(['failed', 'clean']);
      expect(bad.ok).toBe(false);
    });

    test('--at that names no backup: the timestamps to pick from', async () => {
      const { run } = twoBackups();
      await expect(verify({ run, at: '20250101' }).done).rejects.toMatchObject({
        what: 'no backup of /home matches --at 20250101',
      });
    });
  });

  test('status shows the last verify, in text and --json', async () => {
    const f = fakeTarget();
    await verify({ run: f.run, sample: 30, seed: '9' }).done;
    const run: Run = async (cmd, args, opts) =>
      cmd === 'systemctl' ? runResult({ status: 1 }) : f.run(cmd, args, opts);
    const s = await backupStatus({
      conn: sampleConnection() as never,
      manifest,
      maxAgeHours: 24,
      now: new Date('2026-11-30T14:00:00Z'),
      run,
      root: work,
    });
    expect(formatStatus(s, plain)).toMatch(/^last verify: clean, 2\.0 h ago \(30 % sample, seed 9\)$/m);
    expect(statusJson(s)).toMatchObject({
      lastVerify: {
        ok: true,
        seed: '9',
        sample: 30,
        ageSeconds: 7200,
        subvolumes: [{ subvolume: '/home', state: 'clean' }],
      },
    });
    const none = await backupStatus({
      conn: sampleConnection() as never,
      manifest,
      maxAgeHours: 24,
      run,
      root: path.join(work, 'nothing'),
    });
    expect(formatStatus(none, plain)).toMatch(/^last verify: never/m);
    expect(statusJson(none).lastVerify).toBeNull();
  });
});
