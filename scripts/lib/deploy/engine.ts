// The Terraform engine: OpenTofu when `tofu` is on PATH, else `terraform`; TERRAFORM_BINARY_NAME overrides (as
// cdktf-cli itself reads it). Providers are never downloaded by the tests: when a filesystem mirror holds
// hashicorp/aws, a CLI configuration makes the engine install it from there and forbids direct downloads of it.
//
// Provider addresses: the synthesized JSON says `source = "aws"`, which Terraform reads as
// registry.terraform.io/hashicorp/aws and OpenTofu as registry.opentofu.org/hashicorp/aws. Mirrors on disk are
// laid out by the address they were made for (here: registry.terraform.io/...), so writeCliConfig() builds a
// small mirror directory in which BOTH addresses link to the same provider package. The JSON stays portable:
// each engine downloads from its own registry when a person deploys without a mirror.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from '../core/errors.js';
import { runSync as runSyncDefault, type RunResult, type RunSync } from '../core/process.js';

export type EngineName = 'tofu' | 'terraform';

export interface Engine {
  name: EngineName;
  /** The executable's absolute path. */
  path: string;
  /** e.g. 1.9.0, without the v. */
  version: string;
}

/** How an engine run ended (status null when the timeout killed it), and its command line for messages. */
export interface EngineResult extends RunResult {
  /** `tofu init -backend=false ...` */
  command: string;
}

/** A stack directory ready for engine runs (see prepareStackDir). */
export interface PreparedStack {
  engine: Engine;
  /** The filesystem mirror the CLI configuration uses, or null. */
  mirror: string | null;
  env: NodeJS.ProcessEnv;
  runEngine(args: string[], opts?: { timeoutMs?: number }): EngineResult;
  init(): EngineResult;
  validate(): EngineResult;
  test(args?: string[]): EngineResult;
}

export const ENGINES = Object.freeze(['tofu', 'terraform'] as const);
/** The provider the stack uses, under both registries' addresses. */
export const AWS_PROVIDER_ADDRESSES: readonly string[] = Object.freeze([
  'registry.terraform.io/hashicorp/aws',
  'registry.opentofu.org/hashicorp/aws',
]);
const MIRROR_LAYOUT = 'registry.terraform.io/hashicorp/aws';

/** Finds an executable on PATH (no shell). */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  if (name.includes('/')) return isExecutable(name) ? path.resolve(name) : null;
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    return st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Parses `tofu version` / `terraform version` output: "OpenTofu v1.9.0" / "Terraform v1.11.4". */
export function parseEngineVersion(text: string | null | undefined): string | null {
  const m = /^(?:OpenTofu|Terraform) v(\d+\.\d+\.\d+\S*)/m.exec(text ?? '');
  return m ? m[1] : null;
}

/**
 * Finds the engine. TERRAFORM_BINARY_NAME (a name on PATH or a path) wins; otherwise tofu, then terraform.
 * Throws an OperatorError when none is found.
 */
export function findEngine({
  env = process.env,
  runSync = runSyncDefault,
}: { env?: NodeJS.ProcessEnv; runSync?: RunSync } = {}): Engine {
  const wanted = env.TERRAFORM_BINARY_NAME;
  const candidates = wanted ? [wanted] : ENGINES;
  for (const candidate of candidates) {
    const file = which(candidate, env);
    if (!file) continue;
    const r = runSync(file, ['version'], { env: { ...env, CHECKPOINT_DISABLE: '1' } });
    const version = parseEngineVersion(r.stdout);
    const name: EngineName = /OpenTofu/.test(r.stdout) ? 'tofu' : 'terraform';
    if (!version) {
      throw new OperatorError(`${file} does not answer like OpenTofu or Terraform`, {
        cause: `\`${file} version\` printed: ${(r.stdout || r.stderr || String(r.error ?? '')).trim().slice(0, 200)}`,
        next: 'point TERRAFORM_BINARY_NAME at a tofu or terraform binary, or unset it',
      });
    }
    return { name, path: file, version };
  }
  throw new OperatorError(
    wanted ? `TERRAFORM_BINARY_NAME=${wanted} is not an executable on PATH` : 'neither tofu nor terraform is on PATH',
    {
      cause:
        'the stack is synthesized to Terraform JSON; checking and deploying it needs OpenTofu (preferred) or Terraform',
      next: 'install OpenTofu (https://opentofu.org/docs/intro/install/) or Terraform, or set TERRAFORM_BINARY_NAME',
    },
  );
}

/** Directories searched for a filesystem mirror, in order (TF_PROVIDER_MIRROR first when set). */
export function mirrorCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME ?? os.homedir();
  return [
    env.TF_PROVIDER_MIRROR,
    '/opt/tf-plugins',
    path.join(home, '.terraform.d/plugins'),
    '/usr/share/terraform/plugins',
    path.join(home, '.local/share/terraform/plugins'),
  ].filter((d): d is string => Boolean(d));
}

/** Returns the first mirror directory that holds registry.terraform.io/hashicorp/aws, or null. */
export function findProviderMirror({ env = process.env }: { env?: NodeJS.ProcessEnv } = {}): string | null {
  for (const dir of mirrorCandidates(env)) {
    if (fs.existsSync(path.join(dir, MIRROR_LAYOUT))) return path.resolve(dir);
  }
  return null;
}

