// scripts/load-library.mjs: the entry points' library compiled once into .build/ and imported from there; compiled
// again for what changed; tsx's loader where .build/ cannot be written; the compiled modules find the checkout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { compileLibrary } from '../../scripts/load-library.mjs';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'load-library-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(tmp, file)), { recursive: true });
  fs.writeFileSync(path.join(tmp, file), text);
};
const node = (args: string[], opts: { uid?: number; gid?: number } = {}) => {
  const r = spawnSync(process.execPath, args, { cwd: tmp, encoding: 'utf8', ...opts });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
};

describe('compileLibrary', () => {
  const opts = () => ({ root: tmp, buildDir: path.join(tmp, '.build'), dirs: ['lib'] });
  beforeEach(() => {
    fs.copyFileSync(path.join(REPO_ROOT, 'tsconfig.json'), path.join(tmp, 'tsconfig.json'));
    write('package.json', '{ "type": "module" }\n');
    write('lib/a.ts', "import { b } from './sub/b.js';\nexport const a = (n: number): string => `a${b(n)}`;\n");
    write('lib/sub/b.ts', 'export function b(n: number): number {\n  return n + 1;\n}\n');
    write('lib/types.d.ts', 'export type T = number;\n');
  });

  test('compiles every source once, types stripped, into the same tree; the copies run', async () => {
    expect((await compileLibrary(opts())).sort()).toEqual(['lib/a.ts', 'lib/sub/b.ts']);
    const a = fs.readFileSync(path.join(tmp, '.build/lib/a.js'), 'utf8');
    expect(a).toContain('from "./sub/b.js"');
    expect(a).not.toContain(': number');
    expect(fs.existsSync(path.join(tmp, '.build/lib/types.d.js'))).toBe(false);
    expect(await compileLibrary(opts())).toEqual([]);
    const r = node([
      '--input-type=module',
      '-e',
      "const { a } = await import('./.build/lib/a.js'); console.log(a(1));",
    ]);
    expect(r).toEqual({ status: 0, stdout: 'a2', stderr: '' });
  });

  test('a changed source is compiled again, alone; a copy deleted is written again; a source gone takes its copy along', async () => {
    await compileLibrary(opts());
    write('lib/sub/b.ts', 'export function b(n: number): number {\n  return n + 2;\n}\n');
    expect(await compileLibrary(opts())).toEqual(['lib/sub/b.ts']);
    expect(fs.readFileSync(path.join(tmp, '.build/lib/sub/b.js'), 'utf8')).toContain('n + 2');
    // an older mtime (a checkout of an older version) is a change too
    const past = new Date('2020-01-01T00:00:00Z');
    fs.utimesSync(path.join(tmp, 'lib/a.ts'), past, past);
    expect(await compileLibrary(opts())).toEqual(['lib/a.ts']);
    fs.rmSync(path.join(tmp, '.build/lib/a.js'));
    expect(await compileLibrary(opts())).toEqual(['lib/a.ts']);
    fs.rmSync(path.join(tmp, 'lib/sub/b.ts'));
    expect(await compileLibrary(opts())).toEqual([]);
    expect(fs.existsSync(path.join(tmp, '.build/lib/sub/b.js'))).toBe(false);
    expect(Object.keys(JSON.parse(fs.readFileSync(path.join(tmp, '.build/manifest.json'), 'utf8')).files)).toEqual([
      'lib/a.ts',
    ]);
  });

  test('a manifest of other options (another esbuild) compiles everything again; no partial file is left', async () => {
    await compileLibrary(opts());
    const manifest = path.join(tmp, '.build/manifest.json');
    fs.writeFileSync(
      manifest,
      fs.readFileSync(manifest, 'utf8').replace(/"esbuild\\":\\"[^\\]*\\"/, '"esbuild\\":\\"0.0.1\\"'),
    );
    expect(fs.readFileSync(manifest, 'utf8')).toContain('0.0.1');
    expect((await compileLibrary(opts())).sort()).toEqual(['lib/a.ts', 'lib/sub/b.ts']);
    expect(
      fs.readdirSync(path.join(tmp, '.build'), { recursive: true }).filter((f) => String(f).endsWith('.part')),
    ).toEqual([]);
  });

  test('throws where .build cannot be written and where a source does not compile', async () => {
    write('.build', 'a file, not a directory\n');
    await expect(compileLibrary(opts())).rejects.toThrow(/ENOTDIR|EEXIST/);
    fs.rmSync(path.join(tmp, '.build'));
    write('lib/bad.ts', 'export const = ;\n');
    await expect(compileLibrary(opts())).rejects.toThrow(/Expected identifier/);
  });
});

