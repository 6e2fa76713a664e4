// The troubleshooting checks (also setup's smoke tests). Each check is a list of named tests; each test is
// {name, ok, detail, cause, next, warn?, skipped?, output?}. A failed test carries the cause it found and the
// next thing to try. Everything a check needs from the outside (SSH, AWS, the file system) comes in `deps`,
// so every diagnosis is unit-tested with fakes.
//
// check-volume and check-logs use only the backup key, through the SSH gate's fixed read-only diagnostics
// (CHECK_COMMANDS): no shell on the host is needed or available.
import fs from 'node:fs';
import process from 'node:process';
import {
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  DescribeRegionsCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Instance,
} from '@aws-sdk/client-ec2';
import { awsError, getConsoleOutput, makeEc2Client } from '../deploy/aws.js';
import { parseDeviceStats, parseMountEntry, parseSubvolumeListR, parseUsage } from '../core/btrfs-output.js';
import { isLocalTarget, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { DATA_VOLUME_DEVICE_NAME, MOUNT_POINT, SUDOERS_PATH } from '../core/host-layout.js';
import { shellWord } from '../core/shell.js';
import type { CheckResult, TestResult } from '../core/report.js';
import { humanBytes } from '../remote/transfer.js';
import { GATE_COMMANDS, gateLine } from '../remote/gate-commands.js';
import {
  connectSsh,
  probeTcp,
  readPinnedKeys,
  sshParams,
  type ExecResult,
  type PinnedKey,
  type ReadTextFile,
  type SshConnectError,
  type SshConnection,
  type TcpProbeResult,
} from '../remote/ssh.js';

export type { CheckResult, TestResult };

/** Check name -> what it looks at. */
export const CHECKS = Object.freeze({
  'check-ssh': 'reach the host, the pinned host key, the backup key, the SSH gate',
  'check-volume': 'the backup volume, through the gate’s read-only diagnostics',
  'check-aws': 'the EC2 instance and its data volume (AWS API)',
  'check-logs': 'the boot script’s log and cloud-init’s output (EC2 console output when SSH is down)',
});

export type CheckName = keyof typeof CHECKS;

const isCheckName = (name: string): name is CheckName => Object.hasOwn(CHECKS, name);

/**
 * The lines these checks send through the gate, written from its command table, and `id`, which the gate must
 * refuse. The diagnostics take no arguments from the client.
 */
export const CHECK_COMMANDS = Object.freeze({
  version: gateLine(GATE_COMMANDS.diagnostic('version')),
  usage: gateLine(GATE_COMMANDS.diagnostic('usage')),
  deviceStats: gateLine(GATE_COMMANDS.diagnostic('device-stats')),
  mount: gateLine(GATE_COMMANDS.diagnostic('mount')),
  bootLog: gateLine(GATE_COMMANDS.diagnostic('boot-log')),
  cloudInitLog: gateLine(GATE_COMMANDS.diagnostic('cloud-init-log')),
  retention: gateLine(GATE_COMMANDS.diagnostic('retention')),
  forbidden: 'id',
  backupRoot: (root: string) => gateLine(GATE_COMMANDS.readlink(root)),
  subvolumeList: (root: string) => gateLine(GATE_COMMANDS.subvolumeList(root)),
});

const CHECK_NAMES = Object.keys(CHECKS) as CheckName[];

/** 'check-all' and duplicates resolved to the list of checks to run, in a fixed order. */
export function expandChecks(names: string[]): CheckName[] {
  const wanted = new Set<CheckName>();
  for (const n of names) {
    if (n === 'check-all' || n === 'all') CHECK_NAMES.forEach((c) => wanted.add(c));
    else if (isCheckName(n)) wanted.add(n);
    else if (isCheckName(`check-${n}`)) wanted.add(`check-${n}` as CheckName);
    else {
      throw new OperatorError(`unknown check "${n}"`, { next: `use one of: ${[...CHECK_NAMES, 'check-all'].join(', ')}` });
    }
  }
  return CHECK_NAMES.filter((c) => wanted.has(c));
}

/** What a test result can carry besides name, ok, detail, cause and next. */
type Extra = Partial<TestResult>;

const pass = (name: string, detail = '', extra: Extra = {}): TestResult => ({ name, ok: true, detail, cause: '', next: '', ...extra });
const fail = (name: string, cause: string, next: string, detail = '', extra: Extra = {}): TestResult => ({ name, ok: false, detail, cause, next, ...extra });

/** The parts of an OperatorError a failed test shows, read from whatever was thrown (absent ones undefined). */
function errorFields(err: unknown): { what?: string; likelyCause?: string; next?: string; details?: string; name?: string; message?: string } {
  return typeof err === 'object' && err !== null ? err : {};
}

/** A failed test from an error: an OperatorError's what, cause, next and details; anything else as text. */
const fromError = (name: string, err: unknown, extra: Extra = {}): TestResult => {
  const e = errorFields(err);
  return fail(name, e.likelyCause ? `${e.what}: ${e.likelyCause}` : e.what ?? String(err), e.next ?? '', e.details ?? '', extra);
};

/** An error's message, or the thrown value as text. */
const messageOf = (err: unknown): string => String(errorFields(err).message ?? err);

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
    promise.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });

