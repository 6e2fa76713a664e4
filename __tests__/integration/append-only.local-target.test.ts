// The append-only host on the local target, with the real btrbk client and the btrbk.conf setup prints: two runs in
// a row succeed (the second incremental) without btrbk ever asking to delete on the target; the backup key cannot
// delete a backup over SSH; the host's own pruning (btrbk-prune, as the timer runs it, with an injected clock)
// keeps what the policy says and removes a half-received subvolume; the timer is installed and the policy is
// readable through the gate. Everything made on the target is removed afterwards by the target's root helper (the
// admin path: the backup key cannot).
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseSubvolumeShow } from '../../scripts/lib/core/btrfs-output.js';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, MOUNT_POINT, PRUNE_PATH } from '../../user-data/host-layout.js';
import {
  execInTarget,
  installBootScript,
  localTargetPaths,
  renderFor,
  rerunBootScript,
} from '../../scripts/lib/local-target/local-target.js';
import { bootScriptOutdated } from '../../scripts/lib/local-target/boot-script.js';
import { renderBtrbkConf, sshConfigBlock } from '../../scripts/lib/deploy/btrbk-conf.js';
import { createScratchBtrfs, createSubvolume, type ScratchBtrfs } from '../../scripts/lib/data/btrfs-scratch.js';
import { parseRetentionReport } from '../../scripts/lib/diagnose/check-volume.js';

jest.setTimeout(10 * 60_000);

const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);
/** Not the tools' scratch area (selftest/): here the key's deletes must be refused. */
const DIR = `${BACKUP_ROOT}/appendonly-${process.pid}`;
const PRUNE_STAGING = `${MOUNT_POINT}/appendonly-staging-${process.pid}`;
const PRUNE_STATE = `/tmp/appendonly-prune-state-${process.pid}`;
const PRUNE_CONF = `/tmp/appendonly-prune-${process.pid}.conf`;

let scratch: ScratchBtrfs;
let work: string;

function target(argv: string[]) {
  const r = execInTarget(argv, { timeout: 120_000 });
  if (r.status !== 0) throw new Error(`in the target: ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** ssh with the backup key (what a stolen key can do). */
function ssh(command: string) {
  const r = spawnSync(
    'ssh',
    ['-F', path.join(work, 'ssh_config'), '-p', String(conn.port), `${conn.user}@${conn.host}`, '--', command],
    { encoding: 'utf8', timeout: 60_000 },
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function btrbk(...args: string[]) {
  const r = spawnSync('btrbk', ['-c', path.join(work, 'btrbk.conf'), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, PATH: `${work}:${process.env.PATH}` },
  });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The backups in DIR as root sees them: name -> {receivedUuid, parentUuid, readonly}. */
function backups() {
  const names = target(['ls', '-1', DIR]).split('\n').filter(Boolean);
  return Object.fromEntries(
    names.map((n) => {
      const { receivedUuid, parentUuid, readonly } = parseSubvolumeShow(
        target(['btrfs', 'subvolume', 'show', `${DIR}/${n}`]),
      );
      return [n, { receivedUuid, parentUuid, readonly }];
    }),
  );
}

function prune(nowEpoch: number, ...args: string[]) {
  return execInTarget([PRUNE_PATH, '--config', PRUNE_CONF, '--now', String(nowEpoch), ...args], { timeout: 120_000 });
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'append-only-'));
  scratch = await createScratchBtrfs({ sizeMiB: 256, label: 'append-only' });
  await createSubvolume(scratch.path('home'));
  fs.writeFileSync(scratch.path('home', 'notes.txt'), 'first\n');
  fs.mkdirSync(scratch.path('btrbk_snapshots'));
  // the btrbk.conf setup prints, for this test's own directory on the target (the same renderer, defaults: append-only)
  fs.writeFileSync(
    path.join(work, 'btrbk.conf'),
    renderBtrbkConf({ ...conn, backupRoot: DIR }, { volume: scratch.mountpoint, subvolume: 'home' }),
  );
  // btrbk has no ssh option for known_hosts: the person adds the printed block to ~/.ssh/config; here an `ssh`
  // wrapper passes the same block with -F and logs every command btrbk sends
  fs.writeFileSync(path.join(work, 'ssh_config'), `${sshConfigBlock(conn)}\n    BatchMode yes\n`);
  fs.writeFileSync(
    path.join(work, 'ssh'),
    `#!/bin/sh\necho "$*" >> ${work}/ssh.log\nexec /usr/bin/ssh -F ${work}/ssh_config "$@"\n`,
    { mode: 0o755 },
  );
  expect(ssh(`mkdir -p '${DIR}'`).status).toBe(0);
  target(['mkdir', '-p', PRUNE_STAGING, PRUNE_STATE]);
  // the host's policy, for this directory only (the real prune.conf covers the whole backup root)
  target([
    'sh',
    '-c',
    `printf 'APPEND_ONLY=true\\nRETENTION=48h 14d 8w 12m\\nRETENTION_MIN=1d\\nBACKUP_ROOT=${DIR}\\nMOUNT=${MOUNT_POINT}\\nSTAGING=${PRUNE_STAGING}\\nSTATE_DIR=${PRUNE_STATE}\\n' > ${PRUNE_CONF}`,
  ]);
});

