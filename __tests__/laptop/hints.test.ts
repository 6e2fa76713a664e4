// Hints name what works where they are printed (issue 21): the connection files of this machine whose key and
// known_hosts are here (local_connection.env read inside the laptop container names keys that are not), and the
// command that runs backup.mjs here (laptop/system.ts). backupCommand's forms: __tests__/cli/output.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatConnection } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
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
