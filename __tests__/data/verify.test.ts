// backup.mjs verify's laptop-independent parts (scripts/lib/data/verify.ts) on the output of the real
// user-data/btrbk-manifest, run on two scratch trees: one as the local snapshot, a copy as the backup.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import {
  checkIdentity,
  compareManifests,
  describeDifference,
  parseManifest,
  unescapeManifestField,
} from '../../scripts/lib/data/verify.js';

const PROGRAM = path.join(REPO_ROOT, 'user-data', 'btrbk-manifest');

function manifestOf(dir: string, sample?: [number, number]): string {
  const args = sample ? ['--sample', String(sample[0]), '--seed', String(sample[1]), dir] : [dir];
  const r = spawnSync('perl', [PROGRAM, ...args], { encoding: 'latin1' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
}

let work: string;
let local: string;
let backup: string;
const NEWLINE_NAME = Buffer.from('new\nline \xff%', 'latin1');

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'verify-'));
  fs.chmodSync(work, 0o755);
  local = path.join(work, 'local');
  fs.mkdirSync(path.join(local, 'docs', 'deep'), { recursive: true });
  for (let i = 0; i < 40; i++) fs.writeFileSync(path.join(local, 'docs', `f${i}.txt`), `file ${i}\n`.repeat(i + 1));
  fs.writeFileSync(path.join(local, 'docs', 'deep', 'secret'), 'only the owner reads this');
  fs.chmodSync(path.join(local, 'docs', 'deep', 'secret'), 0o600);
  fs.chownSync(path.join(local, 'docs', 'deep', 'secret'), 4321, 4321);
  fs.symlinkSync('/etc/shadow', path.join(local, 'docs', 'to-shadow'));
  fs.writeFileSync(Buffer.concat([Buffer.from(`${local}/`), NEWLINE_NAME]), 'odd name');
  backup = path.join(work, 'backup');
  expect(spawnSync('cp', ['-a', local, backup]).status).toBe(0);
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

test('a faithful copy has no differences, in full and in a sample with the same seed; the sample is a true subset', () => {
  const full = compareManifests(manifestOf(local), manifestOf(backup));
  expect(full).toEqual({ compared: 46, differences: [], problems: [] });
  const a = manifestOf(local, [30, 42]);
  const sampled = compareManifests(a, manifestOf(backup, [30, 42]));
  expect(sampled.problems).toEqual([]);
  expect(sampled.differences).toEqual([]);
  expect(sampled.compared).toBeGreaterThan(3);
  expect(sampled.compared).toBeLessThan(30);
  const fullPaths = new Set(parseManifest(manifestOf(local)).entries.keys());
  expect([...parseManifest(a).entries.keys()].every((p) => fullPaths.has(p))).toBe(true);
  // another seed picks another sample, and mixing them is refused
  expect(compareManifests(a, manifestOf(backup, [30, 43])).problems).toEqual([
    expect.stringMatching(/different samples/),
  ]);
});

test('the program never follows a symlink, reads a file only its owner may (least rights), escapes every odd byte', () => {
  const m = parseManifest(manifestOf(local));
  expect(m.entries.get('docs/to-shadow')).toMatchObject({
    type: 'l',
    target: '/etc/shadow',
    sha256: '-',
    mode: '0777',
  });
  expect(m.entries.get('docs/deep/secret')).toMatchObject({ type: 'f', mode: '0600', owner: '4321:4321', size: '25' });
  const odd = 'new%0Aline%20%FF%25';
  expect(m.entries.get(odd)).toMatchObject({ type: 'f', size: '8' });
  expect(unescapeManifestField(odd).equals(NEWLINE_NAME)).toBe(true);
  expect(m.complete).toBe(true);
  expect(m.entries.get('.')).toMatchObject({ type: 'd', size: '-' });
});

test("a file changed behind the backup's back (same size, same mtime) is caught by content; every other kind is named", () => {
  const f = path.join(backup, 'docs', 'f3.txt');
  const st = fs.statSync(f, { bigint: true });
  fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('file 3', 'fil3 3'));
  fs.utimesSync(f, new Date(Number(st.atimeMs)), new Date(Number(st.mtimeMs)));
  // restore the exact nanoseconds with touch -d
  spawnSync('touch', [
    '-m',
    '-d',
    `@${st.mtimeNs / 1_000_000_000n}.${String(st.mtimeNs % 1_000_000_000n).padStart(9, '0')}`,
    f,
  ]);
  fs.chmodSync(path.join(backup, 'docs', 'f4.txt'), 0o666);
  fs.chownSync(path.join(backup, 'docs', 'f5.txt'), 1, 1);
  fs.appendFileSync(path.join(backup, 'docs', 'f6.txt'), 'x');
  fs.rmSync(path.join(backup, 'docs', 'f7.txt'));
  fs.writeFileSync(path.join(backup, 'docs', 'extra'), '');
  fs.rmSync(path.join(backup, 'docs', 'to-shadow'));
  fs.symlinkSync('/etc/passwd', path.join(backup, 'docs', 'to-shadow'));
  const { differences, problems } = compareManifests(manifestOf(local), manifestOf(backup));
  expect(problems).toEqual([]);
  const by = Object.fromEntries(differences.map((d) => [d.path, d.what]));
  expect(by['docs/f3.txt']).toEqual(['content']);
  expect(by['docs/f4.txt']).toEqual(['mode']);
  expect(by['docs/f5.txt']).toEqual(['owner']);
  expect(by['docs/f6.txt']).toEqual(expect.arrayContaining(['content', 'size', 'mtime']));
  expect(by['docs/f7.txt']).toEqual(['missing in the backup']);
  expect(by['docs/extra']).toEqual(['only in the backup']);
  expect(by['docs/to-shadow']).toEqual(expect.arrayContaining(['target']));
  expect(describeDifference(differences.find((d) => d.path === 'docs/f4.txt')!)).toBe(
    'docs/f4.txt: mode (local -> backup: mode 0644 -> 0666)',
  );
});

