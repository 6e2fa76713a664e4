// The laptop half of `npm run demo` (after setup --target local and the round trip): the laptop container comes up,
// `backup.mjs install` protects its home, the backup service runs once the way its timer starts it, `status` says
// how fresh the off-site copy is, one file comes back with `restore --path`, and a new laptop (fresh disk) gets the
// whole home back from the target with `restore --make-live`. Each step prints a heading and the
// few lines that matter (the btrbk summary from the journal, not its whole log); a short recap ends it, so the
// result does not scroll away.
import process from 'node:process';
import { LOCAL_ENV_FILE } from '../core/connection.js';
import { OperatorError } from '../core/errors.js';
import type { RunResult } from '../core/process.js';
import type { Palette } from '../core/report.js';
import {
  laptopDown,
  laptopExec,
  laptopPaths,
  laptopUp,
  LAPTOP_DISK_MOUNT,
  LAPTOP_ENV_FILE,
  type LaptopPaths,
} from './laptop.js';

const HOME = `${LAPTOP_DISK_MOUNT}/home`;
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
  const step = (title: string) => say(`\n${c.bold(`== laptop ${++n}/6: ${title}`)}`);
  const inLaptop = (
    argv: string[],
    what: string,
    { show = true, max }: { show?: boolean; max?: number } = {},
  ): RunResult => {
    say(c.dim(`  $ ${argv.join(' ')}`));
    const r = laptopExec(argv, { paths, timeout: 15 * 60_000 });
    if (show && r.output.trim()) say(excerpt(r.output, { max }));
    if (r.status !== 0 && what)
      throw new OperatorError(`demo: ${what} failed on the laptop (exit ${r.status})`, {
        details: r.output.slice(-2000),
        next: `look inside: npx zx scripts/local-target.mjs laptop exec -- journalctl -u ${SERVICE}`,
      });
    return r;
  };

  step('a Debian 13 laptop container with its own btrfs disk, next to the target');
  const s = await laptopUp({ paths, envFile, onProgress: (l) => say(c.dim(`  ${l}`)) });
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

  step('the laptop is lost: a new one (a fresh disk, nothing installed) gets its home back from the target');
  const sum = (): string => laptopExec(['sha256sum', `${HOME}/me/photo.raw`], { paths }).stdout.split(' ')[0];
  const before = sum();
  await laptopDown({ paths, purge: true });
  await laptopUp({ paths, envFile, onProgress: (l) => say(c.dim(`  ${l}`)) });
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

  say(`\n${c.bold('Recap')}`);
  say(
    `  ${c.green('✓')} the laptop (${paths.name}) backs up ${HOME} to the local target by itself: btrbk-aws.timer, hourly`,
  );
  say(`  ${c.green('✓')} one scheduled run sent it; status reports it fresh; one file came back with restore --path`);
  say(
    `  ${c.green('✓')} a new laptop got the whole home back from the target (restore --make-live); its next backup is incremental`,
  );
  say('  try it yourself:');
  say('    npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs status');
  say('    npx zx scripts/local-target.mjs laptop exec -- node_modules/.bin/zx scripts/backup.mjs list');
  say('    npx zx scripts/local-target.mjs laptop exec -- systemctl list-timers btrbk-aws.timer');
  say('    npx zx scripts/local-target.mjs laptop exec -- cat /etc/btrbk/btrbk-aws.conf   (the config install wrote)');
  say('  remove it: npx zx scripts/local-target.mjs laptop down --purge   (the target: local-target.mjs down --purge)');
}