/** An opened session: the SSH connection, or why it could not be made (connectSsh's error, with its `kind`). */
export type SessionState = ({ ok: true } & SshConnection) | { ok: false; error: SshConnectError };

/** The SSH session the checks of a run share (see sshSession). */
export interface Session {
  /** Connects on the first call; later calls resolve the same outcome. */
  open(): Promise<SessionState>;
  /** Runs a command through the gate. Rejects when the session could not open or the command timed out. */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Closes the connection, if one was made. */
  close(): void;
}

/** Everything the checks take from the outside; each defaults to the real thing (tests pass fakes). */
export interface CheckDeps {
  /** EC2 client for the connection's region (default: one for BTRBK_AWS_REGION and `profile`). */
  ec2?: EC2Client;
  /** EC2 client for another region, to look for an instance that is not where the connection file says. */
  ec2ForRegion?: (region: string) => EC2Client;
  /** AWS profile for the default clients and the error advice. */
  profile?: string;
  /** Log lines check-logs shows (default 40). */
  lines?: number;
  connect?: (conn: Connection) => Promise<SshConnection>;
  probe?: (host: string, port: number, opts?: { timeoutMs?: number }) => Promise<TcpProbeResult>;
  /** fs.statSync of the private key file. */
  stat?: (file: string) => Pick<fs.Stats, 'isFile' | 'mode' | 'uid'>;
  /** This process's effective uid (default process.geteuid()). */
  uid?: number;
  /** Reads the pinned host keys file. */
  readFile?: ReadTextFile;
  readLocalBootLog?: () => Promise<string | null>;
  getConsoleOutput?: (ec2: EC2Client, instanceId: string, opts?: { profile?: string }) => Promise<string>;
  /** A session to use (runChecks then leaves it open). */
  session?: Session;
  /** Per gate command (default 30 s). */
  execTimeoutMs?: number;
  /** For the TCP probe (default 5 s). */
  tcpTimeoutMs?: number;
}

/**
 * One SSH session shared by the checks of a run: connected lazily, once; a failed connection is remembered
 * (its OperatorError with `.kind`) so every check that needs it can say why it could not run.
 */
