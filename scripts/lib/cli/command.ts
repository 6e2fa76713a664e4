// The command table's types: one row per verb of every entry point (scripts/*.mjs and `btrbk-aws`). A row says
// what the verb takes (options, positional arguments), what it needs (a connection file, root), what it runs, how
// its result prints (text, --json) and its exit status; the runner (runner.ts) does the rest once for all.
import type { Connection } from '../core/connection.js';
import type { Palette } from '../core/report.js';

/** string: one value; number: one value, a finite number; boolean: a flag; list: a value, repeatable. */
export type OptionType = 'string' | 'number' | 'boolean' | 'list';

export interface OptionSpec {
  /** The long name without dashes (`env` for --env). */
  readonly name: string;
  readonly type: OptionType;
  readonly help: string;
  /** The value's name in the help (`FILE`, `N`); default `VALUE`. */
  readonly valueName?: string;
  /** Applied when the option is not given (shown in the help). */
  readonly default?: string | number | boolean;
  /** The only values allowed (refused otherwise, naming them). */
  readonly choices?: readonly string[];
  /** `--name` may stand alone (its value is then ''), as in `--first-backup [TYPE]`. */
  readonly optionalValue?: boolean;
}

export interface PositionalSpec {
  readonly name: string;
  readonly help: string;
  readonly required?: boolean;
  /** Takes every remaining argument (at least one when required). */
  readonly variadic?: boolean;
  readonly choices?: readonly string[];
}

/** What a verb's parsed command line holds: option values by long name, and positionals by name. */
export type OptionValue = string | number | boolean | string[] | undefined;
export interface ParsedArgs {
  readonly options: Readonly<Record<string, OptionValue>>;
  readonly positionals: Readonly<Record<string, string | string[] | undefined>>;
}

/** How a verb finds its connection file (`--env FILE` wins in every case). */
export interface ConnectionSpec {
  /** aws: BTRBK_ENV_FILE, else aws_connection.env; local: local_connection.env; none: the verb decides. */
  readonly default: 'aws' | 'local' | 'none';
  /** The --env help line (what the file is for this verb). */
  readonly help: string;
  /** True when the verb always reads it (false: it may, or writes it). */
  readonly required: boolean;
}

/** What the runner hands a verb's run. */
export interface Context {
  readonly args: ParsedArgs;
  /** --json was given: stdout carries the JSON document alone. */
  readonly json: boolean;
  /** Where progress and commentary go: stdout for text, stderr with --json. */
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  /** `out` is a terminal that takes colours (not NO_COLOR). */
  readonly color: boolean;
  /** Colours for `out` (none when color is false). */
  readonly paint: Palette;
  /** Writes one line to `out`. */
  readonly say: (line: string) => void;
  /** Where the result goes (stdout): a verb whose output is a stream (ls, find, diff) writes its lines here as they
   * come, one JSON object per line with --json, and its `json` returns undefined (the runner then prints nothing). */
  readonly stdout: NodeJS.WritableStream;
  /** The resolved --env file; undefined when the verb's default is `none` and --env was not given. */
  readonly envFile: string | undefined;
  /** Reads and validates envFile (once); an OperatorError when it is missing or incomplete. */
  readonly connection: () => Connection;
  /** The words that run this entry point (`npx zx scripts/backup.mjs`, `btrbk-aws backup`), for messages. */
  readonly prog: string;
}

/** Write `run` before `json`, `text` and `exit` in a row: TypeScript infers the result type from it in source order. */
export interface VerbSpec<R = unknown> {
  readonly name: string;
  readonly summary: string;
  readonly options: readonly OptionSpec[];
  readonly positionals?: readonly PositionalSpec[];
  readonly connection?: ConnectionSpec;
  /** Why it needs root, when it does (shown in the help). */
  readonly root?: string;
  /** Has --json: the runner adds the option and prints `json(result)` on stdout (nothing when it is undefined). */
  readonly json?: (result: NoInfer<R>) => unknown; // may be a Promise (a formatter imported with the run)
  /** Lines printed after the options in the help (examples, notes). */
  readonly notes?: string;
  readonly run: (ctx: Context) => Promise<R>;
  /**
   * The result as text on stdout (nothing when it returns undefined; not called with --json). It may be async so
   * that it can import its formatter: the library loads with the run, never for --help.
   */
  readonly text?: (result: NoInfer<R>, ctx: Context) => string | undefined | Promise<string | undefined>;
  /** The exit status for a result (default 0); a failure a person can act on throws an OperatorError instead. */
  readonly exit?: (result: NoInfer<R>) => number;
}

/** A verb that holds verbs of its own (`local-target.mjs laptop up`). */
export interface GroupSpec {
  readonly name: string;
  readonly summary: string;
  readonly verbs: readonly Row[];
  /** The verb run when none is given (none: the verb is required). */
  readonly defaultVerb?: string;
}

/** A row of any result type (the runner handles every one alike). */
export type AnyVerb = VerbSpec<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type Row = AnyVerb | GroupSpec;

/** One entry point: a single command (setup) or a group of verbs (backup). */
export interface EntryPoint {
  /** The script's name without .mjs, and the `btrbk-aws` sub-command. */
  readonly name: string;
  readonly summary: string;
  /** A single command, or verbs. */
  readonly command: AnyVerb | GroupSpec;
  /** Exit status of a refused command line (default 1). */
  readonly usageExit?: number;
}

export const isGroup = (row: Row): row is GroupSpec => 'verbs' in row;

/** Typed row constructor: the result type flows from run to text, json and exit. */
export const verb = <R>(spec: VerbSpec<R>): VerbSpec<R> => spec;

/** Typed reads of a parsed command line (the row declared the option's type). */
export const str = (a: ParsedArgs, name: string): string | undefined => a.options[name] as string | undefined;
export const num = (a: ParsedArgs, name: string): number | undefined => a.options[name] as number | undefined;
export const bool = (a: ParsedArgs, name: string): boolean => a.options[name] === true;
export const list = (a: ParsedArgs, name: string): string[] => (a.options[name] as string[] | undefined) ?? [];