/**
 * Writes `dir/engine.tfrc` (and `dir/mirror/`, the mirror seen under both registries' addresses). With a mirror,
 * hashicorp/aws comes only from it; other providers (none today) would still install directly. Without one,
 * the file is an empty configuration. Returns the file's path.
 */
export function writeCliConfig(
  dir: string,
  { mirror = findProviderMirror() }: { mirror?: string | null } = {},
): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'engine.tfrc');
  if (!mirror) {
    fs.writeFileSync(file, '# no provider mirror found: providers install from their registries\n');
    return file;
  }
  // Real directories down to each platform directory, symlinks for the files: the engines' mirror scan does
  // not follow a symlinked directory.
  const overlay = path.join(dir, 'mirror');
  fs.rmSync(overlay, { recursive: true, force: true });
  const source = path.join(mirror, MIRROR_LAYOUT);
  for (const address of AWS_PROVIDER_ADDRESSES) linkTree(source, path.join(overlay, address));
  const list = AWS_PROVIDER_ADDRESSES.map((a) => JSON.stringify(a)).join(', ');
  fs.writeFileSync(
    file,
    `# written by scripts/lib/deploy/engine.ts: hashicorp/aws from the filesystem mirror ${mirror}, never downloaded
provider_installation {
  filesystem_mirror {
    path    = ${JSON.stringify(overlay)}
    include = [${list}]
  }
  direct {
    exclude = [${list}]
  }
}
`,
  );
  return file;
}

function linkTree(from: string, to: string): void {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    if (fs.statSync(src).isDirectory()) linkTree(src, path.join(to, entry.name));
    else fs.symlinkSync(src, path.join(to, entry.name));
  }
}

/**
 * The environment for engine runs: the CLI configuration (both engines read TF_CLI_CONFIG_FILE; OpenTofu also
 * TOFU_CLI_CONFIG_FILE, which would win, so it is set too), no prompts, no update checks.
 */
export function engineEnv(
  cliConfigFile: string | null | undefined,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_INPUT: '0' };
  if (cliConfigFile) {
    out.TF_CLI_CONFIG_FILE = cliConfigFile;
    out.TOFU_CLI_CONFIG_FILE = cliConfigFile;
  }
  return out;
}

/**
 * Runs the engine in `cwd`. Never throws for a non-zero exit (tests look at the output), only when the process
 * cannot start.
 */
export function runEngine(
  engine: Engine,
  args: string[],
  { cwd, env, timeoutMs = 300_000 }: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): EngineResult {
  const r = runSyncDefault(engine.path, args, { cwd, env, timeoutMs });
  if (r.error) {
    throw new OperatorError(`${engine.name} ${args.join(' ')} could not run`, {
      cause: r.error.message,
      next: `check ${engine.path}`,
    });
  }
  return { ...r, command: `${engine.name} ${args.join(' ')}` };
}

/** What `<engine> test` reported, with the engines' words (pass, fail, skip, error). */
export interface TestOutput {
  /** By test file path. */
  files: Record<string, string>;
  /** By "path/run name". */
  runs: Record<string, string>;
}

/** Parses the human output of `<engine> test`. */
export function parseTestOutput(text: string | null | undefined): TestOutput {
  const files: Record<string, string> = {};
  const runs: Record<string, string> = {};
  let current: string | null = null;
  for (const line of (text ?? '').split('\n')) {
    const file = /^(\S+\.tftest\.(?:hcl|json))\.\.\. (in progress|tearing down|pass|fail|skip|error)$/.exec(line);
    if (file) {
      current = file[1];
      if (!['in progress', 'tearing down'].includes(file[2])) files[current] = file[2];
      continue;
    }
    const run = /^\s+run "([^"]+)"\.\.\. (pass|fail|skip|error)$/.exec(line);
    if (run && current) runs[`${current}/${run[1]}`] = run[2];
  }
  return { files, runs };
}

/**
 * Prepares a synthesized stack directory (cdktf.out/stacks/<name>) for checks: finds the engine and the mirror,
 * and writes the CLI configuration under `workDir` (default: <stackDir>/.engine). `requireMirror` (the tests'
 * default) refuses to run without a mirror, so a test run never downloads.
 */
export function prepareStackDir(
  stackDir: string,
  {
    env = process.env,
    requireMirror = true,
    workDir,
  }: { env?: NodeJS.ProcessEnv; requireMirror?: boolean; workDir?: string } = {},
): PreparedStack {
  const engine = findEngine({ env });
  const mirror = findProviderMirror({ env });
  if (!mirror && requireMirror) {
    throw new OperatorError('no filesystem mirror with the hashicorp/aws provider was found', {
      cause: `looked in ${mirrorCandidates(env).join(', ')} for registry.terraform.io/hashicorp/aws`,
      next: 'set TF_PROVIDER_MIRROR to a mirror directory (`terraform providers mirror DIR` makes one on a machine with network)',
    });
  }
  const cliConfig = writeCliConfig(workDir ?? path.join(stackDir, '.engine'), { mirror });
  const runEnv = engineEnv(cliConfig, env);
  const inStack = (args: string[], opts: { timeoutMs?: number } = {}): EngineResult =>
    runEngine(engine, args, { cwd: stackDir, env: runEnv, ...opts });
  return {
    engine,
    mirror,
    env: runEnv,
    runEngine: inStack,
    init: () => inStack(['init', '-backend=false', '-input=false', '-no-color']),
    validate: () => inStack(['validate', '-no-color']),
    test: (args = []) => inStack(['test', '-no-color', ...args]),
  };
}
