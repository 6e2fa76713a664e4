// Every command line level of every entry point, from the command table: the tests walk these.
import { isGroup, type AnyVerb, type EntryPoint, type Row } from '../../scripts/lib/cli/command.js';

export interface Level {
  entry: EntryPoint;
  /** The verbs typed after the script (none for the entry point's own level). */
  path: string[];
  /** The verb's row, or null for a group's level. */
  verb: AnyVerb | null;
  /** A group's verbs (empty for a verb). */
  verbs: string[];
}

export function levels(entries: readonly EntryPoint[]): Level[] {
  const out: Level[] = [];
  const walk = (entry: EntryPoint, row: Row, path: string[]): void => {
    if (!isGroup(row)) {
      out.push({ entry, path, verb: row, verbs: [] });
      return;
    }
    out.push({ entry, path, verb: null, verbs: row.verbs.map((r) => r.name) });
    for (const r of row.verbs) walk(entry, r, [...path, r.name]);
  };
  for (const e of entries) walk(e, e.command, []);
  return out;
}

export const label = (l: Level): string => [`${l.entry.name}.mjs`, ...l.path].join(' ');

/** The option names a help text lists (`--name ...` at the start of a line, and `-h, --help`). */
export const helpOptions = (help: string): string[] =>
  [...help.matchAll(/^ {2}(?:-h, )?--([a-z][a-z-]*)/gm)].map((m) => m[1]);

/** Values for a verb's required arguments (the first choice, else a word), so that its options can be parsed. */
export const requiredArgs = (v: AnyVerb): string[] =>
  (v.positionals ?? []).filter((p) => p.required).map((p) => p.choices?.[0] ?? 'x');
