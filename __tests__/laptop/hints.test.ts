// Hints name what works where they are printed (issue 21): the connection files of this machine whose key and
// known_hosts are here (local_connection.env read inside the laptop container names keys that are not), and the
// command that runs backup.mjs here (laptop/system.ts). backupCommand's forms: __tests__/cli/output.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatConnection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { runResult } from '../../scripts/lib/core/process.js';
import { unreachableWarning } from '../../scripts/lib/laptop/commands.js';
import { runFailure } from '../../scripts/lib/laptop/report.js';
import { sshFailureReason } from '../../scripts/lib/laptop/target.js';
import { readConnectionHere, usableConnectionFiles } from '../../scripts/lib/laptop/system.js';
import { sampleConnection } from '../support/connection-fixture.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hints-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('usable connection files: the ones whose key and known_hosts exist here, from the project, ~/btrbk-aws and the installed copy', () => {
  const repo = path.join(dir, 'repo');
  const home = path.join(dir, 'root');
  fs.mkdirSync(repo);
  fs.mkdirSync(path.join(home, 'btrbk-aws'), { recursive: true });
  const key = path.join(home, 'btrbk-aws', 'id');
  const pins = path.join(home, 'btrbk-aws', 'known_hosts');
  fs.writeFileSync(key, 'k');
  fs.writeFileSync(pins, 'p');
  // the host machine's file, bound into the container: its key is not here
  fs.writeFileSync(
    path.join(repo, 'local_connection.env'),
    formatConnection(sampleConnection({ keyFile: '/elsewhere/id' })),
  );
  fs.writeFileSync(path.join(repo, 'notes.env'), 'NOT_A=connection\n');
  const mine = path.join(home, 'btrbk-aws', 'connection.env');
  fs.writeFileSync(mine, formatConnection(sampleConnection({ keyFile: key, knownHostsFile: pins })));
  const files = usableConnectionFiles({ env: {}, repo, home, installed: path.join(dir, 'none.env') });
  expect(files).toEqual([mine]);

  const missing = () => {
    throw new OperatorError(`no connection file at ${repo}/aws_connection.env`, { cause: 'setup has not run yet' });
  };
  const err = (() => {
    try {
      readConnectionHere(missing, 'install', () => files);
    } catch (e) {
      return e as OperatorError;
    }
    throw new Error('no error');
  })();
  expect(err.format()).toContain(`connection files on this machine that work here:\n    ${mine}`);
  expect(err.next).toMatch(
    new RegExp(`scripts/backup\\.mjs install --subvolume PATH --env ${mine.replace(/\./g, '\\.')}`),
  );
  // none here: the original message stands
  expect(() => readConnectionHere(missing, 'status', () => [])).toThrow(/no connection file/);
});

test('install with the target unreachable: the warning names the address and port, why (refused, a timeout), and the next step with the connection file', () => {
  const conn = sampleConnection({ host: '127.0.0.1', port: 2342 });
  const refused = sshFailureReason(
    runResult({ status: 255, stderr: 'ssh: connect to host 127.0.0.1 port 2342: Connection refused\r\n' }),
  );
  const w = unreachableWarning(conn, '/root/btrbk-aws/connection.env', refused);
  expect(w).toMatch(
    /^the target btrbk@127\.0\.0\.1 port 2342 did not answer: the target refused the connection \(ssh: connect to host 127\.0\.0\.1 port 2342: Connection refused\): nothing listens there; is the host running\?\. Installed anyway/,
  );
  expect(w).toMatch(/troubleshoot\.mjs check-ssh --env \/root\/btrbk-aws\/connection\.env, then .*backup\.mjs run$/);
  // the reason's own check-ssh hint (without the file) is left out: one next step
  expect(w.match(/check-ssh/g)).toHaveLength(1);
  const timeout = unreachableWarning(
    conn,
    'c.env',
    sshFailureReason(runResult({ status: null }), 'btrbk@127.0.0.1 port 2342'),
  );
  expect(timeout).toMatch(
    /did not answer: the target at btrbk@127\.0\.0\.1 port 2342 did not answer in time \(a timeout/,
  );
  const dropped = sshFailureReason(
    runResult({ status: 255, stderr: 'ssh: connect to host 203.0.113.7 port 22: Connection timed out\n' }),
  );
  expect(unreachableWarning(conn, 'c.env', dropped)).toMatch(
    /a firewall drops the packets; check the network\. Installed/,
  );
});

test("a failed run names btrbk's own lines (WARNING, ERROR, !!!), or says it printed none; no 'see the ERROR lines above' when there were none", () => {
  // btrbk 0.32 with the network down: a WARNING for ssh and the summary's "!!!" lines, no ERROR line
  const output = [
    'WARNING: Failed to fetch subvolume detail for: ssh://btrbk-aws-target/backup_volume/backups/lap/ : ssh: connect to host 127.0.0.1 port 2342: Connection refused',
    '--------------------------------------------------------------------------------',
    'Backup Summary (btrbk command line client, version 0.32.6)',
    '/mnt/laptop/home',
    '*** home.20261205T1950+0000',
    '!!! Target "ssh://btrbk-aws-target/backup_volume/backups/lap" aborted: Failed to fetch subvolume detail',
    '',
    'NOTE: Some errors occurred, which may result in missing backups!',
  ].join('\n');
  const e = runFailure({ status: 10, output });
  expect(e.what).toBe('btrbk run failed (exit 10)');
  expect(e.details).toBe(
    `btrbk said:\n${output.split('\n')[0]}\n!!! Target "ssh://btrbk-aws-target/backup_volume/backups/lap" aborted: Failed to fetch subvolume detail`,
  );
  expect(e.likelyCause).toBe('the target could not be reached (the lines above)');
  expect(e.format()).not.toMatch(/ERROR lines/);
  expect(e.next).toMatch(
    /backup\.mjs status; .*troubleshoot\.mjs check-ssh --env \/etc\/btrbk\/btrbk-aws\/connection\.env$/,
  );
  const silent = runFailure({ status: 1, output: 'something else\n' });
  expect(silent.details).toBe('');
  expect(silent.likelyCause).toMatch(/printed no ERROR, WARNING or !!! line/);
});
