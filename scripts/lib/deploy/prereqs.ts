// Prerequisites: the engine (tofu or terraform), AWS credentials (STS GetCallerIdentity), the OpenSSH client;
// btrfs-progs and btrbk as optional (the laptop side); for --target local the container tools instead of AWS.
// Also: a btrfs source given with --source should be mounted noatime (with relatime, every file read since the
// last snapshot changes its atime, and the next incremental send ships all those inode updates).
// Returns data; scripts/prereqs.mjs and setup format it.
import fs from 'node:fs';
import path from 'node:path';
import { atimeMode, mountFor, parseMountinfo } from '../core/btrfs-output.js';
import { OperatorError } from '../core/errors.js';
import { palette, type Palette } from '../core/report.js';
import { runSync as runSyncDefault, type RunSync } from '../core/process.js';
import type { STSClient } from '@aws-sdk/client-sts';
import { findEngine as defaultFindEngine, which as defaultWhich, type Engine } from './engine.js';
import { getCallerIdentity, makeStsClient } from './aws.js';

export type CheckStatus = 'ok' | 'missing' | 'warn' | 'skipped';

/** One prerequisite: `missing` is a required one that failed, `warn` an optional one. */
export interface PrereqCheck {
  id: string;
  name: string;
  ok: boolean;
  required: boolean;
  status: CheckStatus;
  version?: string;
  detail: string;
  hint?: string;
}

export interface PrereqReport {
  /** Every required check passed. */
  ok: boolean;
  target: 'aws' | 'local';
  checks: PrereqCheck[];
}

/** Where checkSources reads the mounts and resolves paths (tests inject fakes). */
export interface SourceDeps {
  mountinfo?: () => string;
  realpath?: (p: string) => string;
}

/** What runPrereqs reaches through (tests inject fakes). */
export interface PrereqDeps extends SourceDeps {
  runSync?: RunSync;
  findEngine?: (opts: { runSync?: RunSync }) => Engine;
  which?: (name: string) => string | null;
  sts?: STSClient;
}

export interface PrereqOptions {
  target?: 'aws' | 'local';
  /** The AWS profile for the credentials check. */
  profile?: string;
  region?: string;
  /** btrfs source paths to check for noatime. */
  sources?: string[];
}

export const HINTS: Readonly<Record<string, string>> = Object.freeze({
  engine:
    'install OpenTofu: https://opentofu.org/docs/intro/install/ (or Terraform: https://developer.hashicorp.com/terraform/install); TERRAFORM_BINARY_NAME picks one',
  aws: 'configure credentials: `aws configure`, or `aws sso login --profile NAME` and pass --profile NAME (or set AWS_PROFILE)',
  ssh: 'sudo apt-get install openssh-client   (Fedora: sudo dnf install openssh-clients)',
  btrfs: 'sudo apt-get install btrfs-progs   (Fedora: sudo dnf install btrfs-progs)',
  btrbk: 'sudo apt-get install btrbk   (or https://digint.ch/btrbk/ ; 0.32 or newer)',
  nspawn: 'sudo apt-get install systemd-container',
  debootstrap: 'sudo apt-get install debootstrap',
});

/** Runs `cmd args` and returns the first line that matches `re` in stdout+stderr, or null when it cannot run. */
export function toolVersion(cmd: string, args: string[], re: RegExp, runSync: RunSync = runSyncDefault): string | null {
  const r = runSync(cmd, args, { timeoutMs: 10_000 });
  if (r.error || r.status === null) return null;
  const text = `${r.stdout}\n${r.stderr}`;
  const m = re.exec(text);
  return m ? m[1] : r.status === 0 ? text.trim().split('\n')[0] : null;
}

