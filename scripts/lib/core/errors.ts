// Errors a person can meet. Each says what failed, the likely cause and the next thing to try; entry points
// print them without a stack trace (set BTRBK_AWS_DEBUG=1 to get one).
import process from 'node:process';

/** The optional parts of an OperatorError besides the one-line `what`. */
export interface OperatorErrorOptions {
  /** Why it probably failed (printed as "cause:"; stored as `likelyCause`). */
  cause?: string;
  /** The next thing to try (printed as "next:"). */
  next?: string;
  /** Process exit code when an entry point ends on this error; default 1. */
  exitCode?: number;
  /** Lines printed indented under `what` (command output, the values compared...). */
  details?: string;
}

export class OperatorError extends Error {
  /** What failed, one line (also the Error message). */
  readonly what: string;
  readonly likelyCause: string;
  readonly next: string;
  readonly details: string;
  readonly exitCode: number;

  constructor(what: string, info: OperatorErrorOptions = {}) {
    super(what);
    this.name = 'OperatorError';
    this.what = what;
    this.likelyCause = info.cause ?? '';
    this.next = info.next ?? '';
    this.details = info.details ?? '';
    this.exitCode = info.exitCode ?? 1;
  }

  /** The three-part message: what failed, why it probably did, what to do next. */
  format(): string {
    const lines = [`✗ ${this.what}`];
    if (this.details)
      lines.push(
        ...this.details
          .trimEnd()
          .split('\n')
          .map((l) => `    ${l}`),
      );
    if (this.likelyCause) lines.push(`  cause: ${this.likelyCause}`);
    if (this.next) lines.push(`  next:  ${this.next}`);
    return lines.join('\n');
  }
}

/**
 * Runs an entry point's main function and sets process.exitCode: the number main returns (else 0), or, when it
 * throws, an OperatorError's readable message and exit code; any other error is reported as a bug (exit 1).
 */
export async function runMain(main: () => unknown): Promise<void> {
  try {
    const code = await main();
    process.exitCode = typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof OperatorError) {
      console.error(err.format());
      if (process.env.BTRBK_AWS_DEBUG) console.error(err.stack);
      process.exitCode = err.exitCode;
    } else {
      // anything can be thrown: read message and stack only if they are there
      const { message, stack } = (err ?? {}) as { message?: unknown; stack?: unknown };
      console.error(`✗ unexpected error: ${message ?? err}`);
      console.error('  next:  re-run with BTRBK_AWS_DEBUG=1 for the stack trace, and report it as a bug');
      if (process.env.BTRBK_AWS_DEBUG) console.error(stack);
      process.exitCode = 1;
    }
  }
}
