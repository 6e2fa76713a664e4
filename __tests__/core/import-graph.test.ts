// The import graph of the TypeScript below the entry points (scripts/lib/**, constructs/**, main.ts, user-data/*.ts),
// read from the source text: which layer may import which (the stack reaches nothing of the operator library; the
// operator library may import the stack's variables table), and that the connection file's key names stay inside
// the module that reads and writes the file (issue 18).
import fs from 'node:fs';
import path from 'node:path';
import { CONNECTION_KEYS, REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { LIBRARY_DIRS } from '../../scripts/load-library.mjs';

/** One import: the importing file and the imported one, both repository-relative; `dynamic` for import(). */
interface Edge {
  from: string;
  to: string;
  dynamic: boolean;
}

/** The module specifiers of a source text: static imports and re-exports, and import() calls (comments ignored). */
function importSpecifiers(text: string): Array<{ spec: string; dynamic: boolean }> {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const found: Array<{ spec: string; dynamic: boolean; at: number }> = [];
  const statics = [
    /(?:^|[;\s])import\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s*)?['"]([^'"]+)['"]/g,
    /(?:^|[;\s])export\s+(?:type\s+)?(?:\*(?:\s+as\s+[\w$]+)?|\{[^}]*\})\s*from\s*['"]([^'"]+)['"]/g,
  ];
  for (const re of statics) for (const m of code.matchAll(re)) found.push({ spec: m[1], dynamic: false, at: m.index });
  for (const m of code.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g))
    found.push({ spec: m[1], dynamic: true, at: m.index });
  return found.sort((a, b) => a.at - b.at).map(({ spec, dynamic }) => ({ spec, dynamic }));
}

function tsFiles(dir: string, recursive: boolean): string[] {
  const abs = path.join(REPO_ROOT, dir);
  return fs
    .readdirSync(abs, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? recursive
          ? tsFiles(path.join(dir, e.name), true)
          : []
        : e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')
          ? [path.join(dir, e.name)]
          : [],
    );
}

const FILES = [
  'main.ts',
  ...tsFiles('scripts/lib', true),
  ...tsFiles('constructs', true),
  ...tsFiles('user-data', false),
];

/** Every relative import of FILES, resolved to a repository path (.js specifiers name the .ts source). */
const EDGES: Edge[] = FILES.flatMap((from) =>
  importSpecifiers(fs.readFileSync(path.join(REPO_ROOT, from), 'utf8'))
    .filter(({ spec }) => spec.startsWith('.'))
    .map(({ spec, dynamic }) => ({
      from,
      to: path.join(path.dirname(from), spec).replace(/\.js$/, '.ts'),
      dynamic,
    })),
);

/** Every module reachable from the roots along EDGES, with the chain that reaches it. */
function reachable(roots: string[]): Map<string, string[]> {
  const seen = new Map<string, string[]>(roots.map((r) => [r, [r]]));
  const queue = [...roots];
  while (queue.length) {
    const file = queue.shift()!;
    for (const e of EDGES.filter((x) => x.from === file && !seen.has(x.to))) {
      seen.set(e.to, [...seen.get(file)!, e.to]);
      queue.push(e.to);
    }
  }
  return seen;
}

const show = (edges: Edge[]): string[] => edges.map((e) => `${e.from} -> ${e.to}${e.dynamic ? ' (import())' : ''}`);

