// What backup.mjs asks of this machine besides files: systemd (reload, enable, the timer's next run, the last
// run's result), and ssh through the installed config (so what is checked is what btrbk uses). Each function takes
// `run` (core/process.ts) so tests pass fakes; each returns data.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectionFromEnv, parseEnvText, REPO_ROOT, type Connection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import { which } from '../deploy/engine.js';
import { run as runDefault, type Run, type RunResult } from '../core/process.js';
import { CONTROL_DIR, FILES, SSH_ALIAS, UNITS } from './layout.js';
import { parseCalendarGap } from './units.js';

/** What backupCommand() looks at (tests pass their own). */
export interface CommandContext {
  uid?: number;
  /** PATH (default process.env.PATH). */
  pathEnv?: string;
  cwd?: string;
  /** The project directory (default the one this file is in). */
  repo?: string;
}

/**
 * How to run one of the project's scripts where a hint is printed, as the person reading it types it: `sudo ` when
 * it needs root and this is not root, `npx zx` where npx is on PATH, else the project's own zx (a machine with node
 * but no npm, such as the laptop container), and the script's path relative to the working directory (absolute
 * outside the project).
 */
export function scriptCommand(script: string, rest = '', ctx: CommandContext & { root?: boolean } = {}): string {
  const repo = ctx.repo ?? REPO_ROOT;
  const cwd = ctx.cwd ?? process.cwd();
  const uid = ctx.uid ?? process.getuid?.() ?? 0;
  const rel = (p: string): string => {
    const r = path.relative(cwd, path.join(repo, p));
    return r.startsWith('..') || path.isAbsolute(r) ? path.join(repo, p) : r;
  };
  const zx = which('npx', { PATH: ctx.pathEnv ?? process.env.PATH ?? '' }) ? 'npx zx' : rel('node_modules/.bin/zx');
  const sudo = ctx.root !== false && uid !== 0 ? 'sudo ' : '';
  return `${sudo}${zx} ${rel(`scripts/${script}`)}${rest ? ` ${rest}` : ''}`;
}

/** How to run backup.mjs here (as root: sudo when this is not root); scriptCommand. */
export const backupCommand = (rest = '', ctx: CommandContext = {}): string => scriptCommand('backup.mjs', rest, ctx);

/**
 * The connection files on this machine that would work here (they parse, and the key and known_hosts they name
 * exist): BTRBK_ENV_FILE, the project's *.env files, ~/btrbk-aws/*.env (where the laptop container keeps the
 * person's), and the installed copy. For hints: a file of another machine (local_connection.env read inside the
 * laptop container names keys that are not there) is left out.
 */
export function usableConnectionFiles({
  env = process.env,
  repo = REPO_ROOT,
  home = os.homedir(),
  installed = FILES.connection,
}: {
  env?: Readonly<Record<string, string | undefined>>;
  repo?: string;
  home?: string;
  installed?: string;
} = {}): string[] {
  const envFiles = (dir: string): string[] => {
    try {
      return fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.env'))
        .sort()
        .map((f) => path.join(dir, f));
    } catch {
      return [];
    }
  };
  const candidates = [
    ...(env.BTRBK_ENV_FILE ? [path.resolve(env.BTRBK_ENV_FILE)] : []),
    ...envFiles(repo),
    ...envFiles(path.join(home, 'btrbk-aws')),
    installed,
  ];
  return [...new Set(candidates)].filter((f) => {
    try {
      const c = connectionFromEnv(parseEnvText(fs.readFileSync(f, 'utf8'), f), f);
      return fs.existsSync(c.keyFile) && Boolean(c.knownHostsFile) && fs.existsSync(c.knownHostsFile);
    } catch {
      return false;
    }
  });
}

/**
 * Reads the connection (`read`: the entry point's), and when the file is not there says which files on this
 * machine would work, with the command that uses one (the default's hint names local_connection.env, which does not
 * work inside the laptop container).
 */
