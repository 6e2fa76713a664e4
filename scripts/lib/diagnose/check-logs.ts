// check-logs: the boot script's log and cloud-init's output through the gate, or, when SSH is down, the EC2
// console output (the local target's kept copy of the boot output).
import fs from 'node:fs';
import { isLocalTarget, type Connection } from '../core/connection.js';
import type { TestResult } from '../core/report.js';
import type { ExecResult } from '../remote/ssh.js';
import { CHECK_COMMANDS, gateRefusalHint } from './check-commands.js';
import type { CheckDeps } from './deps.js';
import { fail, fromError, messageOf, pass } from './results.js';
import { sshSession, type Session } from './session.js';

/** The last `n` lines of a text. */
export function lastLines(text: string, n: number): string {
  const lines = String(text).replace(/\s+$/, '').split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}

export type BootOutcome = { state: 'success' | 'failed'; line: string } | { state: 'unfinished'; line: null };

/**
 * The boot script's outcome from its log: it ends with "btrbk-backup-host: SUCCESS ..." or
 * "btrbk-backup-host: FAILED at step ..." (user-data/bootstrap.sh). The last such line wins (re-runs append).
 */
export function bootOutcome(text: string): BootOutcome {
  const lines = String(text)
    .split('\n')
    .filter((l) => /btrbk-backup-host: (SUCCESS|FAILED)\b/.test(l));
  const line = lines.at(-1);
  if (!line) return { state: 'unfinished', line: null };
  return { state: /btrbk-backup-host: FAILED\b/.test(line) ? 'failed' : 'success', line: line.trim() };
}

/** Lines of a log that say something failed (for the console output summary). */
export function errorLines(text: string): string[] {
  return String(text)
    .split('\n')
    .filter((l) => /\b(ERROR|FAILED|FATAL|refus\w*|failed)\b/.test(l) && !/\b0 failed\b/.test(l));
}

