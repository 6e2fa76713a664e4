// Browsing backups through the gate (issue 21: backup.mjs ls, find, diff). Two additions to the grammar:
// `btrbk-manifest --list [--under REL] [--depth N] PATH` (names and metadata, no content read) and
// `btrfs send --no-data` (a send of the trees' changes without file data). Both stay inside the key's own
// directory, and --under, a path *inside* a backup that the gate's path check cannot resolve (a stream wrote it),
// is checked twice: its characters here, its components by btrbk-manifest (never through a symlink, never into
// another subvolume). The program itself is run on a real tree below.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MANIFEST_PATH } from '../../user-data/host-layout.js';
import { dryRun, R, REPO } from './gate-harness.js';

const MANIFEST = path.join(REPO, 'user-data', 'btrbk-manifest');

let tmp: string;
let registry: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gate-browse-'));
  registry = path.join(tmp, 'devices');
  fs.writeFileSync(
    registry,
    'device a AAAAC3NzaC1lZDI1NTE5AAAAIAaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ndevice b AAAAC3NzaC1lZDI1NTE5AAAAIBbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n',
  );
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const asA = () => ['--registry', registry, '--device', 'a'];

describe('the gate: what ls, find and diff may ask', () => {
  test("a device's key: --list and --no-data in its own directory, run as the table says", () => {
    expect(dryRun(`btrbk-manifest --list --under me --depth 1 '${R}/a/home.1'`, asA()).stages).toEqual([
      ['/usr/bin/sudo', '-n', MANIFEST_PATH, '--list', '--under', 'me', '--depth', '1', `${R}/a/home.1`],
    ]);
    expect(dryRun(`sudo -n btrfs send --no-data -p '${R}/a/home.1' '${R}/a/home.2'`, asA()).stages).toEqual([
      ['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'send', '--no-data', '-p', `${R}/a/home.1`, `${R}/a/home.2`],
    ]);
  });

  test.each([
    ["another device's backup", `btrbk-manifest --list '${R}/b/home.1'`],
    ["a path in another device's backup", `btrbk-manifest --list --under me '${R}/b/home.1'`],
    ['the backup root', `btrbk-manifest --list '${R}'`],
    ['its own root', `btrbk-manifest --list '${R}/a'`],
    ['the mount point', "btrbk-manifest --list '/backup_volume'"],
    ['outside the volume', "btrbk-manifest --list '/etc'"],
    ['climbing out of its directory', `btrbk-manifest --list '${R}/a/../b/home.1'`],
    ["a diff against another device's backup", `sudo -n btrfs send --no-data -p '${R}/b/home.1' '${R}/a/home.2'`],
    ["a diff of another device's backups", `sudo -n btrfs send --no-data -p '${R}/b/home.1' '${R}/b/home.2'`],
    ['a metadata send of the root', `sudo -n btrfs send --no-data '${R}'`],
    ['a metadata send of the top level', "sudo -n btrfs send --no-data '/backup_volume'"],
  ])("a device's key is refused: %s", (_what, cmd) => {
    const r = dryRun(cmd, asA());
    expect(r.status).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^rejected: /);
  });

  test.each([
    ['--under climbing out', '--under ../b/home.1'],
    ['--under climbing out further down', '--under me/../../b'],
    ['--under with an escaped ..', '--under me/%2E%2E/%2E%2E/b'],
    ['--under with an escaped /', '--under me%2F..%2F..'],
    ['--under with an escaped NUL', '--under me%00'],
    ['--under absolute', '--under /etc'],
    ['--under with an empty component', '--under me//x'],
    ['--under with a trailing /', '--under me/'],
    ['--under with a glob', "--under 'me/*'"],
    ['--under with a space', "--under 'me/a b'"],
    ['--under with lower-case %xx', '--under me%2e%2e'],
    ['--under without a value', '--under'],
    ['--depth 0', '--depth 0'],
    ['--depth 10000', '--depth 10000'],
    ['--depth not a number', '--depth x'],
    ['--depth before --under', '--depth 1 --under me'],
    ['--list twice', '--list'],
    ['with a sample', '--sample 5 --seed 1'],
    ['an unknown option', '--follow'],
  ])('btrbk-manifest --list is refused: %s', (_what, opts) => {
    for (const args of [[], asA()]) {
      const r = dryRun(`btrbk-manifest --list ${opts} '${R}/a/home.1'`, args);
      expect({ opts, status: r.status, stdout: r.stdout }).toEqual({ opts, status: 255, stdout: '' });
    }
  });

  test('the legacy key: --list and --no-data are accepted anywhere below the root, never outside it', () => {
    expect(dryRun(`btrbk-manifest --list '${R}/b/home.1'`).status).toBe(0);
    expect(dryRun(`sudo -n btrfs send --no-data -p '${R}/l/h.1' '${R}/l/h.2' | zstd -c`).stages).toEqual([
      ['/usr/bin/sudo', '-n', '/usr/bin/btrfs', 'send', '--no-data', '-p', `${R}/l/h.1`, `${R}/l/h.2`],
      ['/usr/bin/zstd', '-c'],
    ]);
    for (const cmd of [
      "btrbk-manifest --list '/backup_volume'",
      `btrbk-manifest --list '${R}'`,
      "sudo -n btrfs send --no-data '/backup_volume'",
      `sudo -n btrfs send --no-data -p '/backup_volume' '${R}/l/h.2'`,
      `sudo -n btrfs send --no-data -f '${R}/x' '${R}/l/h.2'`,
    ])
      expect(dryRun(cmd).status).toBe(255);
  });
});

