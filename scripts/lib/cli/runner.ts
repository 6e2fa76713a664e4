// The one runner behind every entry point: finds the verb in the table, parses its options with node's
// util.parseArgs (unknown options, missing values and values outside their choices refused, naming the valid
// ones), answers --help/-h at every level from the rows (no connection file, no root, no target needed), resolves
// --env, runs the verb, prints its result as text or --json (stdout holds the JSON document alone; progress goes
// to stderr) and returns the exit status. runMain (core/errors.ts) gives errors their voice.
import path from 'node:path';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { LOCAL_ENV_FILE, readConnection, resolveEnvFile, type Connection } from '../core/connection.js';
import { OperatorError, runMain } from '../core/errors.js';
import { palette, useColor } from '../core/report.js';
import {
  isGroup,
  type Context,
  type EntryPoint,
  type GroupSpec,
  type OptionSpec,
  type OptionValue,
  type ParsedArgs,
  type Row,
  type AnyVerb as VerbSpec,
} from './command.js';

const HELP: OptionSpec = { name: 'help', type: 'boolean', help: 'this text' };
const JSON_OPTION: OptionSpec = {
  name: 'json',
  type: 'boolean',
  help: 'print the result as JSON on stdout (progress goes to stderr; the exit status is the same)',
};
const isHelp = (a: string): boolean => a === '--help' || a === '-h';

/** Every option a verb accepts, in help order: its own, then --env, --json and --help as its row asks. */
export function verbOptions(v: VerbSpec): OptionSpec[] {
  const out = [...v.options];
  if (v.connection) out.push({ name: 'env', type: 'string', valueName: 'FILE', help: v.connection.help });
  if (v.json) out.push(JSON_OPTION);
  out.push(HELP);
  return out;
}

const flag = (o: OptionSpec): string =>
  o.type === 'boolean'
    ? `--${o.name}`
    : `--${o.name} ${o.optionalValue ? `[${o.valueName ?? 'VALUE'}]` : (o.valueName ?? (o.choices ? o.choices.join('|') : 'VALUE'))}`;

/** A command line's problem: what is wrong, and the valid choices as the next thing to try. */
export class UsageError extends OperatorError {}

interface Where {
  entry: EntryPoint;
  /** The words before the options: the prog, then the verbs walked so far. */
  words: string[];
  /** The group the verb is in, if any (an unknown option that a sibling verb takes is named as such). */
  group?: GroupSpec;
}
const usageError = (where: Where, what: string, next: string): UsageError =>
  new UsageError(what, {
    next: `${next}; see ${[...where.words, '--help'].join(' ')}`,
    exitCode: where.entry.usageExit ?? 1,
  });

const validOptions = (v: VerbSpec): string =>
  `valid options: ${verbOptions(v)
    .map((o) => `--${o.name}`)
    .join(', ')}`;

/**
 * Parses a verb's arguments (the words after the verb) against its row. Options and positionals may mix; after
 * `--` everything is positional.
 */
