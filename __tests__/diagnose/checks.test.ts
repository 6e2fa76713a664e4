// check-ssh, check-volume, check-logs and runChecks with injected fakes: every diagnosis the checks can make.
// The gate's answers below are the ones user-data/btrbk-ssh-gate.sh gives (see the last describe, which runs
// the real gate in --dry-run mode on every command the checks send).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CHECKS,
  CHECK_COMMANDS,
  bootOutcome,
  checkKeyFile,
  checkLogs,
  checkSsh,
  checkVolume,
  expandChecks,
  parseRetentionReport,
  runChecks,
} from '../../scripts/lib/diagnose/checks.js';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { MOUNT_POINT } from '../../scripts/lib/core/host-layout.js';
import { checkReportJson, formatCheckReport, summaryLine } from '../../scripts/lib/core/report.js';
import { STATS_OUT, USAGE_OUT } from '../support/btrfs-samples.js';
import { sampleConnection } from '../support/connection-fixture.js';

const BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIJ1Lk8r2TRA8d4uPaB8yR7sbCk4iA3RK2d8QH4P4eN0T';
const conn = sampleConnection;

type Answer = { code: number; stdout?: string; stderr?: string };
const rejected = (why: string): Answer => ({ code: 255, stderr: `rejected: ${why}\n` });

/**
 * What `btrbk-diag retention` prints: the real btrbk-prune's report for a small history (a listing, an injected
 * clock), so the parser reads the script's own format. Three backups of one laptop's home received a day apart on
 * 2026-01-01..03, one half-received; now 2027-03-01: the oldest two go at the next prune.
 */