export function sshSession(conn: Connection, deps: CheckDeps = {}): Session {
  const connect = deps.connect ?? ((c: Connection) => connectSsh(c));
  let opened: Promise<SessionState> | null = null;
  const session: Session = {
    async open() {
      if (!opened) opened = connect(conn).then((s): SessionState => ({ ok: true, ...s }), (error: SshConnectError): SessionState => ({ ok: false, error }));
      return opened;
    },
    async exec(command, { timeoutMs = deps.execTimeoutMs ?? 30000 } = {}) {
      const s = await session.open();
      if (!s.ok) throw s.error;
      const r = await withTimeout(s.ssh.execCommand(command), timeoutMs, command);
      return { code: r.code, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    close() {
      if (opened) opened.then((s) => s.ok && s.ssh.dispose());
    },
  };
  return session;
}

const REJECTED = /rejected:/;

function gateRefusalHint(r: ExecResult) {
  return REJECTED.test(r.stderr) ? `the gate refused it (${r.stderr.trim().split('\n')[0]})` : r.stderr.trim().split('\n').slice(-2).join(' ') || `exit ${r.code}`;
}

// ------------------------------------------------------------------------------------------------ check-ssh

/** Private key file: exists, a regular file, mode 0600 or 0400 (no group/other bits), owned by this user. */
export function checkKeyFile(keyFile: string, { stat = (f) => fs.statSync(f), uid = process.geteuid?.() ?? 0 }: Pick<CheckDeps, 'stat' | 'uid'> = {}): TestResult {
  const name = 'private key file permissions';
  let st;
  try {
    st = stat(keyFile);
  } catch (err) {
    const { code, message } = errorFields(err) as NodeJS.ErrnoException;
    return fail(name, `${keyFile} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? message})`}`, 'point BTRBK_AWS_SSH_KEY in the connection file at the private key whose public half is ssh_public_key in terraform.tfvars');
  }
  if (!st.isFile()) return fail(name, `${keyFile} is not a regular file`, 'point BTRBK_AWS_SSH_KEY at the private key file');
  const mode = st.mode & 0o777;
  const octal = mode.toString(8).padStart(4, '0');
  if (mode & 0o077) {
    return fail(name, `${keyFile} has mode ${octal}: group or others can read it, and OpenSSH refuses such a key ("UNPROTECTED PRIVATE KEY FILE"), so btrbk cannot use it`, `chmod 600 ${shellWord(keyFile)}`, `mode ${octal}`);
  }
  if (st.uid !== uid) {
    return fail(name, `${keyFile} is owned by uid ${st.uid}, not by you (uid ${uid}); OpenSSH refuses a key that is not yours`, `chown ${uid} ${shellWord(keyFile)} (or run as the key's owner)`, `owner uid ${st.uid}`);
  }
  if (!(mode & 0o400)) return fail(name, `${keyFile} is not readable by its owner (mode ${octal})`, `chmod 600 ${shellWord(keyFile)}`);
  return pass(name, `mode ${octal}, owner uid ${st.uid}`);
}

export async function checkSsh(conn: Connection, deps: CheckDeps = {}, session: Session = sshSession(conn, deps)): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const p = sshParams(conn);
  results.push(checkKeyFile(p.keyFile, deps));

  let pinned: PinnedKey[];
  try {
    pinned = readPinnedKeys(conn, deps);
    results.push(pass('pinned host key on file', `${pinned.map((k) => `${k.keyType} ${k.fingerprint}`).join(', ')} in ${p.knownHostsFile}`));
  } catch (err) {
    results.push(fromError('pinned host key on file', err));
    return results; // without a pin we do not connect at all
  }

  const probe = await (deps.probe ?? probeTcp)(p.host, p.port, { timeoutMs: deps.tcpTimeoutMs ?? 5000 });
  if (!probe.ok) {
    const refused = probe.code === 'ECONNREFUSED';
    results.push(
      fail(
        `TCP ${p.host}:${p.port} reachable`,
        refused
          ? `connection refused: nothing listens on port ${p.port} (sshd is stopped or crashed, or the boot script has not started it)`
          : `${probe.code}: the host does not answer (instance stopped or booting, security group does not allow your address, or the address changed)`,
        refused
          ? 'read the boot log: `npx zx scripts/troubleshoot.mjs check-logs` (falls back to the EC2 console output); restart the instance if sshd died'
          : '`npx zx scripts/troubleshoot.mjs check-aws` for the instance state; check allowed_ssh_cidrs in terraform.tfvars against your public IP',
        probe.code,
      ),
    );
    return results;
  }
  results.push(pass(`TCP ${p.host}:${p.port} reachable`, `${probe.ms} ms`));

  const s = await session.open();
  if (!s.ok) {
    const kind = s.error.kind;
    if (kind === 'host-key-mismatch') {
      results.push(fromError('host key matches the pinned key', s.error));
      return results;
    }
    if (kind === 'auth' || kind === 'key-file') {
      results.push(pass('host key matches the pinned key', pinned.map((k) => k.fingerprint).join(', ')));
      results.push(fromError(`key accepted for ${p.user}`, s.error));
      return results;
    }
    results.push(fromError('SSH handshake', s.error));
    return results;
  }
  results.push(pass('host key matches the pinned key', s.hostKey ? `${s.hostKey.keyType} ${s.hostKey.fingerprint}` : ''));
  results.push(pass(`key accepted for ${p.user}`, p.keyFile));

  const exec = async (name: string, command: string, judge: (r: ExecResult) => TestResult) => {
    try {
      results.push(judge(await session.exec(command)));
    } catch (err) {
      results.push(fail(name, `${command}: ${messageOf(err)}`, 'run check-ssh again; if it repeats, read check-logs'));
    }
  };

  await exec('lands in the SSH gate (an allowed diagnostic runs)', CHECK_COMMANDS.version, (r) =>
    r.code === 0 && /^btrbk-ssh-gate /.test(r.stdout)
      ? pass('lands in the SSH gate (an allowed diagnostic runs)', r.stdout.trim())
      : fail(
          'lands in the SSH gate (an allowed diagnostic runs)',
          `\`${CHECK_COMMANDS.version}\` → exit ${r.code}: ${gateRefusalHint(r)}`,
          REJECTED.test(r.stderr)
            ? 'the gate on the host is older than these tools: re-provision (terraform apply replaces the instance, the data volume stays)'
            : 'the key is not bound to the gate (forced command): check ~btrbk/.ssh/authorized_keys on the host, and the boot log (check-logs)',
        ),
  );

  await exec('the gate refuses a forbidden command (`id`)', CHECK_COMMANDS.forbidden, (r) => {
    const name = 'the gate refuses a forbidden command (`id`)';
    if (r.code === 255 && REJECTED.test(r.stderr)) return pass(name, `exit 255, ${r.stderr.trim().split('\n')[0]}`);
    if (r.code === 0) {
      return fail(
        name,
        `\`id\` RAN on the host (${r.stdout.trim().slice(0, 80)}): this key opens a shell, the forced command is not in force`,
        'treat the key as able to do anything on the host: fix ~btrbk/.ssh/authorized_keys (restrict,command="…btrbk-ssh-gate") or re-provision, and rotate the key if it may have leaked',
      );
    }
    return fail(name, `\`id\` → exit ${r.code} without "rejected:" (${r.stderr.trim().slice(0, 120)})`, 'the forced command is not the SSH gate this project installs: re-provision the host');
  });

  const listCmd = CHECK_COMMANDS.subvolumeList(p.backupRoot);
  await exec('an allowed btrbk command runs (btrfs subvolume list)', listCmd, (r) => {
    const name = 'an allowed btrbk command runs (btrfs subvolume list)';
    if (r.code === 0) return pass(name, `${r.stdout.trim() ? r.stdout.trim().split('\n').length : 0} subvolume(s) listed`);
    if (REJECTED.test(r.stderr)) return fail(name, `the gate refused \`${listCmd}\`: ${r.stderr.trim()}`, 'the gate and these tools disagree on the command grammar: update the host (re-provision) or these tools');
    if (/password is required|not allowed to execute|sudoers/i.test(r.stderr)) {
      return fail(name, `sudo refused btrfs for the btrbk user: ${r.stderr.trim()}`, `the boot script did not install ${SUDOERS_PATH}: read check-logs`);
    }
    if (/not a btrfs|No such file|ERROR: cannot access/i.test(r.stderr)) {
      return fail(name, `btrfs cannot list ${p.backupRoot}: ${r.stderr.trim()}`, 'the volume is probably not mounted: run check-volume');
    }
    return fail(name, `exit ${r.code}: ${r.stderr.trim()}`, 'run check-volume and check-logs');
  });
  return results;
}

// --------------------------------------------------------------------------------------------- check-volume

/** The host's pruning policy (prune.conf). */
export interface RetentionPolicy {
  appendOnly: boolean;
  /** btrbk-style retention, e.g. '48h 14d 8w 12m'. */
  retention: string;
  /** Everything younger than this is kept, e.g. '1d'. */
  retentionMin: string;
}

/**
 * The last prune, as btrbk-prune's state file has it: key=value lines (when, result 'ok' or 'failed', and
 * deleted_count, kept_count, groups or error), plus the paths it deleted.
 */
export interface LastPrune {
  [key: string]: string | string[] | undefined;
  when?: string;
  result?: string;
  deleted_count?: string;
  error?: string;
  deleted: string[];
}

/** One backup and what the next prune does with it. */
export interface RetentionEntry {
  created: string;
  action: 'keep' | 'goes';
  path: string;
  /** Why (the retention rule that keeps it, or that none does). */
  reason: string;
}

export interface RetentionReport {
  /** Null when the report has no policy line (not a btrbk-prune report). */
  policy: RetentionPolicy | null;
  /** Null when no prune has run yet. */
  lastRun: LastPrune | null;
  backups: RetentionEntry[];
}

/**
 * Parses `btrbk-diag retention` (btrbk-prune report): the policy, the last prune (key=value lines; deleted=PATH
 * repeated) and, per backed-up subvolume, each backup with what happens to it ('keep' or 'goes' at the next prune).
 */
export function parseRetentionReport(text: string): RetentionReport {
  const lines = String(text).split('\n');
  const policy = /^policy: APPEND_ONLY=(\S+) RETENTION='([^']*)' RETENTION_MIN=(\S+)/.exec(lines.find((l) => l.startsWith('policy: ')) ?? '');
  const lastRun: Record<string, string> = {};
  const deleted: string[] = [];
  let section = '';
  const backups: RetentionEntry[] = [];
  for (const line of lines) {
    if (line === 'last run:') section = 'last';
    else if (line.startsWith('group ')) section = 'groups';
    else if (section === 'last') {
      const kv = /^([a-z_]+)=(.*)$/.exec(line);
      if (kv && kv[1] === 'deleted') deleted.push(kv[2]);
      else if (kv) lastRun[kv[1]] = kv[2];
    } else if (section === 'groups') {
      const b = /^(\S+) (keep|goes) (\S+) (.*)$/.exec(line);
      if (b) backups.push({ created: b[1], action: b[2] as RetentionEntry['action'], path: b[3], reason: b[4] });
    }
  }
  return {
    policy: policy ? { appendOnly: policy[1] === 'true', retention: policy[2], retentionMin: policy[3] } : null,
    lastRun: Object.keys(lastRun).length ? { ...lastRun, deleted } : null,
    backups,
  };
}