export function parseVerbArgs(v: VerbSpec, argv: readonly string[], where: Where): ParsedArgs {
  const specs = verbOptions(v);
  const byName = new Map(specs.map((o) => [o.name, o]));
  // `--name` with an optional value standing alone (at the end, or before another option) gets the value ''
  const args = argv.map((a, i) => {
    const o = a.startsWith('--') ? byName.get(a.slice(2)) : undefined;
    const next = argv[i + 1];
    return o?.optionalValue && (next === undefined || next.startsWith('-')) ? `${a}=` : a;
  });
  const { tokens } = parseArgs({
    args,
    strict: false,
    allowPositionals: true,
    tokens: true,
    options: Object.fromEntries(
      specs.map((o) => [
        o.name,
        {
          type: o.type === 'boolean' ? ('boolean' as const) : ('string' as const),
          ...(o.name === 'help' ? { short: 'h' } : {}),
        },
      ]),
    ),
  });
  const values: Record<string, OptionValue> = {};
  const positionals: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    const o = byName.get(t.name);
    if (!o) {
      const owners = (where.group?.verbs ?? [])
        .filter((r): r is VerbSpec => !isGroup(r) && r !== v && r.options.some((x) => x.name === t.name))
        .map((r) => r.name);
      const hint = owners.length ? ` for ${v.name} (it is an option of ${owners.join(', ')})` : '';
      throw usageError(where, `unknown option ${t.rawName}${hint}`, validOptions(v));
    }
    if (o.type === 'boolean') {
      if (t.value !== undefined)
        throw usageError(where, `${t.rawName} takes no value (given ${t.value})`, validOptions(v));
      values[o.name] = true;
      continue;
    }
    // a value that looks like an option is taken for a missing value (`--env --json`); --name=-x passes it
    if (t.value === undefined || (!t.inlineValue && t.value.startsWith('-')) || (t.value === '' && !o.optionalValue))
      throw usageError(where, `--${o.name} needs a value (${flag(o)})`, validOptions(v));
    if (o.choices && !(o.optionalValue && t.value === '') && !o.choices.includes(t.value))
      throw usageError(where, `--${o.name} ${t.value}: not one of ${o.choices.join(', ')}`, `use ${flag(o)}`);
    if (o.type === 'list') values[o.name] = [...((values[o.name] as string[] | undefined) ?? []), t.value];
    else if (values[o.name] !== undefined) throw usageError(where, `--${o.name} given twice`, `give ${flag(o)} once`);
    else if (o.type === 'number') {
      const n = Number(t.value);
      if (!Number.isFinite(n)) throw usageError(where, `--${o.name} ${t.value} is not a number`, `use ${flag(o)}`);
      values[o.name] = n;
    } else values[o.name] = t.value;
  }
  for (const o of specs)
    if (values[o.name] === undefined)
      values[o.name] = o.default ?? (o.type === 'list' ? [] : o.type === 'boolean' ? false : undefined);
  return { options: values, positionals: assignPositionals(v, positionals, where) };
}

function assignPositionals(v: VerbSpec, given: string[], where: Where): ParsedArgs['positionals'] {
  const out: Record<string, string | string[] | undefined> = {};
  const rest = [...given];
  for (const p of v.positionals ?? []) {
    const take = p.variadic ? rest.splice(0) : rest.splice(0, 1);
    if (p.required && !take.length)
      throw usageError(where, `${v.name || 'this command'} needs ${p.name}`, usage(v, where));
    const bad = p.choices && take.find((x) => !p.choices!.includes(x));
    if (bad) throw usageError(where, `${p.name} ${bad}: not one of ${p.choices!.join(', ')}`, usage(v, where));
    out[p.name] = p.variadic ? take : take[0];
  }
  if (rest.length) throw usageError(where, `unexpected argument ${rest[0]}`, usage(v, where));
  return out;
}

const positionalUsage = (v: VerbSpec): string =>
  (v.positionals ?? [])
    .map((p) => {
      const word = `${p.choices ? p.choices.join('|') : p.name}${p.variadic ? '...' : ''}`;
      return p.required ? word : `[${word}]`;
    })
    .join(' ');

const usage = (v: VerbSpec, where: Where): string =>
  `usage: ${[...where.words, '[options]', positionalUsage(v)].filter(Boolean).join(' ')}`;

const WIDTH = 110;

/** Words of `text` in lines of at most `width` characters (a longer word keeps its own line). */
export function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      if (line && line.length + 1 + word.length > width) {
        out.push(line);
        line = word;
      } else line = line ? `${line} ${word}` : word;
    }
    out.push(line);
  }
  return out;
}

