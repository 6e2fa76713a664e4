// The fakes the diagnose tests share: the gate's answers on a healthy host (as user-data/btrbk-ssh-gate.sh gives
// them), a fake SSH connection that records the commands sent, and the real btrbk-prune's retention report.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECK_COMMANDS } from '../../scripts/lib/diagnose/check-commands.js';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { MOUNT_POINT } from '../../user-data/host-layout.js';
import { SCRUB_STATUS_CLEAN, STATS_OUT, USAGE_OUT } from './btrfs-samples.js';
import { sampleConnection } from './connection-fixture.js';

export const BLOB = 'AAAAC3NzaC1lZDI1NTE5AAAAIJ1Lk8r2TRA8d4uPaB8yR7sbCk4iA3RK2d8QH4P4eN0T';
export const conn = sampleConnection;

export type Answer = { code: number; stdout?: string; stderr?: string };
export const rejected = (why: string): Answer => ({ code: 255, stderr: `rejected: ${why}\n` });

/**
 * What `btrbk-diag retention` prints: the real btrbk-prune's report for a small history (a listing, an injected
 * clock), so the parser reads the script's own format. Three backups of one laptop's home received a day apart on
 * 2026-01-01..03, one half-received; now 2027-03-01: the oldest two go at the next prune. `registry`: the host's
 * device registry (devices file lines); `more`: further listing lines (epoch, complete|partial|other, path below
 * the backup root).
 */
export function retentionReport(
  lastRun = '',
  {
    registry = '',
    more = [],
  }: { registry?: string; more?: Array<[epoch: number, state: string, relPath: string]> } = {},
): string {
  return once(`retention ${JSON.stringify([lastRun, registry, more])}`, () => runPrune(lastRun, registry, more));
}

// The real scripts' reports are a function of their input (the prune's clock is injected): each input runs once per
// test file, not again for every healthy() host (a test file builds dozens).
const reports = new Map<string, string>();
const once = (key: string, make: () => string): string => {
  if (!reports.has(key)) reports.set(key, make());
  return reports.get(key)!;
};