const pct = (x: number) => `${x.toFixed(1)} %`;

/** Usage above this percentage is a warning; at 100 % backups fail. */
export const USAGE_WARN_PERCENT = 90;

export async function checkVolume(conn: Connection, deps: CheckDeps = {}, session: Session = sshSession(conn, deps)): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const p = sshParams(conn);
  const s = await session.open();
  if (!s.ok) {
    results.push(fail('reach the volume through the SSH gate', `SSH failed: ${s.error.what}${s.error.likelyCause ? ` (${s.error.likelyCause})` : ''}`, 'run `npx zx scripts/troubleshoot.mjs check-ssh` first'));
    return results;
  }
  const run = async (command: string): Promise<ExecResult> => {
    try {
      return await session.exec(command);
    } catch (err) {
      return { code: -1, stdout: '', stderr: messageOf(err) };
    }
  };

  const mountOut = await run(CHECK_COMMANDS.mount);
  const entry = mountOut.code === 0 ? parseMountEntry(mountOut.stdout) : null;
  // the gate's mount diagnostic exits 1 with "nothing is mounted at ..." when findmnt finds nothing
  const saysUnmounted = mountOut.code === 1 && /nothing is mounted/i.test(mountOut.stderr);
  const notMountedNext = `the volume is detached or its mount failed at boot (fstab has nofail, so the host boots without it): run check-aws for the attachment and check-logs for the boot log; on the host as admin: sudo mount ${MOUNT_POINT}`;
  if (mountOut.code !== 0 && !saysUnmounted) {
    results.push(fail(`mounted at ${MOUNT_POINT}`, `the mount diagnostic failed: ${gateRefusalHint(mountOut)}`, 'run check-ssh; the gate may be older than these tools'));
  } else if (!entry) {
    results.push(fail(`mounted at ${MOUNT_POINT}`, `nothing is mounted at ${MOUNT_POINT}`, notMountedNext, (mountOut.stdout || mountOut.stderr).trim().split('\n')[0] ?? ''));
  } else {
    results.push(pass(`mounted at ${MOUNT_POINT}`, `${entry.source}`));
    results.push(
      entry.fstype === 'btrfs'
        ? pass('filesystem is btrfs', entry.options.split(',').filter((o) => /^(ro|rw|compress|subvol)/.test(o)).join(','))
        : fail('filesystem is btrfs', `${MOUNT_POINT} is ${entry.fstype}, not btrfs`, 'something else is mounted there: check the fstab entry and the boot log (check-logs); never reformat a volume holding backups'),
    );
    if (/(^|,)ro(,|$)/.test(entry.options)) {
      results.push(fail('mounted read-write', `${MOUNT_POINT} is mounted read-only: btrfs does this after errors`, 'look at device stats below and the kernel log on the host; a scrub (btrfs scrub start) shows damage'));
    }
  }

  if (entry) {
    const usageOut = await run(CHECK_COMMANDS.usage);
    const u = usageOut.code === 0 ? parseUsage(usageOut.stdout) : null;
    const name = `usage below ${USAGE_WARN_PERCENT} %`;
    if (!u) {
      results.push(fail(name, usageOut.code === 0 ? 'cannot read the usage output' : `the usage diagnostic failed: ${gateRefusalHint(usageOut)}`, 'run check-ssh', usageOut.stdout.trim().split('\n')[0] ?? ''));
    } else {
      const detail = `${pct(u.percent)} full: ${humanBytes(u.used)} used, ${humanBytes(u.free)} free (device ${humanBytes(u.size)})`;
      if (u.percent >= 99) {
        results.push(fail(name, `the volume is full (${pct(u.percent)}): the next backup will fail`, `free space: a tighter retention in terraform.tfvars (append-only host; it prunes after the next backup) or old backups deleted as admin, or grow the volume: raise ebs_volume_size in terraform.tfvars and apply, then \`sudo btrfs filesystem resize max ${MOUNT_POINT}\` as admin`, detail));
      } else if (u.percent > USAGE_WARN_PERCENT) {
        results.push(pass(name, detail, { warn: true, cause: `the volume is ${pct(u.percent)} full`, next: 'keep fewer backups (retention in terraform.tfvars; `btrbk-diag retention` shows what is kept) or grow the volume (ebs_volume_size in terraform.tfvars, apply, then btrfs filesystem resize max)' }));
      } else {
        results.push(pass(name, detail));
      }
    }
  }

  const rootOut = await run(CHECK_COMMANDS.backupRoot(p.backupRoot));
  results.push(
    rootOut.code === 0 && rootOut.stdout.trim()
      ? pass(`backup root ${p.backupRoot} present`, rootOut.stdout.trim())
      : fail(
          `backup root ${p.backupRoot} present`,
          REJECTED.test(rootOut.stderr) ? `the gate refused the lookup: ${rootOut.stderr.trim()}` : `${p.backupRoot} does not exist${entry ? '' : ' (the volume is not mounted)'}`,
          entry ? 'the boot script creates it; read check-logs, or re-run the boot script by re-provisioning' : notMountedNext,
        ),
  );

  if (entry && rootOut.code === 0 && rootOut.stdout.trim()) {
    // a subvolume without a received UUID is not a backup (btrbk-receive never leaves one below the root)
    const listOut = await run(CHECK_COMMANDS.subvolumeList(p.backupRoot));
    const name = 'no half-received backups';
    if (listOut.code !== 0) {
      results.push(fail(name, `cannot list the backups: ${gateRefusalHint(listOut)}`, 'run check-ssh'));
    } else {
      const below = `${p.backupRoot.replace(/\/+$/, '')}/`;
      const backups = parseSubvolumeListR(listOut.stdout, MOUNT_POINT).filter((b) => b.path.startsWith(below));
      const incomplete = backups.filter((b) => !b.complete);
      const detail = `${backups.length} subvolume(s) below ${p.backupRoot}`;
      results.push(
        incomplete.length
          ? pass(name, detail, {
            warn: true,
            cause: `${incomplete.length} without a received UUID (${incomplete.slice(0, 3).map((b) => b.path).join(', ')}${incomplete.length > 3 ? ', ...' : ''}): they are not backups (this host receives in a staging directory and never leaves one here: an older host version or a hand-made subvolume)`,
            next: "the host's hourly prune removes them; or as admin: sudo btrfs subvolume delete PATH. Never restore from them (docs/RESTORE.md)",
          })
          : pass(name, `${detail}, all complete`),
      );
    }
  }

  if (entry) {
    const statsOut = await run(CHECK_COMMANDS.deviceStats);
    const stats = statsOut.code === 0 || statsOut.code === 64 ? parseDeviceStats(statsOut.stdout) : [];
    const name = 'btrfs device stats all zero';
    if (!stats.length) {
      results.push(fail(name, `cannot read device stats: ${gateRefusalHint(statsOut)}`, 'run check-ssh'));
    } else {
      const bad = stats.filter((x) => x.value !== 0);
      results.push(
        bad.length
          ? fail(name, `I/O or checksum errors recorded: ${bad.map((x) => `${x.counter}=${x.value}`).join(', ')}`, `the volume has had errors: run a scrub on the host (sudo btrfs scrub start -B ${MOUNT_POINT}) as admin, verify your latest backup with a restore, and consider replacing the volume from a snapshot`, `${stats.length} counters on ${[...new Set(stats.map((x) => x.device))].join(', ')}`)
          : pass(name, `${stats.length} counters on ${[...new Set(stats.map((x) => x.device))].join(', ')}`),
      );
    }
  }

  if (entry) {
    // append-only hosts prune by their own policy and clock: what it is, when it last ran, what goes next
    const retOut = await run(CHECK_COMMANDS.retention);
    const name = "the host's retention";
    const report = retOut.code === 0 ? parseRetentionReport(retOut.stdout) : null;
    if (!report?.policy) {
      results.push(
        REJECTED.test(retOut.stderr)
          ? pass(name, 'unknown to this host', { warn: true, cause: 'the host runs a gate from before append-only backups (no retention diagnostic)', next: 're-deploy (setup) to get the append-only host and its pruning' })
          : fail(name, `cannot read the retention report: ${gateRefusalHint(retOut)}`, 'on the host as admin: sudo btrbk-prune report; journalctl -u btrbk-prune'),
      );
    } else {
      const p = report.policy;
      const goes = report.backups.filter((b) => b.action === 'goes');
      const last = report.lastRun;
      const detail = [
        p.appendOnly ? `append-only, keeps ${p.retention} (everything younger than ${p.retentionMin})` : 'not append-only: btrbk on the client prunes',
        last ? `last prune ${last.when}: ${last.result}, ${last.deleted_count ?? 0} deleted` : 'no prune yet',
        `${report.backups.length} backup(s), ${goes.length} to go at the next prune`,
      ].join('; ');
      if (last?.result === 'failed') {
        results.push(fail(name, `the last prune failed: ${last.error ?? 'see the journal'}`, 'on the host as admin: journalctl -u btrbk-prune; nothing is deleted until it runs clean again', detail));
      } else {
        results.push(pass(name, detail));
      }
    }
  }
  return results;
}