/** Two columns: the names, and their help wrapped beside them. */
const table = (rows: [string, string][], indent = '  '): string => {
  const width = Math.min(32, Math.max(...rows.map(([k]) => k.length)) + 2);
  const pad = `${indent}${' '.repeat(width)}`;
  return rows
    .map(([k, h]) => {
      const lines = wrap(h, WIDTH - pad.length);
      const head =
        k.length + 2 > width ? [`${indent}${k}`, `${pad}${lines[0]}`] : [`${indent}${k.padEnd(width)}${lines[0]}`];
      return [...head, ...lines.slice(1).map((l) => `${pad}${l}`)].join('\n');
    })
    .join('\n');
};

/** The help of one verb, generated from its row: usage, summary, root, positionals, options, notes. */
export function verbHelp(v: VerbSpec, where: Where): string {
  const lines = [`${usage(v, where)}${v.root ? '   (as root)' : ''}`, '', ...wrap(v.summary, WIDTH)];
  if (v.root) lines.push(...wrap(`needs root: ${v.root}`, WIDTH));
  if (v.positionals?.length) lines.push('', 'arguments:', table(v.positionals.map((p) => [p.name, p.help])));
  const optionHelp = (o: OptionSpec): string =>
    [
      o.help,
      o.type === 'list' ? '(repeatable)' : '',
      o.default !== undefined && o.type !== 'boolean' ? `(default ${o.default})` : '',
    ]
      .filter(Boolean)
      .join(' ');
  lines.push(
    '',
    'options:',
    table(verbOptions(v).map((o) => [o.name === 'help' ? '-h, --help' : flag(o), optionHelp(o)])),
  );
  if (v.notes) lines.push('', v.notes);
  return lines.join('\n');
}

/** The help of a group of verbs: its verbs with their summaries. */
export function groupHelp(g: GroupSpec, summary: string, where: Where): string {
  const lines = [
    `usage: ${where.words.join(' ')} <verb> [options]`,
    '',
    ...wrap(summary, WIDTH),
    '',
    'verbs:',
    table(g.verbs.map((r) => [r.name, `${r.summary}${r.name === g.defaultVerb ? ' (the default)' : ''}`])),
    '',
    `${[...where.words, '<verb>', '--help'].join(' ')} shows a verb's options.`,
  ];
  return lines.join('\n');
}

/** Where the command line lands: the verb's row and its arguments, or a help text to print. */
export type Resolved = { help: string } | { verb: VerbSpec; argv: string[]; where: Where };

/** Walks the table along argv's leading words (verbs) down to a verb, or to the help asked for. */
export function resolve(entry: EntryPoint, argv: readonly string[], prog: string): Resolved {
  const where: Where = { entry, words: [prog] };
  let row: Row = entry.command;
  let rest = [...argv];
  let summary = entry.summary;
  while (isGroup(row)) {
    const g: GroupSpec = row;
    const first = rest[0];
    if (first !== undefined && isHelp(first)) return { help: groupHelp(g, summary, where) };
    const verbs = g.verbs.map((r) => r.name).join(', ');
    let name: string;
    if (first === undefined || first.startsWith('-')) {
      if (!g.defaultVerb)
        throw usageError(
          where,
          first === undefined ? 'which verb?' : `which verb? (${first} comes after it)`,
          `verbs: ${verbs}`,
        );
      name = g.defaultVerb;
    } else {
      name = first;
      rest = rest.slice(1);
    }
    const next = g.verbs.find((r) => r.name === name);
    if (!next) throw usageError(where, `unknown command ${name}`, `verbs: ${verbs}`);
    where.words.push(name);
    where.group = g;
    summary = next.summary;
    row = next;
  }
  const v: VerbSpec = row;
  // --help anywhere before `--` (a value of an option is never --help: none is ever that)
  const dash = rest.indexOf('--');
  if (rest.slice(0, dash < 0 ? undefined : dash).some(isHelp)) return { help: verbHelp(v, where) };
  return { verb: v, argv: rest, where };
}

export interface RunIo {
  stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: Readonly<Record<string, string | undefined>>;
}