export async function checkLogs(
  conn: Connection,
  deps: CheckDeps = {},
  session: Session = sshSession(conn, deps),
): Promise<TestResult[]> {
  const n = deps.lines ?? 40;
  const results: TestResult[] = [];
  const s = await session.open();
  if (s.ok) {
    for (const [name, command] of [
      ['boot script log', CHECK_COMMANDS.bootLog],
      ['cloud-init output', CHECK_COMMANDS.cloudInitLog],
    ]) {
      let r: ExecResult;
      try {
        r = await session.exec(command);
      } catch (err) {
        r = { code: -1, stdout: '', stderr: messageOf(err) };
      }
      const title = `${name} (last ${n} lines)`;
      if (r.code !== 0 && /not for a device's key/.test(r.stderr)) {
        // a device's key: the host's logs name the other devices, so the gate keeps them for the legacy key and the admin
        results.push(
          pass(title, "not shown to a device's key", {
            skipped: true,
            output: `the gate shows the host's logs only to the legacy key (they name every device): check-logs with the legacy key's connection file, ${isLocalTarget(conn) ? 'npx zx scripts/local-target.mjs status (the local target keeps a copy of the boot output)' : `the EC2 console output (aws ec2 get-console-output --latest --instance-id ${conn.instanceId})`}, or on the host as the admin`,
          }),
        );
        continue;
      }
      if (r.code !== 0) {
        results.push(
          fail(
            title,
            `\`${command}\` → exit ${r.code}: ${gateRefusalHint(r)}`,
            /No such file|cannot open/i.test(r.stderr)
              ? 'the log does not exist yet: the boot script has not run (cloud-init still starting?)'
              : 'run check-ssh',
          ),
        );
        continue;
      }
      const text = lastLines(r.stdout, n);
      if (name !== 'boot script log') {
        results.push(pass(title, `${r.stdout.split('\n').filter(Boolean).length} lines`, { output: text }));
        continue;
      }
      const outcome = bootOutcome(r.stdout);
      if (outcome.state === 'failed') {
        results.push(
          fail(
            title,
            `the boot script failed: ${outcome.line}`,
            'read the lines below for the step that failed; fix the cause, then re-run the boot script by re-provisioning (terraform apply -replace on the instance keeps the data volume), or `npx zx scripts/local-target.mjs up` for the local target',
            '',
            { output: text },
          ),
        );
      } else if (outcome.state === 'success') {
        results.push(pass(title, outcome.line.replace(/^.*?btrbk-backup-host: /, '').slice(0, 60), { output: text }));
      } else {
        results.push(
          pass(title, 'no SUCCESS or FAILED line yet', {
            warn: true,
            cause: 'the boot script is still running, or it was killed before it could finish',
            next: 'wait a minute and run check-logs again',
            output: text,
          }),
        );
      }
    }
    return results;
  }

  // SSH is not reachable at all: the boot may have failed before the gate existed. The console has cloud-init's output.
  const why = `SSH failed: ${s.error.what}`;
  if (isLocalTarget(conn)) {
    // the local target's stand-in for the EC2 console: the boot script's output that `up` keeps on this machine
    results.push(
      fail(
        'logs through the SSH gate',
        why,
        'the local target’s copy of the boot output follows; `npx zx scripts/local-target.mjs status` shows its state, `down` then `up` restarts it',
      ),
    );
    const text = await (deps.readLocalBootLog ?? readLocalBootLog)();
    const title = `local target boot output (last ${n} lines)`;
    if (!text) {
      results.push(
        fail(
          title,
          'no copy of the boot output on this machine',
          'start the local target: npx zx scripts/local-target.mjs up',
        ),
      );
    } else {
      const outcome = bootOutcome(text);
      results.push(
        outcome.state === 'failed'
          ? fail(
              title,
              `the boot script failed: ${outcome.line}`,
              'fix the cause, then `npx zx scripts/local-target.mjs down` and `up`',
              '',
              { output: lastLines(text, n) },
            )
          : pass(
              title,
              outcome.line
                ? outcome.line.replace(/^.*?btrbk-backup-host: /, '').slice(0, 60)
                : 'no SUCCESS or FAILED line',
              { output: lastLines(text, n) },
            ),
      );
    }
    return results;
  }
  results.push(
    fail('logs through the SSH gate', why, 'the EC2 console output follows; fix what it shows, then run check-ssh'),
  );
  try {
    // (the AWS SDK loads here, for an AWS target only: about a CPU second)
    const { getConsoleOutput, makeEc2Client } = await import('../deploy/aws.js');
    const ec2 = deps.ec2 ?? makeEc2Client({ region: conn.region, profile: deps.profile });
    const out = await (deps.getConsoleOutput ?? getConsoleOutput)(ec2, conn.instanceId, {
      profile: deps.profile,
    });
    if (!out.trim()) {
      results.push(
        fail(
          `EC2 console output (last ${n} lines)`,
          'the console output is empty: the instance has not produced any yet (it appears a few minutes after boot)',
          'wait a few minutes and run check-logs again',
        ),
      );
    } else {
      const errs = errorLines(out);
      results.push({
        ...pass(
          `EC2 console output (last ${n} lines)`,
          errs.length
            ? `${errs.length} error line(s); last: ${errs[errs.length - 1].trim().slice(0, 160)}`
            : 'no error lines',
        ),
        output: lastLines(out, n),
      });
    }
  } catch (err) {
    results.push(fromError(`EC2 console output (last ${n} lines)`, err));
  }
  return results;
}

/** The local target's copy of the boot script's output (scripts/lib/local-target/local-target.ts keeps it), or null. */
async function readLocalBootLog(): Promise<string | null> {
  try {
    const { localTargetPaths } = await import('../local-target/local-target.js');
    return fs.readFileSync(localTargetPaths().bootLog, 'utf8');
  } catch {
    return null;
  }
}