// ------------------------------------------------------------------------------------------------ check-aws

const awsNext = (region: string) => ` --region ${region}`;

/** The AWS error code of a thrown SDK error ('' when it has none). */
function awsErrorName(err: unknown): string {
  const e = errorFields(err) as { name?: string; Code?: string };
  return e.name ?? e.Code ?? '';
}

/** Finds which other regions hold the instance (when the configured one does not). */
export async function findInstanceRegions(instanceId: string, { ec2, ec2ForRegion }: { ec2: EC2Client; ec2ForRegion?: (region: string) => EC2Client }): Promise<string[]> {
  if (!ec2ForRegion) return [];
  const regions = (await ec2.send(new DescribeRegionsCommand({}))).Regions?.map((r) => r.RegionName).filter((r): r is string => Boolean(r)) ?? [];
  const answers = await Promise.allSettled(regions.map((region) => ec2ForRegion(region).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }))));
  // a rejection means "not there" (InvalidInstanceID.NotFound) or a region that is not enabled
  const found = regions.filter((_, i) => {
    const a = answers[i];
    return a.status === 'fulfilled' && a.value.Reservations?.some((res) => res.Instances?.some((x) => x.InstanceId === instanceId));
  });
  return found;
}

export async function checkAws(conn: Connection, deps: CheckDeps = {}): Promise<TestResult[]> {
  if (isLocalTarget(conn)) {
    return [pass('AWS instance and volume', 'not applicable: this is the local target (no AWS account involved)', { skipped: true })];
  }
  const region = conn.BTRBK_AWS_REGION;
  const id = conn.BTRBK_AWS_INSTANCE_ID;
  const vol = conn.BTRBK_AWS_VOLUME_ID;
  const ec2 = deps.ec2 ?? makeEc2Client({ region, profile: deps.profile });
  const ec2ForRegion = deps.ec2ForRegion ?? ((r: string) => makeEc2Client({ region: r, profile: deps.profile }));
  const results: TestResult[] = [];
  const awsFail = (name: string, err: unknown) => fromError(name, err instanceof OperatorError ? err : awsError(err, name, { profile: deps.profile }));

  let instance: Instance | null = null;
  const foundName = `instance ${id} found in ${region}`;
  try {
    const r = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    instance = r.Reservations?.flatMap((x) => x.Instances ?? []).find((i) => i.InstanceId === id) ?? null;
    if (!instance) throw Object.assign(new Error(`The instance ID '${id}' does not exist`), { name: 'InvalidInstanceID.NotFound' });
    results.push(pass(foundName, `${instance.InstanceType ?? ''} ${instance.Placement?.AvailabilityZone ?? ''}`.trim()));
  } catch (err) {
    if (!/InvalidInstanceID\.(NotFound|Malformed)/.test(awsErrorName(err))) {
      results.push(awsFail(foundName, err));
      return results;
    }
    let elsewhere: string[] = [];
    let searched = false;
    try {
      elsewhere = (await findInstanceRegions(id, { ec2, ec2ForRegion })).filter((r) => r !== region);
      searched = true;
    } catch {
      /* the search is a courtesy; the main diagnosis stands */
    }
    results.push(
      elsewhere.length
        ? fail(foundName, `region mismatch: the instance is in ${elsewhere.join(', ')}, but the connection file says BTRBK_AWS_REGION=${region}`, `set BTRBK_AWS_REGION='${elsewhere[0]}' in the connection file (or re-run setup with aws_region = "${elsewhere[0]}" in terraform.tfvars)`)
        : fail(foundName, `no instance ${id} in ${region}${searched ? ' or any other enabled region' : ' (other regions could not be searched)'}: it was terminated or destroyed, or the connection file is for another account or region`, 're-run setup (it recreates the instance; the data volume is kept unless you destroyed it); check AWS_PROFILE is the account you deployed with'),
    );
    return results;
  }

  const state = instance.State?.Name ?? 'unknown';
  results.push(
    state === 'running'
      ? pass('instance running', state)
      : fail(
          'instance running',
          `the instance is ${state}${instance.StateReason?.Message ? ` (${instance.StateReason.Message})` : ''}`,
          state === 'stopped' || state === 'stopping'
            ? `start it: aws ec2 start-instances --instance-ids ${id}${awsNext(region)} (the address may change unless an Elastic IP is attached; re-run setup to update the connection file)`
            : state === 'pending'
              ? 'wait a minute and check again'
              : 're-run setup to create a new instance (the data volume is kept)',
          state,
        ),
  );

  if (state === 'running') {
    try {
      const r = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: [id], IncludeAllInstances: true }));
      const st = r.InstanceStatuses?.find((x) => x.InstanceId === id);
      const sys = st?.SystemStatus?.Status ?? 'unknown';
      const inst = st?.InstanceStatus?.Status ?? 'unknown';
      const name = 'status checks ok (system, instance)';
      const detail = `system ${sys}, instance ${inst}`;
      if (sys === 'ok' && inst === 'ok') results.push(pass(name, detail));
      else if ([sys, inst].includes('impaired')) {
        results.push(fail(name, `status check impaired (${detail}): ${sys === 'impaired' ? 'AWS hardware or network trouble' : 'the operating system does not respond (kernel panic, full root disk, boot failure)'}`, sys === 'impaired' ? `stop and start the instance to move it to other hardware: aws ec2 stop-instances --instance-ids ${id}${awsNext(region)}, then start-instances` : 'read the console output (troubleshoot check-logs falls back to it), then reboot the instance', detail));
      } else {
        results.push(pass(name, detail, { warn: true, cause: 'status checks are still initializing (the first minutes after a start)', next: 'check again in a few minutes' }));
      }
    } catch (err) {
      results.push(awsFail('status checks ok (system, instance)', err));
    }
  }

  const volName = `data volume ${vol} attached to ${id}`;
  try {
    const r = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol] }));
    const v = r.Volumes?.find((x) => x.VolumeId === vol);
    if (!v) throw Object.assign(new Error(`The volume '${vol}' does not exist.`), { name: 'InvalidVolume.NotFound' });
    const att = (v.Attachments ?? []).find((a) => a.InstanceId === id);
    const other = (v.Attachments ?? []).find((a) => a.InstanceId !== id);
    if (v.State === 'error') {
      results.push(fail(volName, `the volume is in state "error"`, 'contact AWS support and restore from an EBS snapshot if you have one', `${v.Size} GiB ${v.VolumeType}`));
    } else if (att && att.State === 'attached') {
      results.push(pass(volName, `${v.Size} GiB ${v.VolumeType}, ${att.Device}, ${v.Encrypted ? 'encrypted' : 'NOT encrypted'}`));
      if (!v.Encrypted) results.push(pass('data volume encrypted', 'not encrypted', { warn: true, cause: 'the volume was created without encryption', next: 'backups are stored unencrypted at rest; see docs/SETUP.md to migrate to an encrypted volume' }));
    } else if (att) {
      results.push(fail(volName, `the attachment is ${att.State}`, 'wait a minute and check again; if it stays, stop and start the instance', `${v.Size} GiB ${v.VolumeType}`));
    } else if (other) {
      results.push(fail(volName, `the volume is attached to another instance, ${other.InstanceId}`, `detach it there (aws ec2 detach-volume --volume-id ${vol}${awsNext(region)}) and re-run setup, or fix BTRBK_AWS_INSTANCE_ID`, `${v.State}`));
    } else {
      results.push(fail(volName, `the volume is detached (state "${v.State}"): backups cannot reach it`, `re-run setup (terraform apply restores the attachment), or: aws ec2 attach-volume --volume-id ${vol} --instance-id ${id} --device ${DATA_VOLUME_DEVICE_NAME}${awsNext(region)}; then run check-volume`, `${v.Size} GiB ${v.VolumeType}`));
    }
  } catch (err) {
    if (/InvalidVolume\.NotFound/.test(errorFields(err).name ?? '')) {
      results.push(fail(volName, `no volume ${vol} in ${region}: it was deleted, or the connection file is for another region or account`, 'if you still have EBS snapshots, restore one; otherwise re-run setup to create a new, empty volume', ''));
    } else {
      results.push(awsFail(volName, err));
    }
  }
  return results;
}