export function readConnectionHere(read: () => Connection, verb: string, files = usableConnectionFiles): Connection {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof OperatorError) || !/^no connection file/.test(err.what)) throw err;
    const here = files();
    if (!here.length) throw err;
    throw new OperatorError(err.what, {
      cause: err.likelyCause,
      details: `connection files on this machine that work here:\n${here.join('\n')}`,
      next: `${backupCommand(`${verb}${verb === 'install' ? ' --subvolume PATH' : ''} --env ${here[0]}`)} (or set BTRBK_ENV_FILE)`,
    });
  }
}

/** Refuses to go on unless running as root, saying why the verb needs it. */
export function requireRoot(verb: string, why: string): void {
  if (process.getuid?.() !== 0)
    throw new OperatorError(`${verb} must run as root`, {
      cause: why,
      next: `${backupCommand(`${verb} ...`, { uid: 1000 })}`,
    });
}

/** True when systemd runs this machine (its units can be enabled and started). */
export const systemdRunning = (): boolean => fs.existsSync('/run/systemd/system');

export interface StepResult {
  what: string;
  ok: boolean;
  detail: string;
}

const step = (what: string, r: RunResult): StepResult => ({
  what,
  ok: r.status === 0 && !r.error,
  detail: (r.error?.message ?? (r.stderr || r.stdout)).trim().split('\n').slice(-4).join('\n'),
});

/**
 * Enables the timer and the pre-sleep unit, reloads, starts the timer: one daemon-reload (each costs the manager a
 * re-serialization and every generator a run), after the symlinks exist, so the reload loads the changed unit
 * files and sleep.target's new want together. (`enable` alone reloads each time it is called.)
 */
export async function enableUnits({ run = runDefault }: { run?: Run } = {}): Promise<StepResult[]> {
  const units = [UNITS.timer, UNITS.presleep];
  const out = [
    step(`systemctl enable ${units.join(' ')}`, await run('systemctl', ['enable', '--no-reload', ...units])),
  ];
  out.push(step('systemctl daemon-reload', await run('systemctl', ['daemon-reload'])));
  out.push(step(`systemctl start ${UNITS.timer}`, await run('systemctl', ['start', UNITS.timer])));
  return out;
}

/** Stops and disables the units (before their files go; the caller reloads once they are gone). */
export async function disableUnits({ run = runDefault }: { run?: Run } = {}): Promise<StepResult[]> {
  const out = [
    step(
      `systemctl disable ${UNITS.timer} ${UNITS.presleep}`,
      await run('systemctl', ['disable', '--no-reload', UNITS.timer, UNITS.presleep]),
    ),
  ];
  out.push(
    step(
      `systemctl stop ${UNITS.timer} ${UNITS.service}`,
      await run('systemctl', ['stop', UNITS.timer, UNITS.service]),
    ),
  );
  return out;
}

export const daemonReload = async ({ run = runDefault }: { run?: Run } = {}): Promise<StepResult> =>
  step('systemctl daemon-reload', await run('systemctl', ['daemon-reload']));

/** The connection-reuse socket directory (root, 0700). */
export function ensureControlDir(): void {
  fs.mkdirSync(CONTROL_DIR, { recursive: true, mode: 0o700 });
  fs.chmodSync(CONTROL_DIR, 0o700);
}

/** `ssh -G ALIAS` key -> value: the settings ssh really uses for the alias (all config files read). */
export function parseSshG(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m && !(m[1] in out)) out[m[1].toLowerCase()] = m[2];
  }
  return out;
}

/** The settings the installed ssh config must produce; a list of what differs (empty: ssh reads it). */
export function sshSettingsProblems(
  g: Record<string, string>,
  expect: { host: string; port: string; user: string },
): string[] {
  const want: Record<string, string> = {
    hostname: expect.host,
    port: expect.port,
    user: expect.user,
    userknownhostsfile: FILES.knownHosts,
    stricthostkeychecking: 'true',
    controlmaster: 'auto',
    controlpersist: '60',
  };
  const out: string[] = [];
  for (const [k, v] of Object.entries(want)) if (g[k] !== v) out.push(`${k} is ${g[k] ?? '(unset)'}, not ${v}`);
  if (!(g.identityfile ?? '').split(/\s+/).includes(FILES.identity))
    out.push(`identityfile is ${g.identityfile ?? '(unset)'}, not ${FILES.identity}`);
  if (!(g.controlpath ?? '').startsWith(`${CONTROL_DIR}/`))
    out.push(`controlpath is ${g.controlpath ?? '(unset)'}, not in ${CONTROL_DIR}`);
  return out;
}