describe('btrbk-manifest --list on a real tree', () => {
  let dir: string;
  let secret: string;
  beforeAll(() => {
    // btrbk-manifest drops to the btrbk user (or nobody) with CAP_DAC_READ_SEARCH: a tree it can search
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-list-'));
    fs.chmodSync(dir, 0o755);
    secret = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-secret-'));
    fs.writeFileSync(path.join(secret, 'other-device.txt'), 'not yours');
    fs.mkdirSync(path.join(dir, 'me', 'docs', 'deep'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'me', 'docs', 'a b.txt'), 'hello');
    fs.writeFileSync(path.join(dir, 'me', 'docs', 'deep', 'x'), 'x');
    fs.writeFileSync(path.join(dir, 'me', 'caf\u00e9'), 'c');
    fs.symlinkSync(secret, path.join(dir, 'me', 'escape'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(secret, { recursive: true, force: true });
  });
  const list = (...args: string[]) =>
    spawnSync('perl', [MANIFEST, '--list', ...args, dir], { encoding: 'utf8', timeout: 20_000 });
  const paths = (out: string) =>
    out
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split('\t')[0]);

  test('every entry, no content read (SHA256 -, 0 bytes read), the list header', () => {
    const r = list();
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('# btrbk-manifest 1 list');
    expect(lines.at(-1)).toBe('# end entries=8 files=3 bytes=0');
    expect(paths(r.stdout)).toEqual([
      '.',
      'me',
      'me/caf%C3%A9',
      'me/docs',
      'me/docs/a%20b.txt',
      'me/docs/deep',
      'me/docs/deep/x',
      'me/escape',
    ]);
    expect(lines.filter((l) => !l.startsWith('#')).every((l) => l.endsWith('\t-'))).toBe(true);
    expect(r.stdout).not.toContain('other-device');
  });

  test('--under (escaped) and --depth', () => {
    expect(paths(list('--under', 'me/docs', '--depth', '1').stdout)).toEqual([
      'me/docs',
      'me/docs/a%20b.txt',
      'me/docs/deep',
    ]);
    expect(paths(list('--under', 'me/docs/a%20b.txt').stdout)).toEqual(['me/docs/a%20b.txt']);
    expect(paths(list('--under', 'me/caf%C3%A9').stdout)).toEqual(['me/caf%C3%A9']);
  });

  test('--under never follows a symlink out of the backup, and a missing path is exit 3', () => {
    const through = list('--under', 'me/escape/other-device.txt');
    expect(through.status).toBe(3);
    expect(through.stdout).toBe('');
    expect(through.stderr).toBe('btrbk-manifest: me/escape: not a directory of this backup\n');
    // the symlink itself is listed as a symlink, not its target's entries
    expect(paths(list('--under', 'me/escape').stdout)).toEqual(['me/escape']);
    expect(list('--under', 'me/escape').stdout).not.toContain('other-device');
    const missing = list('--under', 'me/nope');
    expect([missing.status, missing.stderr]).toEqual([3, 'btrbk-manifest: me/nope: not in this backup\n']);
  });

  test.each([['me/%2E%2E'], ['..'], ['me/%2F'], ['/etc'], ['me//docs'], ['me/%00']])(
    '--under %s is refused by the program too (exit 2)',
    (rel) => {
      const r = list('--under', rel);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
    },
  );
});