// ----------------------------------------------------------------------------------------------- check-logs

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
  const lines = String(text).split('\n').filter((l) => /btrbk-backup-host: (SUCCESS|FAILED)\b/.test(l));
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

export async function checkLogs(conn: Connection, deps: CheckDeps = {}, session: Session = sshSession(conn, deps)): Promise<TestResult[]> {
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
      if (r.code !== 0) {
        results.push(fail(title, `\`${command}\` → exit ${r.code}: ${gateRefusalHint(r)}`, /No such file|cannot open/i.test(r.stderr) ? 'the log does not exist yet: the boot script has not run (cloud-init still starting?)' : 'run check-ssh'));
        continue;
      }
      const text = lastLines(r.stdout, n);
      if (name !== 'boot script log') {
        results.push(pass(title, `${r.stdout.split('\n').filter(Boolean).length} lines`, { output: text }));
        continue;
      }
      const outcome = bootOutcome(r.stdout);
      if (outcome.state === 'failed') {
        results.push(fail(title, `the boot script failed: ${outcome.line}`, 'read the lines below for the step that failed; fix the cause, then re-run the boot script by re-provisioning (terraform apply -replace on the instance keeps the data volume), or `npx zx scripts/local-target.mjs up` for the local target', '', { output: text }));
      } else if (outcome.state === 'success') {
        results.push(pass(title, outcome.line.replace(/^.*?btrbk-backup-host: /, '').slice(0, 60), { output: text }));
      } else {
        results.push(pass(title, 'no SUCCESS or FAILED line yet', { warn: true, cause: 'the boot script is still running, or it was killed before it could finish', next: 'wait a minute and run check-logs again', output: text }));
      }
    }
    return results;
  }

  // SSH is not reachable at all: the boot may have failed before the gate existed. The console has cloud-init's output.
  const why = `SSH failed: ${s.error.what}`;
  if (isLocalTarget(conn)) {
    // the local target's stand-in for the EC2 console: the boot script's output that `up` keeps on this machine
    results.push(fail('logs through the SSH gate', why, 'the local target’s copy of the boot output follows; `npx zx scripts/local-target.mjs status` shows its state, `down` then `up` restarts it'));
    const text = await (deps.readLocalBootLog ?? readLocalBootLog)();
    const title = `local target boot output (last ${n} lines)`;
    if (!text) {
      results.push(fail(title, 'no copy of the boot output on this machine', 'start the local target: npx zx scripts/local-target.mjs up'));
    } else {
      const outcome = bootOutcome(text);
      results.push(
        outcome.state === 'failed'
          ? fail(title, `the boot script failed: ${outcome.line}`, 'fix the cause, then `npx zx scripts/local-target.mjs down` and `up`', '', { output: lastLines(text, n) })
          : pass(title, outcome.line ? outcome.line.replace(/^.*?btrbk-backup-host: /, '').slice(0, 60) : 'no SUCCESS or FAILED line', { output: lastLines(text, n) }),
      );
    }
    return results;
  }
  results.push(fail('logs through the SSH gate', why, 'the EC2 console output follows; fix what it shows, then run check-ssh'));
  try {
    const ec2 = deps.ec2 ?? makeEc2Client({ region: conn.BTRBK_AWS_REGION, profile: deps.profile });
    const out = await (deps.getConsoleOutput ?? getConsoleOutput)(ec2, conn.BTRBK_AWS_INSTANCE_ID, { profile: deps.profile });
    if (!out.trim()) {
      results.push(fail(`EC2 console output (last ${n} lines)`, 'the console output is empty: the instance has not produced any yet (it appears a few minutes after boot)', 'wait a few minutes and run check-logs again'));
    } else {
      const errs = errorLines(out);
      results.push({ ...pass(`EC2 console output (last ${n} lines)`, errs.length ? `${errs.length} error line(s); last: ${errs[errs.length - 1].trim().slice(0, 160)}` : 'no error lines'), output: lastLines(out, n) });
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
        results = [err instanceof OperatorError ? fromError(check, err) : fail(check, `unexpected error: ${messageOf(err)}`, 're-run with BTRBK_AWS_DEBUG=1 and report it as a bug')];
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
