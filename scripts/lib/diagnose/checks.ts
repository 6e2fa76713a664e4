// The troubleshooting checks (also setup's smoke tests): their names, and runChecks, which runs them over one
// shared SSH session. Each check is a list of named tests; each test is {name, ok, detail, cause, next, warn?,
// skipped?, output?}. A failed test carries the cause it found and the next thing to try. Everything a check
// needs from the outside (SSH, AWS, the file system) comes in `deps` (CheckDeps), so every diagnosis is
// unit-tested with fakes.
//
// check-volume and check-logs use only the backup key, through the SSH gate's fixed read-only diagnostics
// (CHECK_COMMANDS): no shell on the host is needed or available.
import type { Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { CheckResult, TestResult } from '../core/report.js';
import { checkAws } from './check-aws.js';
import { checkLogs } from './check-logs.js';
import { checkSsh } from './check-ssh.js';
import { checkVolume } from './check-volume.js';
import type { CheckDeps } from './deps.js';
import { fail, fromError, messageOf } from './results.js';
import { sshSession, type Session } from './session.js';

export type { CheckResult, TestResult };

import { CHECKS, type CheckName } from './check-names.js';

export { CHECKS, type CheckName };

const isCheckName = (name: string): name is CheckName => Object.hasOwn(CHECKS, name);

const CHECK_NAMES = Object.keys(CHECKS) as CheckName[];

/** 'check-all' and duplicates resolved to the list of checks to run, in a fixed order. */
export function expandChecks(names: string[]): CheckName[] {
  const wanted = new Set<CheckName>();
  for (const n of names) {
    if (n === 'check-all' || n === 'all') CHECK_NAMES.forEach((c) => wanted.add(c));
    else if (isCheckName(n)) wanted.add(n);
    else if (isCheckName(`check-${n}`)) wanted.add(`check-${n}` as CheckName);
    else {
      throw new OperatorError(`unknown check "${n}"`, {
        next: `use one of: ${[...CHECK_NAMES, 'check-all'].join(', ')}`,
      });
    }
  }
  return CHECK_NAMES.filter((c) => wanted.has(c));
}

// ------------------------------------------------------------------------------------------------- runChecks

const RUNNERS: Record<CheckName, (conn: Connection, deps: CheckDeps, session: Session) => Promise<TestResult[]>> = {
  'check-ssh': checkSsh,
  'check-volume': checkVolume,
  'check-aws': checkAws,
  'check-logs': checkLogs,
};

/** Runs checks (names as expandChecks takes them) against a connection, sharing one SSH session. */
export async function runChecks(conn: Connection, names: string[], deps: CheckDeps = {}): Promise<CheckResult[]> {
  const list = expandChecks(names);
  const session = deps.session ?? sshSession(conn, deps);
  const out: CheckResult[] = [];
  try {
    for (const check of list) {
      let results;
      try {
        results = await RUNNERS[check](conn, deps, session);
      } catch (err) {
        results = [
          err instanceof OperatorError
            ? fromError(check, err)
            : fail(
                check,
                `unexpected error: ${messageOf(err)}`,
                're-run with BTRBK_AWS_DEBUG=1 and report it as a bug',
              ),
        ];
      }
      out.push({ check, results });
    }
  } finally {
    if (!deps.session) session.close();
  }
  return out;
}

/** True when every test of every check passed (warnings and not-applicable count as passed). */
export function allPassed(checkResults: CheckResult[]): boolean {
  return checkResults.every((c) => c.results.every((r) => r.ok));
}