/** ssh -G for the alias, as root's ssh (what btrbk runs) sees it. */
export async function sshEffectiveSettings({ run = runDefault }: { run?: Run } = {}): Promise<Record<string, string>> {
  const r = await run('ssh', ['-G', SSH_ALIAS]);
  return r.status === 0 ? parseSshG(r.stdout) : {};
}

/** Runs one gate command line through the installed ssh config, exactly as btrbk reaches the target. */
export function gateViaAlias(
  command: string,
  { run = runDefault, timeoutMs = 60000 }: { run?: Run; timeoutMs?: number } = {},
): Promise<RunResult> {
  return run('ssh', ['-i', FILES.identity, SSH_ALIAS, command], { timeoutMs });
}

/** The seconds between an OnCalendar expression's next two elapses (systemd-analyze calendar); null when unknown. */
export async function calendarGap(interval: string, { run = runDefault }: { run?: Run } = {}): Promise<number | null> {
  const r = await run('systemd-analyze', ['calendar', '--iterations=2', interval], {
    env: { ...process.env, TZ: 'UTC' },
  });
  return r.status === 0 ? parseCalendarGap(r.stdout) : null;
}

/** The timer's next run (a date), or null (not installed, not active, or no systemd). */
export async function timerNextRun({ run = runDefault }: { run?: Run } = {}): Promise<Date | null> {
  const r = await run('systemctl', [
    'show',
    UNITS.timer,
    '--timestamp=utc',
    '--property=NextElapseUSecRealtime',
    '--value',
  ]);
  return r.status === 0 ? parseUtcTimestamp(r.stdout) : null;
}

/** systemctl's `--timestamp=utc` form ("Mon 2026-11-30 13:04:11 UTC") -> a Date; null for empty or n/a. */
export function parseUtcTimestamp(text: string): Date | null {
  const m = /(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) UTC/.exec(text);
  if (!m) return null;
  const d = new Date(`${m[1]}T${m[2]}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** The last run of the service: its result and when it ended (systemctl show), and its last journal lines. */
export interface LastRun {
  result: string;
  exitStatus: number | null;
  endedAt: Date | null;
  journal: string[];
}

export function parseSystemctlShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/**
 * The last run from `systemctl show` (ExecMainExitTimestamp, or InactiveEnterTimestamp when the run failed before
 * its main process, e.g. in ExecStartPre) and its journal; null when it never ran. A run in progress: 'running'.
 */
export function lastRunOf(show: Record<string, string>): Omit<LastRun, 'journal'> | null {
  if (show.LoadState !== 'loaded') return null;
  const endedAt =
    parseUtcTimestamp(show.ExecMainExitTimestamp ?? '') ?? parseUtcTimestamp(show.InactiveEnterTimestamp ?? '');
  if (show.ActiveState === 'activating') return { result: 'running', exitStatus: null, endedAt };
  if (!endedAt) return null;
  return {
    result: show.Result ?? 'unknown',
    exitStatus: show.ExecMainStatus ? Number(show.ExecMainStatus) : null,
    endedAt,
  };
}

export async function lastRun({ run = runDefault }: { run?: Run } = {}): Promise<LastRun | null> {
  const r = await run('systemctl', [
    'show',
    UNITS.service,
    '--timestamp=utc',
    '--property=Result,ExecMainStatus,ExecMainExitTimestamp,InactiveEnterTimestamp,ActiveState,LoadState',
  ]);
  if (r.status !== 0) return null;
  const last = lastRunOf(parseSystemctlShow(r.stdout));
  if (!last) return null;
  const j = await run('journalctl', ['--unit', UNITS.service, '--lines', '12', '--output', 'cat', '--no-pager']);
  return { ...last, journal: j.status === 0 ? j.stdout.trim().split('\n').filter(Boolean) : [] };
}
