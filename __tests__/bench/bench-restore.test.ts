// The restore library's parsing and decisions (scripts/lib/data/restore.ts), with a fake remote runner; the real
// thing runs in __tests__/integration/restore.local-target.test.ts and resilience.local-target.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  deleteIncompleteBackups,
  findIncompleteBackups,
  listBackups,
  makeLive,
} from '../../scripts/lib/data/restore.js';
import { runResult } from '../../scripts/lib/core/process.js';
import { LIST_R } from '../support/btrfs-samples.js';
import { sampleConnection } from '../support/connection-fixture.js';

const conn = sampleConnection({ host: '127.0.0.1' });

function fakeRunRemote(stdout: string, status = 0) {
  const calls: string[] = [];
  const runRemote = async (_c: unknown, command: string) => {
    calls.push(command);
    return runResult({ status, stdout, stderr: status ? 'ERROR: cannot access' : '' });
  };
  return { runRemote, calls };
}

test('lists the backups directly below a directory, with the command shape the gate accepts', async () => {
  const { runRemote, calls } = fakeRunRemote(LIST_R);
  const list = await listBackups(conn, '/backup_volume/backups/laptop', { runRemote });
  expect(list.map((b) => path.posix.basename(b.path))).toEqual(['home.20240501T0200', 'home.20240502T0200']);
  expect(calls).toEqual(["sudo -n btrfs subvolume list -a -R -o '/backup_volume/backups/laptop'"]);
});

test('incomplete backups are those without a received UUID; deleting them uses one gate command each', async () => {
  const { runRemote, calls } = fakeRunRemote(LIST_R);
  expect(
    (await findIncompleteBackups(conn, '/backup_volume/backups/laptop', { runRemote })).map((b) => b.path),
  ).toEqual(['/backup_volume/backups/laptop/home.20240502T0200']);
  const deleted = await deleteIncompleteBackups(conn, '/backup_volume/backups/laptop', { runRemote });
  expect(deleted).toEqual(['/backup_volume/backups/laptop/home.20240502T0200']);
  expect(calls[calls.length - 1]).toBe(
    "sudo -n btrfs subvolume delete --commit-after '/backup_volume/backups/laptop/home.20240502T0200'",
  );
});

test('a listing that fails is an OperatorError that says where to look', async () => {
  const { runRemote } = fakeRunRemote('', 1);
  await expect(listBackups(conn, '/backup_volume/backups/nope', { runRemote })).rejects.toMatchObject({
    what: 'cannot list the backups in /backup_volume/backups/nope on the target',
    next: expect.stringMatching(/troubleshoot\.mjs check-volume/),
  });
});

test('making a restore live never replaces an existing path', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'restore-unit-'));
  try {
    fs.writeFileSync(path.join(dir, 'home'), 'precious');
    await expect(makeLive(path.join(dir, 'snap'), path.join(dir, 'home'))).rejects.toMatchObject({
      what: expect.stringMatching(/already exists; not replacing it/),
    });
    expect(fs.readFileSync(path.join(dir, 'home'), 'utf8')).toBe('precious');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