function retentionReport(lastRun = ''): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checks-prune-'));
  try {
    const mount = spawnSync('findmnt', ['-n', '-o', 'TARGET', '-T', dir], { encoding: 'utf8' }).stdout.trim();
    fs.mkdirSync(path.join(dir, 'state'));
    const day = 86400;
    const t0 = Date.UTC(2026, 0, 1, 2) / 1000;
    if (lastRun) fs.writeFileSync(path.join(dir, 'state', 'last-run'), lastRun);
    fs.writeFileSync(path.join(dir, 'conf'), `APPEND_ONLY=true\nRETENTION=48h 14d 8w 12m\nRETENTION_MIN=1d\nBACKUP_ROOT=${dir}/backups\nMOUNT=${mount}\nSTAGING=${dir}/staging\nSTATE_DIR=${dir}/state\nRECEIVE_LOCK=${dir}/lock\n`);
    // the last prune saw only the first backup: two newer ones arrived since, so this group is due
    fs.writeFileSync(path.join(dir, 'state', 'seen'), `${t0}\t${dir}/backups/laptop/home.*\n`);
    fs.writeFileSync(path.join(dir, 'list'), [0, 1, 2].map((i) => `${t0 + i * day}\tcomplete\t${dir}/backups/laptop/home.2026010${i + 1}T0200\n`).join(''));
    const r = spawnSync('bash', [path.join(REPO_ROOT, 'user-data', 'btrbk-prune.sh'), '--config', path.join(dir, 'conf'), '--listing', path.join(dir, 'list'), '--now', String(Date.UTC(2027, 2, 1) / 1000), 'report'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    return r.stdout.replaceAll(dir, MOUNT_POINT);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const LAST_RUN_OK = 'when=2027-02-28T23:05:12Z\nresult=ok\ndeleted_count=1\nkept_count=3\ngroups=1\ndeleted=/backup_volume/backups/laptop/home.20251201T0200\n';

const BOOT_OK = '2026-11-23T22:57:27Z btrbk-backup-host[finished]: btrbk-backup-host: SUCCESS (version 1) in 13 s; 0 change(s)\n';

/** The gate on a healthy host. */
const healthy = (): Record<string, Answer> => ({
  [CHECK_COMMANDS.version]: { code: 0, stdout: 'btrbk-ssh-gate 1 root=/backup_volume/backups mount=/backup_volume\n' },
  [CHECK_COMMANDS.mount]: { code: 0, stdout: '/backup_volume /dev/nvme1n1 btrfs rw,noatime,compress=zstd:1,space_cache=v2,subvolid=5,subvol=/\n' },
  [CHECK_COMMANDS.usage]: { code: 0, stdout: USAGE_OUT(100 * 2 ** 30, 10 * 2 ** 30) },
  [CHECK_COMMANDS.deviceStats]: { code: 0, stdout: STATS_OUT() },
  [CHECK_COMMANDS.bootLog]: { code: 0, stdout: `step one\n${BOOT_OK}` },
  [CHECK_COMMANDS.cloudInitLog]: { code: 0, stdout: 'Cloud-init v. 24.1 finished\n' },
  [CHECK_COMMANDS.forbidden]: rejected('command not allowed: id'),
  [CHECK_COMMANDS.retention]: { code: 0, stdout: retentionReport(LAST_RUN_OK) },
  [CHECK_COMMANDS.backupRoot('/backup_volume/backups')]: { code: 0, stdout: '/backup_volume/backups\n' },
  [CHECK_COMMANDS.subvolumeList('/backup_volume/backups')]: { code: 0, stdout: 'ID 256 gen 9 cgen 9 top level 5 parent_uuid - received_uuid 4b1e-0001 uuid 1 path <FS_TREE>/backups/a\n' },
});

function fakes(answers: Record<string, Answer> = healthy(), over: Record<string, unknown> = {}) {
  const calls: string[] = [];
  let connects = 0;
  const deps: any = {
    readFile: () => `203.0.113.7 ssh-ed25519 ${BLOB}\n`,
    stat: () => ({ isFile: () => true, mode: 0o100600, uid: 1000 }),
    uid: 1000,
    probe: async () => ({ ok: true, ms: 3 }),
    connect: async () => {
      connects += 1;
      return {
        hostKey: { keyType: 'ssh-ed25519', fingerprint: 'SHA256:pinned' },
        ssh: {
          execCommand: async (cmd: string) => {
            calls.push(cmd);
            const a = answers[cmd] ?? rejected(`unknown in this fake: ${cmd}`);
            return { code: a.code, stdout: a.stdout ?? '', stderr: a.stderr ?? '' };
          },
          dispose: () => {},
        },
      };
    },
    ...over,
  };
  return { deps, calls, connects: () => connects };
}

const connectError = (kind: string, what: string, cause = '') => async () => {
  throw Object.assign(new OperatorError(what, { cause, next: 'do the thing' }), { kind });
};

const byName = (results: any[], re: RegExp) => {
  const r = results.find((x) => re.test(x.name));
  if (!r) throw new Error(`no result matching ${re}: ${results.map((x) => x.name).join(' | ')}`);
  return r;
};

describe('check-ssh', () => {
  it('all pass on a healthy host, through the gate', async () => {
    const { deps, calls } = fakes();
    const r = await checkSsh(conn(), deps);
    expect(r.filter((x: any) => !x.ok)).toEqual([]);
    expect(r.map((x: any) => x.name)).toEqual([
      'private key file permissions',
      'pinned host key on file',
      'TCP 203.0.113.7:22 reachable',
      'host key matches the pinned key',
      'key accepted for btrbk',
      'lands in the SSH gate (an allowed diagnostic runs)',
      'the gate refuses a forbidden command (`id`)',
      'an allowed btrbk command runs (btrfs subvolume list)',
    ]);
    expect(r[5].detail).toBe('btrbk-ssh-gate 1 root=/backup_volume/backups mount=/backup_volume');
    expect(calls).toEqual(['btrbk-diag version', 'id', "sudo -n btrfs subvolume list -a -c -u -q -R '/backup_volume/backups'"]);
  });

  it.each([
    [0o100644, 1000, /mode 0644.*UNPROTECTED PRIVATE KEY FILE/, /chmod 600/],
    [0o100640, 1000, /mode 0640/, /chmod 600/],
    [0o100600, 0, /owned by uid 0, not by you/, /chown 1000/],
  ])('key file mode %o owner %i: named, with the fix', (mode, owner, cause, next) => {
    const r = checkKeyFile('/keys/id_ed25519', { stat: () => ({ isFile: () => true, mode, uid: owner }) as any, uid: 1000 });
    expect(r.ok).toBe(false);
    expect(r.cause).toMatch(cause);
    expect(r.next).toMatch(next);
  });

  it('key file 0400 passes; a missing key file is named', () => {
    expect(checkKeyFile('/k', { stat: () => ({ isFile: () => true, mode: 0o100400, uid: 5 }) as any, uid: 5 }).ok).toBe(true);
    const r = checkKeyFile('/k', {
      stat: () => {
        throw Object.assign(new Error('x'), { code: 'ENOENT' });
      },
    });
    expect(r).toMatchObject({ ok: false, cause: '/k does not exist' });
  });

  it('sshd stopped: TCP refused, and nothing else is attempted', async () => {
    const { deps, connects } = fakes(healthy(), { probe: async () => ({ ok: false, code: 'ECONNREFUSED', ms: 1 }) });
    const r = await checkSsh(conn(), deps);
    const t = byName(r, /^TCP/);
    expect(t.ok).toBe(false);
    expect(t.cause).toMatch(/nothing listens on port 22 \(sshd is stopped/);
    expect(t.next).toMatch(/check-logs/);
    expect(connects()).toBe(0);
  });

  it('no answer at all: points at the instance state and the security group', async () => {
    const { deps } = fakes(healthy(), { probe: async () => ({ ok: false, code: 'ETIMEDOUT', ms: 5000 }) });
    const t = byName(await checkSsh(conn(), deps), /^TCP/);
    expect(t.cause).toMatch(/ETIMEDOUT.*instance stopped/);
    expect(t.next).toMatch(/check-aws/);
  });

  it('host key mismatch is its own failure, and the key is not tried', async () => {
    const { deps } = fakes(healthy(), { connect: connectError('host-key-mismatch', 'the host key of 203.0.113.7 does NOT match the pinned key: not connecting', 'the host was replaced') });
    const r = await checkSsh(conn(), deps);
    expect(r.at(-1)).toMatchObject({ name: 'host key matches the pinned key', ok: false, cause: expect.stringMatching(/does NOT match the pinned key/) });
    expect(r.find((x: any) => /key accepted/.test(x.name))).toBeUndefined();
  });

  it('wrong key: the host key passes, authentication fails with the comparison to make', async () => {
    const { deps } = fakes(healthy(), { connect: connectError('auth', 'btrbk@203.0.113.7:22 refused the key /keys/id_ed25519') });
    const r = await checkSsh(conn(), deps);
    expect(byName(r, /host key matches/).ok).toBe(true);
    expect(byName(r, /key accepted/)).toMatchObject({ ok: false, cause: expect.stringMatching(/refused the key/) });
  });

  it('no pinned key: stops before connecting', async () => {
    const { deps, connects } = fakes(healthy(), { readFile: () => '' });
    const r = await checkSsh(conn(), deps);
    expect(r.at(-1)).toMatchObject({ name: 'pinned host key on file', ok: false });
    expect(connects()).toBe(0);
  });

  it('a key that runs `id` is a shell, not the gate: a loud failure', async () => {
    const a = healthy();
    a.id = { code: 0, stdout: 'uid=998(btrbk) gid=998(btrbk) groups=998(btrbk)\n' };
    a[CHECK_COMMANDS.version] = { code: 127, stderr: 'bash: btrbk-diag: command not found\n' };
    const r = await checkSsh(conn(), fakes(a).deps);
    expect(byName(r, /forbidden/)).toMatchObject({ ok: false, cause: expect.stringMatching(/RAN on the host.*forced command is not in force/) });
    expect(byName(r, /lands in the SSH gate/)).toMatchObject({ ok: false, next: expect.stringMatching(/forced command/) });
  });

  it('sudo not set up for btrbk: says so', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = { code: 1, stderr: 'sudo: a password is required\n' };
    expect(byName(await checkSsh(conn(), fakes(a).deps), /btrbk command/)).toMatchObject({ ok: false, cause: expect.stringMatching(/sudo refused/) });
  });

  it('the gate refuses the btrbk command: a grammar mismatch', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = rejected('btrfs subvolume list: option not allowed: -R');
    expect(byName(await checkSsh(conn(), fakes(a).deps), /btrbk command/)).toMatchObject({ ok: false, cause: expect.stringMatching(/the gate refused/) });
  });
});

describe('check-volume', () => {
  it('all pass on a healthy volume', async () => {
    const r = await checkVolume(conn(), fakes().deps);
    expect(r.filter((x: any) => !x.ok || x.warn)).toEqual([]);
    expect(byName(r, /usage/).detail).toBe('10.0 % full: 10.0 GiB used, 90.0 GiB free (device 100 GiB)');
  });

  it("the host's retention: policy, last prune and what goes next, from the real btrbk-prune report", async () => {
    const report = parseRetentionReport(retentionReport(LAST_RUN_OK));
    expect(report.policy).toEqual({ appendOnly: true, retention: '48h 14d 8w 12m', retentionMin: '1d' });
    expect(report.lastRun).toMatchObject({ when: '2027-02-28T23:05:12Z', result: 'ok', deleted_count: '1', deleted: ['/backup_volume/backups/laptop/home.20251201T0200'] });
    expect(report.backups.map((b) => [b.action, b.path.replace(/.*\//, '')])).toEqual([
      ['goes', 'home.20260101T0200'],
      ['goes', 'home.20260102T0200'],
      ['keep', 'home.20260103T0200'],
    ]);
    expect(report.backups[2].reason).toBe('newest complete backup');
    const r = byName(await checkVolume(conn(), fakes().deps), /retention/);
    expect(r).toMatchObject({ ok: true, detail: 'append-only, keeps 48h 14d 8w 12m (everything younger than 1d); last prune 2027-02-28T23:05:12Z: ok, 1 deleted; 3 backup(s), 2 to go at the next prune' });
    expect(r.warn).toBeFalsy();
  });

  it("the host's retention: a failed prune fails the check with its error; a host from before append-only warns", async () => {
    const a = healthy();
    a[CHECK_COMMANDS.retention] = { code: 0, stdout: retentionReport('when=2027-02-28T23:05:12Z\nresult=failed\nerror=/backup_volume is read-only, nothing deleted: btrfs may have hit an error\n') };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({ ok: false, cause: expect.stringMatching(/^the last prune failed: \/backup_volume is read-only/), next: expect.stringMatching(/journalctl -u btrbk-prune/) });
    a[CHECK_COMMANDS.retention] = rejected("unknown diagnostic (try 'btrbk-diag help')");
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({ ok: true, warn: true, cause: expect.stringMatching(/from before append-only/) });
    a[CHECK_COMMANDS.retention] = { code: 1, stderr: 'sudo: a password is required\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /retention/)).toMatchObject({ ok: false });
  });

  it('unmounted volume: named, with where to look next', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.mount] = { code: 1, stderr: 'btrbk-diag: nothing is mounted at /backup_volume (the data volume is not attached or not mounted)\n' };
    a[CHECK_COMMANDS.backupRoot('/backup_volume/backups')] = { code: 1, stderr: 'readlink: /backup_volume/backups: No such file or directory\n' };
    const r = await checkVolume(conn(), fakes(a).deps);
    expect(byName(r, /mounted at/)).toMatchObject({ ok: false, cause: 'nothing is mounted at /backup_volume', next: expect.stringMatching(/check-aws.*check-logs/) });
    expect(byName(r, /backup root/)).toMatchObject({ ok: false, cause: expect.stringMatching(/not mounted/) });
    expect(r.find((x: any) => /usage|device stats/.test(x.name))).toBeUndefined();
  });

  it('another filesystem, or read-only after errors', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.mount] = { code: 0, stdout: '/backup_volume /dev/nvme1n1 ext4 rw,relatime\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /btrfs/)).toMatchObject({ ok: false, cause: '/backup_volume is ext4, not btrfs' });
    a[CHECK_COMMANDS.mount] = { code: 0, stdout: '/backup_volume /dev/nvme1n1 btrfs ro,noatime\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /read-write/)).toMatchObject({ ok: false, cause: expect.stringMatching(/read-only/) });
  });

  it('usage above 90 % warns (and still passes); 99 % fails', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.usage] = { code: 0, stdout: USAGE_OUT(100, 93) };
    const w = byName(await checkVolume(conn(), fakes(a).deps), /usage/);
    expect(w).toMatchObject({ ok: true, warn: true, cause: 'the volume is 93.0 % full', next: expect.stringMatching(/prune|grow/) });
    a[CHECK_COMMANDS.usage] = { code: 0, stdout: USAGE_OUT(100, 100) };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /usage/)).toMatchObject({ ok: false, cause: expect.stringMatching(/full.*next backup will fail/) });
  });

  it('device errors are named by counter', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.deviceStats] = { code: 0, stdout: STATS_OUT(3) };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /device stats/)).toMatchObject({ ok: false, cause: expect.stringMatching(/corruption_errs=3/), next: expect.stringMatching(/scrub/) });
  });

  it('missing backup root on a mounted volume', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.backupRoot('/backup_volume/backups')] = { code: 1, stderr: 'readlink: No such file\n' };
    expect(byName(await checkVolume(conn(), fakes(a).deps), /backup root/)).toMatchObject({ ok: false, cause: '/backup_volume/backups does not exist' });
  });

  it('warns about half-received subvolumes (no received UUID) and names them', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = {
      code: 0,
      stdout: [
        'ID 256 gen 9 cgen 9 top level 5 parent_uuid - received_uuid 4b1e-0001 uuid 1 path <FS_TREE>/backups/home.20261101',
        'ID 257 gen 12 cgen 12 top level 5 parent_uuid - received_uuid - uuid 2 path <FS_TREE>/backups/home.20261102',
      ].join('\n'),
    };
    const w = byName(await checkVolume(conn(), fakes(a).deps), /half-received/);
    expect(w).toMatchObject({ ok: true, warn: true, detail: '2 subvolume(s) below /backup_volume/backups' });
    expect(w.cause).toMatch(/^1 without a received UUID \(\/backup_volume\/backups\/home\.20261102\)/);
    expect(w.next).toMatch(/hourly prune removes them/);
    const clean = byName(await checkVolume(conn(), fakes().deps), /half-received/);
    expect(clean).toMatchObject({ ok: true, detail: '1 subvolume(s) below /backup_volume/backups, all complete' });
    expect(clean.warn).toBeUndefined();
  });

  it('SSH down: one failure that sends you to check-ssh', async () => {
    const r = await checkVolume(conn(), fakes(healthy(), { connect: connectError('refused', 'nothing accepts SSH connections at 203.0.113.7:22') }).deps);
    expect(r).toEqual([expect.objectContaining({ ok: false, cause: expect.stringMatching(/nothing accepts SSH/), next: expect.stringMatching(/check-ssh/) })]);
  });

});