/** Checks each btrfs source path: exists, on btrfs, mounted noatime. Never required: status ok or warn. */
export function checkSources(
  sources: string[] | undefined,
  {
    mountinfo = () => fs.readFileSync('/proc/self/mountinfo', 'utf8'),
    realpath = (p: string) => fs.realpathSync(p),
  }: SourceDeps = {},
): PrereqCheck[] {
  if (!sources?.length) return [];
  const mounts = parseMountinfo(mountinfo());
  return sources.map((src): PrereqCheck => {
    const name = `source ${src}`;
    let real: string;
    try {
      real = realpath(path.resolve(src));
    } catch {
      return {
        id: 'source',
        name,
        ok: false,
        required: false,
        status: 'warn',
        detail: 'does not exist',
        hint: 'pass the path of the btrfs subvolume you want to back up',
      };
    }
    const m = mountFor(real, mounts);
    if (!m || m.fstype !== 'btrfs') {
      return {
        id: 'source',
        name,
        ok: false,
        required: false,
        status: 'warn',
        detail: `is on ${m?.fstype ?? 'an unknown filesystem'}, not btrfs`,
        hint: 'btrbk sends btrfs subvolumes; back up a path on a btrfs filesystem',
      };
    }
    const mode = atimeMode(m);
    if (mode === 'noatime')
      return {
        id: 'source',
        name,
        ok: true,
        required: false,
        status: 'ok',
        detail: `btrfs at ${m.mountPoint}, noatime`,
      };
    return {
      id: 'source',
      name,
      ok: false,
      required: false,
      status: 'warn',
      detail: `btrfs at ${m.mountPoint} is mounted ${mode}: every file read since the last snapshot changes its atime, and the next incremental send ships those inode updates`,
      hint: `add noatime to its options in /etc/fstab (e.g. defaults,noatime,...) and run: sudo mount -o remount,noatime ${m.mountPoint}`,
    };
  });
}

// ------------------------------------------------------------------------------------------------------
// The report

/** Runs every check for `target` ('aws' or 'local'). */
export async function runPrereqs(
  { target = 'aws', profile, region, sources = [] }: PrereqOptions = {},
  deps: PrereqDeps = {},
): Promise<PrereqReport> {
  const runSync = deps.runSync ?? runSyncDefault;
  const findEngine = deps.findEngine ?? defaultFindEngine;
  const which = deps.which ?? ((name: string) => defaultWhich(name));
  const checks: PrereqCheck[] = [];
  const local = target === 'local';
  const add = (c: Omit<PrereqCheck, 'status' | 'required'> & { required?: boolean }): void => {
    checks.push({ required: true, ...c, status: c.ok ? 'ok' : c.required === false ? 'warn' : 'missing' });
  };

  try {
    const e = findEngine({ runSync });
    add({
      id: 'engine',
      name: 'engine (tofu/terraform)',
      ok: true,
      required: !local,
      version: `${e.name} ${e.version}`,
      detail: e.path,
    });
  } catch (err) {
    add({
      id: 'engine',
      name: 'engine (tofu/terraform)',
      ok: false,
      required: !local,
      detail: err instanceof OperatorError ? err.what : String(err),
      hint: HINTS.engine,
    });
  }

  if (local) {
    checks.push({
      id: 'aws',
      name: 'AWS credentials',
      ok: true,
      required: false,
      status: 'skipped',
      detail: 'not needed for the local target',
    });
  } else {
    try {
      const sts = deps.sts ?? makeStsClient({ profile, region });
      const id = await getCallerIdentity(sts, { profile });
      add({ id: 'aws', name: 'AWS credentials', ok: true, version: `account ${id.account}`, detail: id.arn ?? '' });
    } catch (err) {
      add({
        id: 'aws',
        name: 'AWS credentials',
        ok: false,
        detail:
          err instanceof OperatorError ? `${err.what}${err.likelyCause ? `: ${err.likelyCause}` : ''}` : String(err),
        hint: err instanceof OperatorError && err.next ? err.next : HINTS.aws,
      });
    }
  }

  const ssh = toolVersion('ssh', ['-V'], /(OpenSSH_[^\s,]+)/, runSync);
  add({
    id: 'ssh',
    name: 'ssh client',
    ok: !!ssh,
    version: ssh ?? undefined,
    detail: ssh ? 'ssh' : 'ssh not found',
    hint: ssh ? undefined : HINTS.ssh,
  });
  const keyscan = which('ssh-keyscan');
  add({
    id: 'ssh-keyscan',
    name: 'ssh-keyscan',
    ok: !!keyscan,
    detail: keyscan ?? 'not found (host key pinning needs it)',
    hint: keyscan ? undefined : HINTS.ssh,
  });

  if (local) {
    const nspawn = toolVersion('systemd-nspawn', ['--version'], /^systemd (\d+)/m, runSync);
    add({
      id: 'nspawn',
      name: 'systemd-nspawn',
      ok: !!nspawn,
      version: nspawn ? `systemd ${nspawn}` : undefined,
      detail: nspawn ? 'runs the local target' : 'not found',
      hint: nspawn ? undefined : HINTS.nspawn,
    });
    const deb = which('debootstrap');
    add({
      id: 'debootstrap',
      name: 'debootstrap',
      ok: !!deb,
      detail: deb ? 'builds the local target rootfs' : 'not found',
      hint: deb ? undefined : HINTS.debootstrap,
    });
  }

  const btrfs = toolVersion('btrfs', ['--version'], /btrfs-progs v(\S+)/, runSync);
  add({
    id: 'btrfs-progs',
    name: 'btrfs-progs',
    ok: !!btrfs,
    required: local,
    version: btrfs ?? undefined,
    detail: btrfs ? 'btrfs send/receive on this machine' : 'not found (needed on the machine whose btrfs you back up)',
    hint: btrfs ? undefined : HINTS.btrfs,
  });
  const btrbk = toolVersion('btrbk', ['--version'], /version (\S+)/, runSync);
  add({
    id: 'btrbk',
    name: 'btrbk',
    ok: !!btrbk,
    required: false,
    version: btrbk ?? undefined,
    detail: btrbk ? 'the backup engine' : 'not found (needed on the machine whose btrfs you back up)',
    hint: btrbk ? undefined : HINTS.btrbk,
  });

  checks.push(...checkSources(sources, deps));
  return { ok: checks.every((c) => c.ok || !c.required), target, checks };
}

