// POSIX sh quoting, the one way the tools write a value that a shell (or the SSH gate's tokenizer) reads back
// unchanged: the connection file, the boot script's settings, the commands sent through the gate, hints for people.

/** Always 'single-quoted', a quote inside written as '\'' (btrbk's quoteshell()). */
export function shellQuote(value: string): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** A word as a person would type it: bare when it holds only safe characters, else shellQuote()d. */
export function shellWord(value: string): string {
  const s = String(value);
  return /^[A-Za-z0-9_.,:/@%+=-]+$/.test(s) ? s : shellQuote(s);
}
