// How the entry points (scripts/*.mjs) load the operator library, which is TypeScript: `importLibrary(...)` compiles
// each module once into .build/ (type stripping by esbuild, the compiler tsx runs; `npm run lint` checks the types)
// and imports the compiled copy as plain JavaScript from then on. A source whose mtime or size is not what
// .build/manifest.json recorded when it was compiled is compiled again, alone. Where .build/ cannot be written (a
// checkout that belongs to another user, a read-only one) or a source does not compile, tsx's loader compiles on
// import, as it did for every start before. What it saves: tsx's loader thread and its work on every import, about
// 0.3 CPU s of a 0.55 s `backup.mjs --help` and more for a verb that loads more (docs/PERFORMANCE.md).
//
// .build/ mirrors the tree (.build/scripts/lib/core/connection.js for scripts/lib/core/connection.ts) and holds no
// package.json: the compiled modules are ES modules by the checkout's own package.json, resolve packages from its
// node_modules, and find the checkout (user-data/checkout.ts) as the sources do. Plain JavaScript, this file: it is
// what runs before anything is compiled.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * The directories the library's modules live in: every relative import of a module in them stays in them (the
 * import-graph test holds it so), and all of their .ts files are compiled.
 */
export const LIBRARY_DIRS = Object.freeze(['scripts/lib', 'user-data', 'constructs']);

/** What the compiled copies depend on besides their sources: a change of either compiles everything again. */
const OPTIONS = Object.freeze({ loader: 'ts', format: 'esm', target: 'node20', keepNames: true });

/** The library's sources, repository-relative, with the mtime and size each one has now. */
function sources(root, dirs) {
  const found = {};
  for (const dir of dirs) {
    for (const rel of fs.readdirSync(path.join(root, dir), { recursive: true })) {
      if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
      const file = path.join(dir, rel);
      const st = fs.statSync(path.join(root, file));
      if (st.isFile()) found[file] = `${st.mtimeMs}:${st.size}`;
    }
  }
  return found;
}

const compiledName = (file) => file.replace(/\.ts$/, '.js');

function readManifest(buildDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(buildDir, 'manifest.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Brings buildDir up to date with the sources under `dirs` of `root`: compiles each source the manifest does not
 * record as it is now (or whose compiled copy is missing), removes the copies of sources that are gone, and writes
 * the manifest. Every file is written whole under a name of its own and renamed into place, so processes that build
 * at once leave complete files. Returns the sources compiled (none: it was up to date). Throws when buildDir cannot
 * be written or a source does not compile.
 */
export async function compileLibrary({ root = ROOT, buildDir = path.join(root, '.build'), dirs = LIBRARY_DIRS } = {}) {
  const now = sources(root, dirs);
  const esbuildVersion = JSON.parse(
    fs.readFileSync(path.join(ROOT, 'node_modules', 'esbuild', 'package.json'), 'utf8'),
  ).version;
  const version = JSON.stringify({ esbuild: esbuildVersion, ...OPTIONS });
  const manifest = readManifest(buildDir);
  const recorded = manifest?.version === version ? manifest.files : {};
  const stale = Object.keys(now).filter(
    (file) => recorded[file] !== now[file] || !fs.existsSync(path.join(buildDir, compiledName(file))),
  );
  const gone = Object.keys(recorded).filter((file) => !(file in now));
  if (stale.length === 0 && gone.length === 0) return [];

  const { transform } = await import('esbuild');
  const tsconfig = JSON.parse(fs.readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
  // root building in a person's checkout (sudo ... backup.mjs install) leaves .build/ to the checkout's owner, who
  // can then compile a changed source without sudo
  const owner = fs.statSync(root);
  const adopt = process.getuid?.() === 0 && owner.uid !== 0;
  const writeWhole = (file, text) => {
    const created = fs.mkdirSync(path.dirname(file), { recursive: true });
    const part = `${file}.${process.pid}.part`;
    fs.writeFileSync(part, text);
    if (adopt) {
      fs.chownSync(part, owner.uid, owner.gid);
      for (let dir = path.dirname(file); created && dir.length >= created.length; dir = path.dirname(dir))
        fs.chownSync(dir, owner.uid, owner.gid);
    }
    fs.renameSync(part, file);
  };
  await Promise.all(
    stale.map(async (file) => {
      const source = fs.readFileSync(path.join(root, file), 'utf8');
      const { code } = await transform(source, {
        ...OPTIONS,
        sourcefile: file,
        tsconfigRaw: { compilerOptions: tsconfig.compilerOptions },
      });
      writeWhole(path.join(buildDir, compiledName(file)), code);
    }),
  );
  for (const file of gone) fs.rmSync(path.join(buildDir, compiledName(file)), { force: true });
  writeWhole(path.join(buildDir, 'manifest.json'), `${JSON.stringify({ version, files: now }, null, 1)}\n`);
  return stale;
}

/**
 * The library's modules (repository-relative .ts paths), imported in order: compiled from .build/ when it is (or
 * can be brought) up to date, else from the sources through tsx's loader.
 */
export async function importLibrary(...modules) {
  let compiled = true;
  try {
    await compileLibrary();
  } catch {
    compiled = false;
    const { register } = await import('tsx/esm/api');
    register();
  }
  const loaded = [];
  for (const module of modules) {
    const file = compiled ? path.join(ROOT, '.build', compiledName(module)) : path.join(ROOT, module);
    loaded.push(await import(pathToFileURL(file).href));
  }
  return loaded;
}
