// The stack may not import the operator library: constructs/ and main.ts, and everything they import in turn
// (the boot-script renderer, the host layout), reach nothing under scripts/. The operator library may import the
// stack's modules (the variables table), not the other way round.
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname), '..', '..');
const SPECIFIER = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** The project files a module imports (relative specifiers, .js resolved to the .ts source). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(SPECIFIER)].map((m) => {
    const target = path.relative(ROOT, path.resolve(ROOT, path.dirname(file), m[1]));
    return target.endsWith('.js') && fs.existsSync(path.join(ROOT, target.replace(/\.js$/, '.ts')))
      ? target.replace(/\.js$/, '.ts')
      : target;
  });
}

/** Every module reachable from the roots, with the chain that reaches it. */
function reachable(roots: string[]): Map<string, string[]> {
  const seen = new Map<string, string[]>(roots.map((r) => [r, [r]]));
  const queue = [...roots];
  while (queue.length) {
    const file = queue.shift()!;
    for (const next of importsOf(file)) {
      if (seen.has(next) || !fs.existsSync(path.join(ROOT, next))) continue;
      seen.set(next, [...seen.get(file)!, next]);
      queue.push(next);
    }
  }
  return seen;
}

const roots = [
  'main.ts',
  ...fs
    .readdirSync(path.join(ROOT, 'constructs'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `constructs/${f}`),
];

test('the stack reaches nothing under scripts/ (chains shown if it does)', () => {
  const graph = reachable(roots);
  expect(graph.size).toBeGreaterThan(roots.length); // it does follow imports (render.ts, host-layout.ts, ...)
  expect(graph.has('user-data/render.ts')).toBe(true);
  const intoScripts = [...graph.entries()].filter(([f]) => f.startsWith('scripts/')).map(([, chain]) => chain);
  expect(intoScripts).toEqual([]);
});

test('the import walk sees an import into scripts/ where there is one (the check can fail)', () => {
  const graph = reachable(['scripts/lib/deploy/tfvars.ts']);
  expect(graph.has('constructs/variables.ts')).toBe(true);
  expect(graph.has('scripts/lib/core/errors.ts')).toBe(true);
});

test('the variables table is a leaf: it imports nothing of the project', () => {
  expect(importsOf('constructs/variables.ts')).toEqual([]);
});
