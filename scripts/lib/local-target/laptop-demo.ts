// The laptop half of `npm run demo` (after setup --target local and the round trip): the target gets two devices
// with a key each (laptop and desk), the laptop container comes up as device laptop, `backup.mjs install` protects
// its home, the backup service runs once the way its timer starts it, `status` says how fresh the off-site copy is,
// one file comes back with `restore --path`; a second container, device desk, backs up with its own key, is refused
// on the laptop's backups, and the owner's check-volume lists both devices; then a new laptop (fresh disk) gets the
// whole home back from the target with `restore --make-live`. Each step prints a heading and the few lines that
// matter (the btrbk summary from the journal, not its whole log); a short recap ends it, so the result does not
// scroll away.
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { formatConnection, LOCAL_ENV_FILE, readConnection } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { RunResult } from '../core/process.js';
import type { Palette } from '../core/report.js';
import { deviceEnvFile } from './boot-script.js';
import {
  laptopConnection,
  laptopDown,
  laptopExec,
  laptopPaths,
  laptopUp,
  LAPTOP_DISK_MOUNT,
  LAPTOP_ENV_FILE,
  type LaptopPaths,
} from './laptop.js';
import { localTargetPaths, up, type LocalTargetPaths } from './local-target.js';

const HOME = `${LAPTOP_DISK_MOUNT}/home`;
/** The demo's two devices: the laptop container, and a second container beside it. */
export const DEMO_DEVICES = Object.freeze({ laptop: 'laptop', desk: 'desk' } as const);
const SERVICE = 'btrbk-aws.service';
const BACKUP = ['node_modules/.bin/zx', 'scripts/backup.mjs'];

/** The lines of a command's output worth showing, indented; at most `max` of them (the last ones). */
export function excerpt(text: string, { max = 25, indent = '    ' }: { max?: number; indent?: string } = {}): string {
  const lines = text
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim());
  const shown = lines.length > max ? [`(${lines.length - max} earlier lines left out)`, ...lines.slice(-max)] : lines;
  return shown.map((l) => `${indent}${l}`).join('\n');
}

/** btrbk's summary block from a run's journal (from "Backup Summary" on, without its legend and rules), or the
 * journal's tail when it has none. */
export function btrbkSummary(journal: string): string {
  const lines = journal.split('\n');
  const start = lines.findIndex((l) => /Backup Summary/.test(l));
  if (start < 0) return lines.slice(-15).join('\n');
  const legend = /^(Legend:|\s+(===|\+\+\+|---|\*\*\*|>>>)\s+\S+ subvolume|-{20,}$)/;
  return lines
    .slice(start)
    .filter((l) => !legend.test(l))
    .join('\n');
}

/** The second container's paths: the laptop's, with -desk added to its name and state directory. */
export function deskPaths(paths: LaptopPaths): LaptopPaths {
  return laptopPaths({
    ...process.env,
    BTRBK_LAPTOP_STATE: `${paths.stateDir}-desk`,
    BTRBK_LAPTOP_NAME: `${paths.name}-desk`,
  });
}

/** The devices the target lacks of `wanted` (by its remembered devices and their connection files). */
export function missingDevices(target: Pick<LocalTargetPaths, 'devices' | 'envFile'>, wanted: readonly string[]) {
  const have = target.devices ?? [];
  return wanted.filter((d) => !have.includes(d) || !fs.existsSync(deviceEnvFile(target as LocalTargetPaths, d)));
}

/** The connection file a container was brought up with (its state), or null. */
/** The names of a subvolume's backups, oldest first, from `backup.mjs list --json` (a BackupListing). */
export function backupNames(listJson: string, subvolume: string): string[] {
  const listing = JSON.parse(listJson) as { subvolumes?: { name: string; backups: { name: string }[] }[] };
  return (listing.subvolumes ?? []).find((s) => s.name === subvolume)?.backups.map((b) => b.name) ?? [];
}

function upWith(paths: LaptopPaths): string | null {
  try {
    return (JSON.parse(fs.readFileSync(paths.stateFile, 'utf8')) as { envFile?: string }).envFile ?? null;
  } catch {
    return null;
  }
}

