// The test results the checks report: pass, fail, and a failure made from a thrown error (an OperatorError's
// what, cause, next and details), in the shape core/report.ts prints.
import type { TestResult } from '../core/report.js';

/** What a test result can carry besides name, ok, detail, cause and next. */
export type Extra = Partial<TestResult>;

export const pass = (name: string, detail = '', extra: Extra = {}): TestResult => ({
  name,
  ok: true,
  detail,
  cause: '',
  next: '',
  ...extra,
});
export const fail = (name: string, cause: string, next: string, detail = '', extra: Extra = {}): TestResult => ({
  name,
  ok: false,
  detail,
  cause,
  next,
  ...extra,
});

/** The parts of an OperatorError a failed test shows, read from whatever was thrown (absent ones undefined). */
export function errorFields(err: unknown): {
  what?: string;
  likelyCause?: string;
  next?: string;
  details?: string;
  name?: string;
  message?: string;
} {
  return typeof err === 'object' && err !== null ? err : {};
}

/** A failed test from an error: an OperatorError's what, cause, next and details; anything else as text. */
export const fromError = (name: string, err: unknown, extra: Extra = {}): TestResult => {
  const e = errorFields(err);
  return fail(
    name,
    e.likelyCause ? `${e.what}: ${e.likelyCause}` : (e.what ?? String(err)),
    e.next ?? '',
    e.details ?? '',
    extra,
  );
};

/** An error's message, or the thrown value as text. */
export const messageOf = (err: unknown): string => String(errorFields(err).message ?? err);