describe('check-logs', () => {
  it('shows the last N lines of both logs and reads the SUCCESS line', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = { code: 0, stdout: `${Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n')}\n${BOOT_OK}` };
    const r = await checkLogs(conn(), { ...fakes(a).deps, lines: 5 });
    expect(r[0]).toMatchObject({ name: 'boot script log (last 5 lines)', ok: true });
    expect(String(r[0].output).split('\n')).toHaveLength(5);
    expect(r[0].output).toMatch(/SUCCESS/);
    expect(r[1]).toMatchObject({ name: 'cloud-init output (last 5 lines)', ok: true });
  });

  it('a FAILED boot names the step', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = { code: 0, stdout: "x\nbtrbk-backup-host: FAILED at step 'volume' (exit 1) after 300 s; see the lines above\n" };
    expect((await checkLogs(conn(), fakes(a).deps))[0]).toMatchObject({ ok: false, cause: expect.stringMatching(/FAILED at step 'volume'/) });
  });

  it('an unfinished boot warns', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.bootLog] = { code: 0, stdout: 'btrbk-backup-host[packages]: installing\n' };
    expect((await checkLogs(conn(), fakes(a).deps))[0]).toMatchObject({ ok: true, warn: true, cause: expect.stringMatching(/still running/) });
  });

  it('SSH unreachable on AWS: falls back to the EC2 console output', async () => {
    let asked = '';
    const deps = fakes(healthy(), {
      connect: connectError('refused', 'nothing accepts SSH connections at 203.0.113.7:22'),
      ec2: {},
      getConsoleOutput: async (_ec2: unknown, id: string) => {
        asked = id;
        return 'boot\n[  12.1] cloud-init[800]: btrbk-backup-host: FAILED at step \'volume\' (exit 1)\nend\n';
      },
    }).deps;
    const r = await checkLogs(conn(), deps);
    expect(asked).toBe('i-0123456789abcdef0');
    expect(r[0]).toMatchObject({ name: 'logs through the SSH gate', ok: false });
    expect(r[1]).toMatchObject({ name: 'EC2 console output (last 40 lines)', ok: true, detail: expect.stringMatching(/FAILED at step 'volume'/) });
    expect(r[1].output).toMatch(/^boot/);
  });

  it('SSH unreachable on the local target: shows its kept copy of the boot output instead of a console', async () => {
    const local = conn({ BTRBK_AWS_INSTANCE_ID: 'local-target' });
    let r = await checkLogs(local, fakes(healthy(), { connect: connectError('refused', 'nothing accepts SSH'), readLocalBootLog: async () => `a\nb\n${BOOT_OK}` }).deps);
    expect(r[0]).toMatchObject({ name: 'logs through the SSH gate', ok: false, next: expect.stringMatching(/local-target\.mjs status/) });
    expect(r[1]).toMatchObject({ name: 'local target boot output (last 40 lines)', ok: true, detail: expect.stringMatching(/^SUCCESS/) });
    r = await checkLogs(local, fakes(healthy(), { connect: connectError('refused', 'x'), readLocalBootLog: async () => "btrbk-backup-host: FAILED at step 'gate' (exit 1)\n" }).deps);
    expect(r[1]).toMatchObject({ ok: false, cause: expect.stringMatching(/FAILED at step 'gate'/) });
    r = await checkLogs(local, fakes(healthy(), { connect: connectError('refused', 'x'), readLocalBootLog: async () => null }).deps);
    expect(r[1]).toMatchObject({ ok: false, next: expect.stringMatching(/local-target\.mjs up/) });
  });

  it('bootOutcome: the last marker line wins', () => {
    expect(bootOutcome("btrbk-backup-host: FAILED at step 'x'\n" + BOOT_OK).state).toBe('success');
    expect(bootOutcome('nothing').state).toBe('unfinished');
  });
});