afterAll(async () => {
  // the admin path: root on the host deletes what the key cannot
  execInTarget([
    'sh',
    '-c',
    `for s in ${DIR}/*; do [ -e "$s" ] && btrfs subvolume delete "$s"; done; rmdir ${DIR} ${PRUNE_STAGING}; rm -rf ${PRUNE_STATE} ${PRUNE_CONF}`,
  ]);
  for (const sub of ['btrbk_snapshots/*', 'home'])
    spawnSync('sh', ['-c', `btrfs subvolume delete ${scratch.path(sub)}`]);
  await scratch?.destroy();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('append-only host (local target, real btrbk, root)', () => {
  test('btrbk run with the printed btrbk.conf succeeds twice, the second incremental, and never asks the target to delete', () => {
    const first = btrbk('run');
    expect({ status: first.status, out: first.out }).toMatchObject({ status: 0 });
    fs.writeFileSync(scratch.path('home', 'notes.txt'), 'second\n');
    const second = btrbk('run');
    expect({ status: second.status, out: second.out }).toMatchObject({ status: 0 });

    const b = backups();
    const names = Object.keys(b).sort();
    expect(names).toHaveLength(2);
    expect(names.every((n) => /^home\.\d{8}T\d{4}(_\d+)?$/.test(n))).toBe(true);
    expect(Object.values(b).every((x) => x.readonly && x.receivedUuid !== '-')).toBe(true);
    // the second arrived as an incremental: a snapshot of the first on the host
    expect(Object.values(b).filter((x) => x.parentUuid !== '-')).toHaveLength(1);
    const sent = fs.readFileSync(path.join(work, 'ssh.log'), 'utf8');
    expect(sent).toMatch(/btrfs receive/);
    expect(sent).not.toMatch(/delete/);
  });

  test('the backup key cannot delete a backup over SSH, whatever form the command takes', () => {
    const before = backups();
    const name = Object.keys(before).sort()[0];
    for (const cmd of [
      `sudo -n btrfs subvolume delete '${DIR}/${name}'`,
      `sudo -n btrfs subvolume delete --commit-after '${DIR}/${name}'`,
      `btrfs subvolume delete '${DIR}/${name}'`,
    ]) {
      const r = ssh(cmd);
      expect({ cmd, status: r.status, err: r.stderr }).toEqual({
        cmd,
        status: 255,
        err: expect.stringMatching(/^rejected: btrfs subvolume delete: this key cannot delete backups/m),
      });
    }
    expect(backups()).toEqual(before);
    // and btrbk's own `clean` / `prune` have nothing they may delete on the target either
    const pruneRun = btrbk('prune');
    expect(pruneRun.status).toBe(0);
    expect(backups()).toEqual(before);
  });

  test('the host prunes by its own clock: first sight only records, a newer backup makes the policy apply, the newest stays, a half-received one goes', () => {
    const inAYear = Math.floor(Date.now() / 1000) + 400 * 86400;
    // a group seen for the first time is only recorded, whatever the clock says
    const first = prune(inAYear);
    expect({ status: first.status, err: first.stderr }).toEqual({ status: 0, err: '' });
    expect(first.stdout).toMatch(/done: deleted 0, kept 2, groups 1, failed 0/);
    expect(Object.keys(backups())).toHaveLength(2);
    // time alone never deletes: the same clock again, no new backup
    expect(prune(inAYear).stdout).toMatch(/done: deleted 0, kept 2/);

    // a new backup arrives, and a half-received subvolume (as an older host version could leave) lies beside it
    fs.writeFileSync(scratch.path('home', 'notes.txt'), 'third\n');
    expect(btrbk('run').status).toBe(0);
    target(['btrfs', 'subvolume', 'create', `${DIR}/home.20200101T0000`]);
    const names = Object.keys(backups())
      .filter((n) => n !== 'home.20200101T0000')
      .sort();
    expect(names).toHaveLength(3);
    // btrbk names sort by time (home.YYYYMMDDTHHMM, then _1, _2 within a minute): the third run's is last
    const newest = names[names.length - 1];

    // the report says what goes before anything goes
    const report = parseRetentionReport(prune(inAYear, 'report').stdout);
    expect(report.policy).toEqual({ appendOnly: true, retention: '48h 14d 8w 12m', retentionMin: '1d' });
    expect(
      report.backups
        .filter((b) => b.action === 'goes')
        .map((b) => path.posix.basename(b.path))
        .sort(),
    ).toEqual([...names.filter((n) => n !== newest), 'home.20200101T0000'].sort());

    const run = prune(inAYear);
    expect({ status: run.status, err: run.stderr }).toEqual({ status: 0, err: '' });
    // a year on, none of the three is the first of a kept hour, day, week or month any more: only the newest stays
    expect(Object.keys(backups())).toEqual([newest]);
    expect(target(['cat', `${PRUNE_STATE}/last-run`])).toMatch(/^result=ok$/m);
  });

  test('the hourly timer is installed and enabled; the policy is readable with the backup key (btrbk-diag retention)', () => {
    expect(target(['systemctl', 'is-enabled', 'btrbk-prune.timer']).trim()).toBe('enabled');
    expect(target(['systemctl', 'is-active', 'btrbk-prune.timer']).trim()).toBe('active');
    const start = execInTarget(['systemctl', 'start', 'btrbk-prune.service'], { timeout: 120_000 });
    expect({ status: start.status, err: start.stderr }).toEqual({ status: 0, err: '' });
    const r = ssh('btrbk-diag retention');
    expect(r.status).toBe(0);
    const report = parseRetentionReport(r.stdout);
    expect(report.policy).toEqual({ appendOnly: true, retention: '48h 14d 8w 12m', retentionMin: '1d' });
    expect(report.lastRun?.result).toBe('ok');
  });

  test('append_only = false (the person asked for it): the same key deletes a backup over SSH; back to the default, it cannot', async () => {
    // sshd's ForceCommand runs the gate without the key line's options: the mode must be on ForceCommand's line too
    // (before, an append_only = false host still refused every delete)
    fs.writeFileSync(scratch.path('home', 'notes.txt'), 'third\n');
    expect(btrbk('run').status).toBe(0);
    const name = Object.keys(backups()).sort().at(-1)!;
    const paths = localTargetPaths();
    const volumeId = conn.volumeId;
    const rerun = async (overrides: { appendOnly?: string }) => {
      installBootScript(paths, renderFor(paths, volumeId, overrides));
      const r = await rerunBootScript({ paths });
      expect({ status: r.status, tail: r.output.split('\n').slice(-3).join('\n') }).toMatchObject({ status: 0 });
    };
    try {
      await rerun({ appendOnly: 'false' });
      const btrbkSshd = target(['sshd', '-T', '-C', 'user=btrbk,host=x,addr=127.0.0.1']).split('\n');
      expect(btrbkSshd).toContain('forcecommand /usr/local/sbin/btrbk-ssh-gate --allow-delete');
      const del = ssh(`sudo -n btrfs subvolume delete '${DIR}/${name}'`);
      expect({ status: del.status, err: del.stderr }).toMatchObject({ status: 0 });
      expect(Object.keys(backups())).not.toContain(name);
    } finally {
      await rerun({}); // what `up` renders: the default, append-only
    }
    const left = Object.keys(backups()).sort()[0];
    const refused = ssh(`sudo -n btrfs subvolume delete '${DIR}/${left}'`);
    expect({ status: refused.status, err: refused.stderr }).toMatchObject({
      status: 255,
      err: expect.stringMatching(/this key cannot delete backups/),
    });
    expect(Object.keys(backups())).toContain(left);
    // the instance runs the boot script `up` renders again: nothing else sees a changed target
    expect(bootScriptOutdated(paths)).toBe(false);
  });
});