export async function laptopDemo({
  envFile = LOCAL_ENV_FILE,
  paths = laptopPaths(),
  c,
  write = (s: string) => process.stdout.write(s),
}: {
  envFile?: string;
  paths?: LaptopPaths;
  c: Palette;
  write?: (s: string) => void;
}): Promise<void> {
  const say = (s = '') => write(`${s}\n`);
  let n = 0;
  const step = (title: string) => say(`\n${c.bold(`== laptop ${++n}/8: ${title}`)}`);
  const run = (
    where: LaptopPaths,
    argv: string[],
    what: string,
    { show = true, max, expect = 0 }: { show?: boolean; max?: number; expect?: number } = {},
  ): RunResult => {
    say(c.dim(`  ${where === paths ? '' : `(${DEMO_DEVICES.desk}) `}$ ${argv.join(' ')}`));
    const r = laptopExec(argv, { paths: where, timeout: 15 * 60_000 });
    if (show && r.output.trim()) say(excerpt(r.output, { max }));
    if (r.status !== expect && what)
      throw new OperatorError(
        `demo: ${what} ${expect ? `exited ${r.status}, not ${expect}` : 'failed'} on ${where.name}`,
        {
          details: r.output.slice(-2000),
          next: `look inside: npx zx scripts/local-target.mjs laptop exec -- journalctl -u ${SERVICE}`,
        },
      );
    return r;
  };
  const inLaptop = (argv: string[], what: string, opts: { show?: boolean; max?: number } = {}) =>
    run(paths, argv, what, opts);

  // the target gives each of the two devices a key of its own (once: it remembers them; devices it had stay)
  const target = localTargetPaths();
  if (path.resolve(envFile) !== path.resolve(target.envFile))
    throw new OperatorError(`the laptop demo needs the local target's own connection file, not ${envFile}`, {
      next: `run it with --env ${path.relative(process.cwd(), target.envFile) || target.envFile}`,
    });
  const missing = missingDevices(target, Object.values(DEMO_DEVICES));
  if (missing.length) {
    say(
      c.dim(
        `  giving the target the devices ${missing.join(' and ')}: a key each (the boot script runs again; volume and host key stay) ...`,
      ),
    );
    await up({ devices: [...new Set([...(target.devices ?? []), ...Object.values(DEMO_DEVICES)])] });
  }
  const laptopEnv = deviceEnvFile(target, DEMO_DEVICES.laptop);
  const desk = deskPaths(paths);
  const deskEnv = deviceEnvFile(target, DEMO_DEVICES.desk);
  // a container brought up with another connection file (an earlier demo's single key) starts over
  for (const [p, file] of [
    [paths, laptopEnv],
    [desk, deskEnv],
  ] as const)
    if (upWith(p) && upWith(p) !== file) await laptopDown({ paths: p, purge: true });

  step(
    `a Debian 13 laptop container with its own btrfs disk, next to the target: device ${DEMO_DEVICES.laptop}, with its own key`,
  );
  const s = await laptopUp({ paths, envFile: laptopEnv, onProgress: (l) => say(c.dim(`  ${l}`)) });
  say(
    `  ${c.green('✓')} ${s.name} is up${s.alreadyUp ? ' (it already was)' : ''}: disk at ${LAPTOP_DISK_MOUNT}, target at 127.0.0.1:${s.port}`,
  );
  laptopExec(
    [
      'bash',
      '-c',
      `mkdir -p ${HOME}/me && echo "demo notes written $(date -u +%FT%TZ)" > ${HOME}/me/notes.txt && head -c 8M /dev/urandom > ${HOME}/me/photo.raw`,
    ],
    { paths },
  );
  say(`  wrote ${HOME}/me/notes.txt and an 8 MiB file: the person's home`);

  step('protect the home with one command');
  inLaptop([...BACKUP, 'install', '--subvolume', HOME, '--env', LAPTOP_ENV_FILE], 'backup.mjs install');

  step(`one scheduled run: ${SERVICE} started the way its hourly timer starts it`);
  inLaptop(['systemctl', 'start', SERVICE], `systemctl start ${SERVICE}`, { show: false });
  const id = /^InvocationID=(\S+)/m.exec(
    laptopExec(['systemctl', 'show', '-p', 'InvocationID', SERVICE], { paths }).stdout,
  )?.[1];
  const journal = laptopExec(
    ['journalctl', '--no-pager', '-o', 'cat', ...(id ? [`_SYSTEMD_INVOCATION_ID=${id}`] : ['-u', SERVICE, '-n', '40'])],
    { paths },
  ).stdout;
  say(excerpt(btrbkSummary(journal), { max: 20 }));
  say(
    `  next run: ${laptopExec(['systemctl', 'show', '-p', 'NextElapseUSecRealtime', '--value', 'btrbk-aws.timer'], { paths }).stdout.trim() || '(see systemctl list-timers)'}`,
  );

  step('status: how fresh the off-site copy is (exit 0 = fresh)');
  inLaptop([...BACKUP, 'status'], 'backup.mjs status');

  step('restore one file from the backup, next to the live one');
  inLaptop(['rm', '-f', '/root/notes.restored.txt'], "removing an earlier demo's copy", { show: false });
  inLaptop(
    [...BACKUP, 'restore', '--subvolume', HOME, '--path', 'me/notes.txt', '--to', '/root/notes.restored.txt'],
    'backup.mjs restore --path',
    { max: 10 },
  );
  const back = laptopExec(['cat', '/root/notes.restored.txt'], { paths }).stdout.trim();
  say(`  restored notes.txt reads: ${back || c.red('(not found)')}`);

  step('a second backup sends only the change; the backups browsed: ls, diff, find, and a path that is not there');
  laptopExec(
    [
      'bash',
      '-c',
      `echo "a line added $(date -u +%FT%TZ)" >> ${HOME}/me/notes.txt && echo "buy milk" > ${HOME}/me/todo.txt`,
    ],
    { paths },
  );
  say(`  added a line to notes.txt and wrote todo.txt`);
  inLaptop([...BACKUP, 'run'], 'backup.mjs run', { max: 8 });
  const names = backupNames(
    inLaptop([...BACKUP, 'list', '--json'], 'backup.mjs list --json', { show: false }).stdout,
    path.posix.basename(HOME),
  );
  inLaptop([...BACKUP, 'ls', '--depth', '1', `${HOME}/me`], 'backup.mjs ls', { max: 8 });
  if (names.length >= 2)
    inLaptop([...BACKUP, 'diff', names[0], names[names.length - 1]], 'backup.mjs diff', { max: 8 });
  inLaptop([...BACKUP, 'find', 'todo*'], 'backup.mjs find', { max: 6 });
  run(paths, [...BACKUP, 'ls', `${HOME}/me/nothing`], 'backup.mjs ls of a missing path', { max: 4, expect: 1 });

  step(`a second device, ${DEMO_DEVICES.desk}: its own key, its own backups, and no way into the laptop's`);
  // (not booted beside the laptop in step 1: the steps between run synchronously, and its wait for the target's
  // sshd would time out; it stays up after the demo, so a second demo finds it up)
  const d = await laptopUp({ paths: desk, envFile: deskEnv, onProgress: (l) => say(c.dim(`  ${l}`)) });
  say(
    `  ${c.green('✓')} ${d.name} is up${d.alreadyUp ? ' (it already was)' : ''}: device ${DEMO_DEVICES.desk}'s key and connection file`,
  );
  laptopExec(['bash', '-c', `mkdir -p ${HOME}/me && echo "desk notes $(date -u +%FT%TZ)" > ${HOME}/me/desk.txt`], {
    paths: desk,
  });
  const deskInstall = run(
    desk,
    [...BACKUP, 'install', '--subvolume', HOME, '--env', LAPTOP_ENV_FILE],
    'backup.mjs install (desk)',
    {
      show: false,
    },
  );
  say(
    excerpt(
      deskInstall.output
        .split('\n')
        .filter((l) => /device desk|the target directory/.test(l))
        .join('\n'),
    ),
  );
  run(desk, [...BACKUP, 'run'], 'backup.mjs run (desk)', { max: 3 });
  // desk's owner takes the laptop's connection file: desk's key meets the laptop's backups, and the target says no
  const stolen = `${path.posix.dirname(LAPTOP_ENV_FILE)}/connection-${DEMO_DEVICES.laptop}.env`;
  laptopExec(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', stolen], {
    paths: desk,
    input: formatConnection(
      laptopConnection(readConnection(laptopEnv)),
      `device ${DEMO_DEVICES.laptop}'s file, with desk's key`,
    ),
  });
  run(desk, [...BACKUP, 'list', '--env', stolen], "the laptop's backups with desk's key", { max: 4, expect: 1 });
  // the owner's view: check-volume with the target's legacy key lists every device and its newest backup
  const { checkVolume } = await import('../diagnose/check-volume.js');
  const { sshSession } = await import('../diagnose/session.js');
  const owner = readConnection(envFile);
  const session = sshSession(owner);
  let seen;
  try {
    seen = (await checkVolume(owner, {}, session)).find((r) => r.name === 'devices and their newest backup');
  } finally {
    session.close(); // an open SSH connection would keep the demo's process from ending
  }
  say(
    c.dim(
      `  $ npx zx scripts/troubleshoot.mjs check-volume --env ${path.relative(process.cwd(), envFile) || envFile}   (the owner's key)`,
    ),
  );
  say(excerpt(`devices and their newest backup: ${seen?.detail ?? '(not shown)'}\n${seen?.output ?? ''}`, { max: 8 }));

  step('the laptop is lost: a new one (a fresh disk, nothing installed) gets its home back from the target');
  const sum = (): string => laptopExec(['sha256sum', `${HOME}/me/photo.raw`], { paths }).stdout.split(' ')[0];
  const before = sum();
  await laptopDown({ paths, purge: true });
  await laptopUp({ paths, envFile: laptopEnv, onProgress: (l) => say(c.dim(`  ${l}`)) });
  inLaptop(
    [...BACKUP, 'restore', '--subvolume', HOME, '--make-live', '--env', LAPTOP_ENV_FILE],
    'backup.mjs restore --make-live',
    { max: 12 },
  );
  say(
    `  ${sum() === before ? c.green('✓ photo.raw is back, byte for byte') : c.red('✗ photo.raw differs from the one backed up')}; notes.txt reads: ${laptopExec(['cat', `${HOME}/me/notes.txt`], { paths }).stdout.trim()}`,
  );
  inLaptop(
    [...BACKUP, 'install', '--subvolume', HOME, '--env', LAPTOP_ENV_FILE],
    'backup.mjs install on the new laptop',
    { max: 3 },
  );
  inLaptop([...BACKUP, 'run'], "the new laptop's first backup", { max: 8 });

  say(`\n${c.bold('Recap')}`);
  say(
    `  ${c.green('✓')} the laptop (${paths.name}) backs up ${HOME} to the local target by itself: btrbk-aws.timer, hourly`,
  );
  say(`  ${c.green('✓')} one scheduled run sent it; status reports it fresh; one file came back with restore --path`);
  say(
    `  ${c.green('✓')} the second backup sent only the change; ls, diff and find read the backups on the target; a missing path is said, exit 1`,
  );
  say(
    `  ${c.green('✓')} two devices, one target: ${DEMO_DEVICES.laptop} and ${DEMO_DEVICES.desk} (${desk.name}) each back up with a key of their own; desk's key is refused on the laptop's backups`,
  );
  say(
    `  ${c.green('✓')} a new laptop got the whole home back from the target (restore --make-live), and its first backup was incremental (its bytes above)`,
  );
  say('  try it yourself:');
  say('    npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs status');
  say('    npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs list');
  say('    npx zx scripts/local-target.mjs laptop exec -- systemctl list-timers btrbk-aws.timer');
  say('    npx zx scripts/local-target.mjs laptop exec -- cat /etc/btrbk/btrbk-aws.conf   (the config install wrote)');
  say(
    '    npx zx scripts/troubleshoot.mjs check-volume --env local_connection.env   (every device, its newest backup)',
  );
  say(
    `  remove it: npx zx scripts/local-target.mjs laptop down --purge; desk: BTRBK_LAPTOP_STATE=${desk.stateDir} BTRBK_LAPTOP_NAME=${desk.name} npx zx scripts/local-target.mjs laptop down --purge   (the target: local-target.mjs down --purge)`,
  );
}