test('a manifest cut short (the connection dropped) is not taken for a backup with fewer files', () => {
  const full = manifestOf(backup);
  const cut = full.split('\n').slice(0, 10).join('\n');
  const r = compareManifests(manifestOf(local), cut);
  expect(r.problems).toEqual([expect.stringMatching(/backup's manifest is incomplete/)]);
});

test("the backup's top directory's mtime is not compared (btrfs receive cannot keep it), any other directory's is", () => {
  const text = (top: string, sub: string) =>
    [
      '# btrbk-manifest 1 sample=100 seed=0',
      `.\td\t-\t0755\t0:0\t${top}\t-\t-`,
      `me\td\t-\t0755\t0:0\t${sub}\t-\t-`,
      '# end entries=2 files=0 bytes=0',
      '',
    ].join('\n');
  expect(compareManifests(text('1.0', '5.0'), text('2.0', '5.0')).differences).toEqual([]);
  expect(compareManifests(text('1.0', '5.0'), text('1.0', '6.0')).differences).toEqual([
    { path: 'me', what: ['mtime'], values: { mtime: ['5.0', '6.0'] } },
  ]);
});

test('the program refuses a symlink or a relative path as its directory, and bad numbers', () => {
  fs.symlinkSync(local, path.join(work, 'link'));
  for (const args of [
    [path.join(work, 'link')],
    ['local'],
    ['--sample', '0', '--seed', '1', local],
    ['--sample', '5', '--seed', 'x', local],
    ['--sample', '5', local],
    [local, local],
  ]) {
    const r = spawnSync('perl', [PROGRAM, ...args], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^btrbk-manifest: /);
  }
});

describe('identity: the backup must be a receive of the local snapshot', () => {
  const show = (uuid: string, received: string) =>
    `home.20260101T0200\n\tName: \t\t\thome.20260101T0200\n\tUUID: \t\t\t${uuid}\n\tParent UUID: \t\t-\n\tReceived UUID: \t\t${received}\n\tFlags: \t\t\treadonly\n`;
  test('same, other, none', () => {
    expect(checkIdentity(show('aaaa-1', '-'), show('bbbb-2', 'aaaa-1'))).toMatchObject({ same: true });
    expect(checkIdentity(show('aaaa-1', '-'), show('bbbb-2', 'cccc-3'))).toMatchObject({
      same: false,
      reason: expect.stringMatching(/another snapshot/),
    });
    expect(checkIdentity(show('aaaa-1', '-'), show('bbbb-2', '-'))).toMatchObject({
      same: false,
      reason: expect.stringMatching(/no received UUID/),
    });
  });
});

describe('btrbk-manifest walks by name from where it is, never by a path from DIR again', () => {
  test('a tree swapped under a paused walk (its directory renamed away, a symlink to elsewhere in its place): the rest of the walk reads the tree it entered, nothing through the symlink', async () => {
    // what a review did over real SSH: paused the walk by not reading, deleted the backup (selftest) and received
    // one with that name holding a symlink, resumed: the rest of the names were looked up through the symlink, in
    // another device's backup and the host-key directory, and hashed (integration/devices does it for real)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-swap-'));
    try {
      const a = path.join(dir, 'X', 'a');
      fs.mkdirSync(a, { recursive: true });
      for (let i = 0; i < 20_000; i += 1) fs.writeFileSync(path.join(a, String(i).padStart(5, '0')), '');
      fs.writeFileSync(path.join(a, 'zz-secret'), 'mine\n');
      const elsewhere = path.join(dir, 'elsewhere');
      fs.mkdirSync(elsewhere);
      const secret = `not yours ${crypto.randomBytes(8).toString('hex')}\n`;
      fs.writeFileSync(path.join(elsewhere, 'zz-secret'), secret);
      fs.chmodSync(dir, 0o755);
      const child = spawn(PROGRAM, [path.join(dir, 'X')], { stdio: ['ignore', 'pipe', 'pipe'] });
      const chunks: Buffer[] = [];
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const closed = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      await new Promise<void>((resolve) =>
        child.stdout.once('data', (d: Buffer) => {
          chunks.push(d);
          child.stdout.pause(); // the walk blocks once the pipe is full: a few hundred of its 20,000 lines
          resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 500));
      fs.renameSync(path.join(dir, 'X'), path.join(dir, 'X.old'));
      fs.mkdirSync(path.join(dir, 'X'));
      fs.symlinkSync(elsewhere, path.join(dir, 'X', 'a'));
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.stdout.resume();
      const code = await closed;
      const out = Buffer.concat(chunks).toString('latin1');
      const sha = (t: string) => crypto.createHash('sha256').update(t).digest('hex');
      expect(out).not.toContain(sha(secret));
      expect({ code, stderr, secretLine: /^a\/zz-secret\t.*$/m.exec(out)?.[0].split('\t').at(-1) }).toEqual({
        code: 0,
        stderr: '',
        secretLine: sha('mine\n'),
      });
      expect(out).toMatch(/^# end entries=20003 files=20001 /m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