describe('the import graph', () => {
  test('the parser finds static imports, type imports, re-exports and import(), and not what comments say', () => {
    const text = [
      "import fs from 'node:fs';",
      "import {\n  a,\n  type B,\n} from './a.js';",
      "import type { C } from '../c.js';",
      "import './side-effect.js';",
      "export { d } from './d.js';",
      "export * from './e.js';",
      "const m = await import('./f.js');",
      "type T = typeof import('./g.js');",
      "// import { x } from './commented.js';",
      "/* await import('./commented-too.js') */",
      "const url = 'https://example.org/import'; // not an import",
    ].join('\n');
    expect(importSpecifiers(text)).toEqual([
      { spec: 'node:fs', dynamic: false },
      { spec: './a.js', dynamic: false },
      { spec: '../c.js', dynamic: false },
      { spec: './side-effect.js', dynamic: false },
      { spec: './d.js', dynamic: false },
      { spec: './e.js', dynamic: false },
      { spec: './f.js', dynamic: true },
      { spec: './g.js', dynamic: true },
    ]);
  });

  test('it reads the whole tree: every relative import resolves to a file that exists', () => {
    expect(FILES.length).toBeGreaterThan(50);
    expect(EDGES.length).toBeGreaterThan(200);
    expect(show(EDGES)).toContain('scripts/lib/deploy/setup.ts -> scripts/lib/core/connection.ts');
    expect(EDGES.filter((e) => !fs.existsSync(path.join(REPO_ROOT, e.to))).map((e) => e.to)).toEqual([]);
  });

  test('the library compiled into .build/ (scripts/load-library.mjs) imports only what is compiled with it: every relative import of a module in LIBRARY_DIRS names, as .js, a .ts source in LIBRARY_DIRS', () => {
    const inLibrary = (f: string) => LIBRARY_DIRS.some((d: string) => f.startsWith(`${d}/`));
    const specs = FILES.filter(inLibrary).flatMap((from) =>
      importSpecifiers(fs.readFileSync(path.join(REPO_ROOT, from), 'utf8'))
        .filter(({ spec }) => spec.startsWith('.'))
        .map(({ spec }) => ({ from, spec, to: path.join(path.dirname(from), spec).replace(/\.js$/, '.ts') })),
    );
    expect(specs.length).toBeGreaterThan(200);
    const outside = specs.filter(({ spec, to }) => !spec.endsWith('.js') || !inLibrary(to) || !to.endsWith('.ts'));
    expect(outside.map(({ from, spec }) => `${from}: ${spec}`)).toEqual([]);
    // main.ts is not in it (cdktf runs it with tsx), and its import of constructs/ would pass; one of it fails
    expect(inLibrary('main.ts')).toBe(false);
    expect(inLibrary('user-data/render.ts') && !inLibrary('__tests__/x.ts')).toBe(true);
  });

  test('deploy/ imports nothing from diagnose/ or local-target/ (setup gets its smoke tests and local target passed in)', () => {
    const upward = show(
      EDGES.filter(
        (e) =>
          e.from.startsWith('scripts/lib/deploy/') &&
          (e.to.startsWith('scripts/lib/diagnose/') || e.to.startsWith('scripts/lib/local-target/')),
      ),
    );
    expect(upward).toEqual([]);
  });

  test("the connection file's key names appear in scripts/lib only in core/connection.ts", () => {
    const keyName = new RegExp(`\\b(${Object.values(CONNECTION_KEYS).join('|')})\\b`);
    expect(keyName.test("cause: 'BTRBK_AWS_SSH_KEY=/keys/k'")).toBe(true);
    // other BTRBK_AWS_ names are not the file's keys (BTRBK_AWS_DEBUG: stack traces on)
    expect(keyName.test('BTRBK_AWS_DEBUG BTRBK_AWS_SUMMARY BTRBK_AWS_HOSTNAME')).toBe(false);
    const inLib = FILES.filter((f) => f.startsWith('scripts/lib/'));
    expect(inLib).toContain('scripts/lib/core/connection.ts');
    const naming = inLib.filter((f) => keyName.test(fs.readFileSync(path.join(REPO_ROOT, f), 'utf8')));
    expect(naming).toEqual(['scripts/lib/core/connection.ts']);
  });

  test('the stack (constructs/, main.ts and all they import in turn) reaches nothing under scripts/', () => {
    const roots = FILES.filter((f) => f === 'main.ts' || f.startsWith('constructs/'));
    const graph = reachable(roots);
    expect(graph.has('user-data/render.ts')).toBe(true); // it does follow imports
    expect([...graph.entries()].filter(([f]) => f.startsWith('scripts/')).map(([, chain]) => chain)).toEqual([]);
    // the walk sees an import into the stack where there is one (the check can fail)
    expect(reachable(['scripts/lib/deploy/tfvars.ts']).has('constructs/variables.ts')).toBe(true);
  });

  test("the laptop's verbs and troubleshoot's checks load no AWS SDK: nothing scripts/lib/laptop/ or diagnose/checks.ts imports statically, in turn, imports @aws-sdk/ (its clients cost every call about a CPU second; check-aws and check-logs load it for an AWS target)", () => {
    /** The static imports that load something (an import() loads when it runs; `import type` never), package ones
     * too, of every file reached. */
    const staticSpecs = (file: string) =>
      importSpecifiers(
        fs
          .readFileSync(path.join(REPO_ROOT, file), 'utf8')
          .replace(/(^|[;\s])(?:import|export)\s+type\s[^;]*?from\s*['"][^'"]+['"]/g, '$1'),
      ).filter((s) => !s.dynamic);
    const sdkReached = (roots: string[]): string[][] => {
      const seen = new Map<string, string[]>(roots.map((r) => [r, [r]]));
      const queue = [...roots];
      const found: string[][] = [];
      while (queue.length) {
        const file = queue.shift()!;
        for (const { spec } of staticSpecs(file)) {
          if (spec.startsWith('@aws-sdk/')) found.push([...seen.get(file)!, spec]);
          if (!spec.startsWith('.')) continue;
          const to = path.join(path.dirname(file), spec).replace(/\.js$/, '.ts');
          if (seen.has(to) || !fs.existsSync(path.join(REPO_ROOT, to))) continue;
          seen.set(to, [...seen.get(file)!, to]);
          queue.push(to);
        }
      }
      return found;
    };
    const laptop = FILES.filter((f) => f.startsWith('scripts/lib/laptop/'));
    expect(laptop).toContain('scripts/lib/laptop/commands.ts');
    expect(sdkReached(laptop)).toEqual([]);
    expect(sdkReached(['scripts/lib/diagnose/checks.ts'])).toEqual([]);
    // the walk finds one where there is one: the cost estimate asks the Price List API
    expect(sdkReached(['scripts/lib/deploy/cost.ts']).map((chain) => chain.at(-1))).toContain(
      '@aws-sdk/client-pricing',
    );
  });

  test('the variables table is a leaf: it imports nothing of the project', () => {
    expect(EDGES.filter((e) => e.from === 'constructs/variables.ts')).toEqual([]);
  });
});