function runPrune(lastRun: string, registry: string, more: Array<[number, string, string]>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checks-prune-'));
  try {
    const mount = spawnSync('findmnt', ['-n', '-o', 'TARGET', '-T', dir], { encoding: 'utf8' }).stdout.trim();
    fs.mkdirSync(path.join(dir, 'state'));
    const day = 86400;
    const t0 = Date.UTC(2026, 0, 1, 2) / 1000;
    if (lastRun) fs.writeFileSync(path.join(dir, 'state', 'last-run'), lastRun);
    fs.writeFileSync(
      path.join(dir, 'conf'),
      `APPEND_ONLY=true\nRETENTION=48h 14d 8w 12m\nRETENTION_MIN=1d\nBACKUP_ROOT=${dir}/backups\nMOUNT=${mount}\nSTAGING=${dir}/staging\nSTATE_DIR=${dir}/state\nRECEIVE_LOCK=${dir}/lock\nDEVICES_FILE=${dir}/devices\n`,
    );
    fs.writeFileSync(path.join(dir, 'devices'), registry);
    // the last prune saw only the first backup: two newer ones arrived since, so this group is due
    fs.writeFileSync(path.join(dir, 'state', 'seen'), `${t0}\t${dir}/backups/laptop/home.*\n`);
    fs.writeFileSync(
      path.join(dir, 'list'),
      [0, 1, 2].map((i) => `${t0 + i * day}\tcomplete\t${dir}/backups/laptop/home.2026010${i + 1}T0200\n`).join('') +
        more.map(([t, state, rel]) => `${t}\t${state}\t${dir}/backups/${rel}\n`).join(''),
    );
    const r = spawnSync(
      'bash',
      [
        path.join(REPO_ROOT, 'user-data', 'btrbk-prune.sh'),
        '--config',
        path.join(dir, 'conf'),
        '--listing',
        path.join(dir, 'list'),
        '--now',
        String(Date.UTC(2027, 2, 1) / 1000),
        'report',
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    return r.stdout.replaceAll(dir, MOUNT_POINT);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
/**
 * What `btrbk-diag scrub` prints: the real btrbk-scrub's report of a state file (`lastRun`; none: no scrub yet).
 */
export function scrubReport(lastRun = ''): string {
  return once(`scrub ${lastRun}`, () => runScrubReport(lastRun));
}

function runScrubReport(lastRun: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'checks-scrub-'));
  try {
    if (lastRun) fs.writeFileSync(path.join(dir, 'last-run'), lastRun);
    const r = spawnSync('bash', [path.join(REPO_ROOT, 'user-data', 'btrbk-scrub.sh'), 'report', '--state', dir], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    return r.stdout;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
/** btrbk-scrub's state file after a scrub `daysAgo` days ago: `status` is `btrfs scrub status -R`, `rest` the kernel,
 * subvolumes and logical-resolve sections. */
export const scrubState = (status: string, { daysAgo = 3, exit = 0, rest = '' } = {}) =>
  `when=${new Date(Date.now() - daysAgo * 86400_000).toISOString().replace(/\.\d+Z$/, 'Z')}\nseconds=1261\nexit=${exit}\nmount=/backup_volume\n` +
  `--- btrfs scrub start\nscrub done\n--- btrfs scrub status -R\n${status}--- kernel\n${rest}`;

export const LAST_RUN_OK =
  'when=2027-02-28T23:05:12Z\nresult=ok\ndeleted_count=1\nkept_count=3\ngroups=1\ndeleted=/backup_volume/backups/laptop/home.20251201T0200\n';

export const BOOT_OK =
  '2026-11-23T22:57:27Z btrbk-backup-host[finished]: btrbk-backup-host: SUCCESS (version 1) in 13 s; 0 change(s)\n';

/** The gate on a healthy host. */
export const healthy = (): Record<string, Answer> => ({
  [CHECK_COMMANDS.version]: { code: 0, stdout: 'btrbk-ssh-gate 1 root=/backup_volume/backups mount=/backup_volume\n' },
  [CHECK_COMMANDS.mount]: {
    code: 0,
    stdout: '/backup_volume /dev/nvme1n1 btrfs rw,noatime,compress=zstd:1,space_cache=v2,subvolid=5,subvol=/\n',
  },
  [CHECK_COMMANDS.usage]: { code: 0, stdout: USAGE_OUT(100 * 2 ** 30, 10 * 2 ** 30) },
  [CHECK_COMMANDS.deviceStats]: { code: 0, stdout: STATS_OUT() },
  [CHECK_COMMANDS.bootLog]: { code: 0, stdout: `step one\n${BOOT_OK}` },
  [CHECK_COMMANDS.cloudInitLog]: { code: 0, stdout: 'Cloud-init v. 24.1 finished\n' },
  [CHECK_COMMANDS.forbidden]: rejected('command not allowed: id'),
  [CHECK_COMMANDS.retention]: { code: 0, stdout: retentionReport(LAST_RUN_OK) },
  [CHECK_COMMANDS.scrub]: { code: 0, stdout: scrubReport(scrubState(SCRUB_STATUS_CLEAN)) },
  [CHECK_COMMANDS.backupRoot('/backup_volume/backups')]: { code: 0, stdout: '/backup_volume/backups\n' },
  [CHECK_COMMANDS.subvolumeList('/backup_volume/backups')]: {
    code: 0,
    stdout: 'ID 256 gen 9 cgen 9 top level 5 parent_uuid - received_uuid 4b1e-0001 uuid 1 path <FS_TREE>/backups/a\n',
  },
});

export function fakes(answers: Record<string, Answer> = healthy(), over: Record<string, unknown> = {}) {
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

export const connectError =
  (kind: string, what: string, cause = '') =>
  async () => {
    throw Object.assign(new OperatorError(what, { cause, next: 'do the thing' }), { kind });
  };

export const byName = (results: any[], re: RegExp) => {
  const r = results.find((x) => re.test(x.name));
  if (!r) throw new Error(`no result matching ${re}: ${results.map((x) => x.name).join(' | ')}`);
  return r;
};