describe('runChecks (the interface setup uses)', () => {
  it('expands check-all in a fixed order and refuses unknown names', () => {
    expect(expandChecks(['check-all'])).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
    expect(expandChecks(['check-logs', 'ssh', 'check-logs'])).toEqual(['check-ssh', 'check-logs']);
    expect(() => expandChecks(['check-disk'])).toThrow(/unknown check "check-disk"/);
    expect(Object.keys(CHECKS)).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
  });

  it('returns [{check, results: [{name, ok, detail, cause, next}]}] and opens one SSH session for all checks', async () => {
    const f = fakes();
    const out = await runChecks(conn({ BTRBK_AWS_INSTANCE_ID: 'local-target' }), ['check-ssh', 'check-volume', 'check-aws', 'check-logs'], f.deps);
    expect(out.map((c) => c.check)).toEqual(['check-ssh', 'check-volume', 'check-aws', 'check-logs']);
    for (const c of out) for (const r of c.results) expect(Object.keys(r)).toEqual(expect.arrayContaining(['name', 'ok', 'detail', 'cause', 'next']));
    expect(f.connects()).toBe(1);
    expect(out[2].results).toEqual([expect.objectContaining({ ok: true, skipped: true, detail: expect.stringMatching(/not applicable/) })]);
    const json = checkReportJson(out);
    expect(json).toMatchObject({ ok: true, failed: 0, skipped: 1 });
    expect(summaryLine(out.flatMap((c) => c.results))).toMatch(/^\d+ passed, 0 failed, 1 not applicable$/);
  });

  it('the report prints cause and next under a failure, and the closing line', async () => {
    const out = await runChecks(conn(), ['check-ssh'], fakes(healthy(), { probe: async () => ({ ok: false, code: 'ECONNREFUSED', ms: 1 }) }).deps);
    const text = formatCheckReport(out);
    expect(text).toMatch(/ {2}FAIL {2}TCP 203\.0\.113\.7:22 reachable/);
    expect(text).toMatch(/cause: connection refused/);
    expect(text).toMatch(/next: {2}read the boot log/);
    expect(text.trim().split('\n').at(-1)).toBe('2 passed, 1 failed');
  });
});

describe('the commands the checks send are the ones the real gate accepts', () => {
  const gate = path.join(REPO_ROOT, 'user-data', 'btrbk-ssh-gate.sh');
  const dry = (cmd: string) => spawnSync('bash', [gate, '--dry-run', '--logger', '/bin/true'], { env: { SSH_ORIGINAL_COMMAND: cmd, PATH: process.env.PATH }, encoding: 'utf8' });
  it.each(Object.entries(CHECK_COMMANDS).filter(([k]) => k !== 'forbidden'))('%s', (_k, v) => {
    const cmd = typeof v === 'function' ? v('/backup_volume/backups') : v;
    const r = dry(cmd);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it('and `id` is refused', () => {
    const r = dry(CHECK_COMMANDS.forbidden);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/^rejected: /);
  });
});