/** Resolves the verb's connection file as its row says; undefined when the verb decides (default none). */
function envFileFor(v: VerbSpec, explicit: string | undefined, env: RunIo['env']): string | undefined {
  if (!v.connection) return undefined;
  if (v.connection.default === 'aws') return resolveEnvFile(explicit, env);
  if (v.connection.default === 'local') return resolveEnvFile(explicit ?? LOCAL_ENV_FILE, {});
  return explicit === undefined ? undefined : resolveEnvFile(explicit, {});
}

/** Runs one command line of an entry point; returns its exit status (errors are thrown, for runMain). */
export async function runEntry(
  entry: EntryPoint,
  argv: readonly string[],
  prog: string,
  io: RunIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const r = resolve(entry, argv, prog);
  if ('help' in r) {
    stdout.write(`${r.help}\n`);
    return 0;
  }
  const args = parseVerbArgs(r.verb, r.argv, r.where);
  const json = Boolean(args.options.json);
  const out = json ? stderr : stdout;
  const envFile = envFileFor(r.verb, args.options.env as string | undefined, io.env ?? process.env);
  let conn: Connection | undefined;
  const color = useColor(out, io.env ?? process.env);
  const ctx: Context = {
    args,
    json,
    out,
    color,
    paint: palette(color),
    say: (line) => out.write(`${line}\n`),
    stdout,
    envFile,
    connection: () => {
      if (!envFile) throw new Error(`${r.verb.name}: no connection file resolved (its row has no connection)`);
      conn ??= readConnection(envFile);
      return conn;
    },
    prog: r.where.words.join(' '),
  };
  const result = await r.verb.run(ctx);
  if (json && r.verb.json) {
    const doc = await r.verb.json(result);
    if (doc !== undefined) stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    const text = await r.verb.text?.(result, ctx);
    if (text !== undefined) stdout.write(`${text}\n`);
  }
  return r.verb.exit?.(result) ?? 0;
}

/**
 * One command over several entry points (`btrbk-aws backup status`): the first word picks the entry point, which
 * then runs as its script would (same parsing, help, exit statuses).
 */
export async function runSuite(
  entries: readonly EntryPoint[],
  summary: string,
  argv: readonly string[],
  prog: string,
  io: RunIo = {},
): Promise<number> {
  const [name, ...rest] = argv;
  const suite: GroupSpec = {
    name: prog,
    summary,
    verbs: entries.map((e) => ({ ...e.command, name: e.name, summary: e.summary })),
  };
  const where: Where = { entry: { name: prog, summary, command: suite }, words: [prog] };
  if (name === undefined)
    throw usageError(where, 'which command?', `commands: ${entries.map((e) => e.name).join(', ')}`);
  if (isHelp(name)) {
    (io.stdout ?? process.stdout).write(`${groupHelp(suite, summary, where)}\n`);
    return 0;
  }
  const entry = entries.find((e) => e.name === name);
  if (!entry) throw usageError(where, `unknown command ${name}`, `commands: ${entries.map((e) => e.name).join(', ')}`);
  return runEntry(entry, rest, `${prog} ${name}`, io);
}

/** The words a person typed to run a script: `npx zx scripts/NAME.mjs` (or `btrbk-aws NAME`). */
export const scriptProg = (name: string): string => `npx zx scripts/${name}.mjs`;

/**
 * The arguments after the script in process.argv: zx and node put different things before it, so the script's
 * own path (import.meta.url) marks where they start.
 */
export function argsAfterScript(scriptUrl: string, argv: readonly string[] = process.argv): string[] {
  const self = new URL(scriptUrl).pathname;
  const i = argv.findIndex((a, n) => n > 0 && path.resolve(a) === self);
  return argv.slice(i < 0 ? 2 : i + 1);
}

/** An entry point's whole main: `await main(entry, import.meta.url)` in scripts/NAME.mjs. */
export async function main(entry: EntryPoint, scriptUrl: string, prog = scriptProg(entry.name)): Promise<void> {
  await runMain(() => runEntry(entry, argsAfterScript(scriptUrl), prog));
}