describe('importLibrary, in a checkout of its own (a copy of load-library.mjs, the real node_modules)', () => {
  /** A checkout: scripts/load-library.mjs, the library's three directories, one module that says where it runs. */
  beforeEach(() => {
    fs.copyFileSync(path.join(REPO_ROOT, 'tsconfig.json'), path.join(tmp, 'tsconfig.json'));
    fs.copyFileSync(path.join(REPO_ROOT, 'scripts/load-library.mjs'), path.join(tmp, 'load-library.mjs.tmp'));
    write('package.json', '{ "type": "module" }\n');
    write('scripts/load-library.mjs', fs.readFileSync(path.join(tmp, 'load-library.mjs.tmp'), 'utf8'));
    fs.rmSync(path.join(tmp, 'load-library.mjs.tmp'));
    fs.symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(tmp, 'node_modules'));
    write('constructs/x.ts', 'export const x: number = 1;\n');
    write('user-data/y.ts', "export { x } from '../constructs/x.js';\n");
    write(
      'scripts/lib/where.ts',
      "import { x } from '../../user-data/y.js';\nexport const where: string = `${x} ${import.meta.url}`;\n",
    );
    fs.chmodSync(tmp, 0o755);
  });
  const where = (opts: { uid?: number; gid?: number } = {}) =>
    node(
      [
        '--input-type=module',
        '-e',
        "const { importLibrary } = await import('./scripts/load-library.mjs'); const [{ where }] = await importLibrary('scripts/lib/where.ts'); console.log(where);",
      ],
      opts,
    );

  test('imports the compiled copy; as another user, a fresh .build/ of root is used as it is', () => {
    expect(where()).toEqual({ status: 0, stdout: `1 file://${tmp}/.build/scripts/lib/where.js`, stderr: '' });
    if (process.getuid?.() === 0) {
      expect(where({ uid: 65534, gid: 65534 })).toEqual({
        status: 0,
        stdout: `1 file://${tmp}/.build/scripts/lib/where.js`,
        stderr: '',
      });
    }
  });

  test("as root (it needs root) in another user's checkout, .build/ is left to that user (who can then compile a change)", () => {
    if (process.getuid?.() !== 0) return expect(process.getuid?.()).not.toBe(0); // (only root can build as root)
    fs.chownSync(tmp, 65534, 65534);
    expect(where().status).toBe(0);
    const owners = ['.build', '.build/scripts/lib', '.build/scripts/lib/where.js', '.build/manifest.json'].map(
      (f) => fs.statSync(path.join(tmp, f)).uid,
    );
    expect(owners).toEqual([65534, 65534, 65534, 65534]);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(tmp, 'scripts/lib/where.ts'), later, later);
    expect(where({ uid: 65534, gid: 65534 }).stdout).toBe(`1 file://${tmp}/.build/scripts/lib/where.js`);
  });

  test('falls back to tsx on the sources where .build/ cannot be written (a stale copy, another user) or is not a directory', () => {
    expect(where().status).toBe(0);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(tmp, 'scripts/lib/where.ts'), later, later);
    if (process.getuid?.() === 0) {
      expect(where({ uid: 65534, gid: 65534 })).toEqual({
        status: 0,
        stdout: `1 file://${tmp}/scripts/lib/where.ts`,
        stderr: '',
      });
    }
    fs.rmSync(path.join(tmp, '.build'), { recursive: true });
    write('.build', 'a file\n');
    expect(where()).toEqual({ status: 0, stdout: `1 file://${tmp}/scripts/lib/where.ts`, stderr: '' });
  });
});

test("the real library's compiled modules find this checkout: REPO_ROOT and the boot script's directory", async () => {
  await compileLibrary();
  const r = node([
    '--input-type=module',
    '-e',
    [
      `const { REPO_ROOT } = await import('${REPO_ROOT}/.build/scripts/lib/core/connection.js');`,
      `const { USER_DATA_DIR } = await import('${REPO_ROOT}/.build/user-data/render.js');`,
      'console.log(REPO_ROOT + " " + USER_DATA_DIR);',
    ].join(' '),
  ]);
  expect(r).toEqual({ status: 0, stdout: `${REPO_ROOT} ${REPO_ROOT}/user-data`, stderr: '' });
});
