// @ts-nocheck -- typed in the next step of the move to TypeScript
// Errors a person can meet. Each says what failed, the likely cause and the next thing to try; entry points
// print them without a stack trace (set BTRBK_AWS_DEBUG=1 to get one).
import process from 'node:process';

export class OperatorError extends Error {
  /**
   * @param {string} what   what failed, one line
   * @param {{cause?: string, next?: string, exitCode?: number, details?: string}} [info]
   */
  constructor(what, info = {}) {
    super(what);
    this.name = 'OperatorError';
    this.what = what;
    this.likelyCause = info.cause ?? '';
    this.next = info.next ?? '';
    this.details = info.details ?? '';
    this.exitCode = info.exitCode ?? 1;
  }

  /** The three-part message: what failed, why it probably did, what to do next. */
  format() {
    const lines = [`✗ ${this.what}`];
    if (this.details) lines.push(...this.details.trimEnd().split('\n').map((l) => `    ${l}`));
    if (this.likelyCause) lines.push(`  cause: ${this.likelyCause}`);
    if (this.next) lines.push(`  next:  ${this.next}`);
    return lines.join('\n');
  }
}

/** Runs an entry point's main function; an OperatorError becomes a readable message and an exit code. */
export async function runMain(main) {
  try {
    const code = await main();
    process.exitCode = typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof OperatorError) {
      console.error(err.format());
      if (process.env.BTRBK_AWS_DEBUG) console.error(err.stack);
      process.exitCode = err.exitCode;
    } else {
      console.error(`✗ unexpected error: ${err?.message ?? err}`);
      console.error('  next:  re-run with BTRBK_AWS_DEBUG=1 for the stack trace, and report it as a bug');
      if (process.env.BTRBK_AWS_DEBUG) console.error(err?.stack);
      process.exitCode = 1;
    }
  }
}