/** Formats the report for a terminal; `paint` colours it (report.ts's palette; plain text without). */
export function formatPrereqReport(report: PrereqReport, paint: Partial<Palette> = {}): string {
  const p: Palette = { ...palette(false), ...paint };
  const icon: Record<CheckStatus, string> = {
    ok: p.green('✓'),
    missing: p.red('✗'),
    warn: p.yellow('!'),
    skipped: p.dim('-'),
  };
  const w = Math.max(...report.checks.map((c) => c.name.length));
  const lines = [p.bold(`Prerequisites (${report.target === 'local' ? 'local target' : 'AWS'})`)];
  for (const c of report.checks) {
    const what = [c.version, c.detail].filter(Boolean).join(' — ');
    const opt = c.required ? '' : p.dim(' (optional)');
    lines.push(
      `  ${icon[c.status]} ${c.name.padEnd(w)}  ${c.status === 'ok' || c.status === 'skipped' ? p.dim(what) : what}${c.status === 'ok' ? '' : opt}`,
    );
    if (c.hint && c.status !== 'ok') lines.push(`      ${p.yellow('→')} ${c.hint}`);
  }
  const missing = report.checks.filter((c) => c.status === 'missing');
  lines.push(
    missing.length
      ? p.red(`✗ missing: ${missing.map((c) => c.name).join(', ')}`)
      : p.green('✓ all required prerequisites are present'),
  );
  return lines.join('\n');
}

/** Throws an OperatorError naming what is missing (for setup, which stops here). */
export function assertPrereqs(report: PrereqReport): PrereqReport {
  const missing = report.checks.filter((c) => c.status === 'missing');
  if (!missing.length) return report;
  throw new OperatorError(`missing prerequisites: ${missing.map((c) => c.name).join(', ')}`, {
    details: missing.map((c) => `- ${c.name}: ${c.detail}`).join('\n'),
    cause: 'setup needs them before it can deploy and check the backup target',
    next: missing
      .map((c) => c.hint)
      .filter(Boolean)
      .join('\n         '),
  });
}
