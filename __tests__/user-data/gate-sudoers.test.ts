// user-data/sudoers-btrbk: valid for visudo, and in step with the gate: every sudo command the gate runs for
// a btrbk command shape is allowed by a rule, and the root-level commands an attacker wants are not. The rules'
// argument patterns are POSIX EREs that JavaScript reads the same way (groups, ?, *, +, brackets, |).
// (The integration test asks the real sudo in the local target the same questions.)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { ACCEPTED, ACCEPTED_WITH_ALLOW_DELETE, ALLOW_DELETE, DIAGNOSTICS, dryRun, SUDOERS } from './gate-harness.js';

interface Rule {
  alias: string;
  command: string;
  args: RegExp | string;
}

/** Reads the Cmnd_Alias entries (continuation lines joined). */
function readRules(text: string): Rule[] {
  const lines = text.replace(/\\\n\s*/g, '').split('\n');
  const rules: Rule[] = [];
  for (const line of lines) {
    const m = /^Cmnd_Alias (\w+) = (.*)$/.exec(line);
    if (!m) continue;
    for (const entry of m[2].split(/,\s+/)) {
      const [, command, args] = /^(\S+) (.*)$/.exec(entry.trim()) ?? [];
      rules.push({ alias: m[1], command, args: args.startsWith('^') ? new RegExp(args) : args });
    }
  }
  return rules;
}

const rules = readRules(fs.readFileSync(SUDOERS, 'utf8'));

/** Which alias allows `argv` (as sudo gets it, program first), or undefined. */
function allowedBy(argv: string[]): string | undefined {
  const [command, ...rest] = argv;
  const args = rest.join(' ');
  return rules.find((r) => r.command === command && (typeof r.args === 'string' ? r.args === args : r.args.test(args)))
    ?.alias;
}

test('visudo accepts the fragment', () => {
  const r = spawnSync('/usr/sbin/visudo', ['-c', '-f', SUDOERS], { encoding: 'utf8' });
  expect(r.error).toBeUndefined();
  expect(r.stdout).toMatch(/parsed OK/);
  expect(r.status).toBe(0);
});

test('the fragment grants the btrbk user only these aliases, as root, and keeps no environment', () => {
  const text = fs.readFileSync(SUDOERS, 'utf8');
  const grants = text.split('\n').filter((l) => /^btrbk\s/.test(l));
  expect(grants).toEqual([
    'btrbk ALL=(root) NOPASSWD: BTRBK_RECEIVE, BTRBK_SEND, BTRBK_LIST, BTRBK_SHOW, BTRBK_USAGE, BTRBK_DIAG, BTRBK_MANIFEST, BTRBK_SELFTEST_DELETE',
    // dropped with the alias by the boot script in append-only mode (every line naming BTRBK_DELETE)
    'btrbk ALL=(root) NOPASSWD: BTRBK_DELETE',
  ]);
  expect(text).not.toMatch(/ALL\s*$|SETENV|env_keep\s*[+]?=/m);
  // sudo for btrfs subcommands, the receive wrapper, the prune report and the manifest (which drops to btrbk with
  // CAP_DAC_READ_SEARCH) only: the log and scrub diagnostics read world-readable files as btrbk
  expect(new Set(rules.map((r) => r.command))).toEqual(
    new Set([
      '/usr/bin/btrfs',
      '/usr/local/sbin/btrbk-receive',
      '/usr/local/sbin/btrbk-prune',
      '/usr/local/sbin/btrbk-manifest',
    ]),
  );
  // no rule lets btrfs receive run directly: only btrbk-receive (--chroot into its own staging directory)
  expect(rules.filter((r) => r.command === '/usr/bin/btrfs' && /receive/.test(String(r.args)))).toEqual([]);
});

const sudoStages = [
  ...ACCEPTED.map(([c]) => [c, dryRun(c)] as const),
  ...DIAGNOSTICS.map(([c]) => [c, dryRun(c)] as const),
  ...ACCEPTED_WITH_ALLOW_DELETE.map(([c]) => [c, dryRun(c, ALLOW_DELETE)] as const),
].flatMap(([command, result]) =>
  result.stages.filter((argv) => argv[0] === '/usr/bin/sudo').map((argv) => [command, argv.slice(2)] as const),
);

test('the grammar table has sudo stages to check, and every one of them runs btrfs, btrbk-receive, the prune report or the manifest', () => {
  expect(sudoStages.length).toBeGreaterThanOrEqual(30);
  expect(
    sudoStages.filter(
      ([, argv]) =>
        ![
          '/usr/bin/btrfs',
          '/usr/local/sbin/btrbk-receive',
          '/usr/local/sbin/btrbk-prune',
          '/usr/local/sbin/btrbk-manifest',
        ].includes(argv[0]),
    ),
  ).toEqual([]);
});

test('append-only: without the BTRBK_DELETE lines (what the boot script installs by default) no delete is allowed', () => {
  const appendOnly = readRules(
    fs
      .readFileSync(SUDOERS, 'utf8')
      .split('\n')
      .filter((l) => !l.includes('BTRBK_DELETE'))
      .join('\n'),
  );
  // only the scratch area's rule deletes (the shared one and a device's), and it cannot name anything outside
  // /backup_volume/backups/selftest/ or /backup_volume/backups/DEVICE/selftest/
  const deleting = appendOnly.filter((r) => /delete/.test(String(r.args)));
  expect(deleting.map((r) => r.alias)).toEqual(['BTRBK_SELFTEST_DELETE', 'BTRBK_SELFTEST_DELETE']);
  const matches = (args: string) => deleting.some((r) => (r.args as RegExp).test(args));
  expect(matches('subvolume delete /backup_volume/backups/selftest/rt/x')).toBe(true);
  expect(matches('subvolume delete /backup_volume/backups/alpha/selftest/rt/x')).toBe(true);
  for (const p of [
    '/backup_volume/backups/selftest',
    '/backup_volume/backups/l/home.1',
    '/backup_volume/backups/selftestX/a',
    '/backup_volume/backups/selftest/../l/home.1',
    '/backup_volume/backups/alpha/selftest',
    '/backup_volume/backups/alpha/l/selftest/x',
    '/backup_volume/backups/../selftest/x',
    '/backup_volume/backups/alpha/selftest/../home.1',
  ]) {
    expect(matches(`subvolume delete ${p}`)).toBe(false);
  }
  expect(rules.some((r) => r.alias === 'BTRBK_DELETE')).toBe(true);
});

test.each(sudoStages)('sudo allows what the gate runs for: %s', (_command, argv) => {
  expect(allowedBy(argv)).toBeDefined();
});

test.each([
  ['receive outside the root', '/usr/bin/btrfs receive /etc'],
  ['receive into the mount top', '/usr/bin/btrfs receive /backup_volume'],
  ['receive into a sibling of the root', '/usr/bin/btrfs receive /backup_volume/backupsX'],
  ['receive with traversal', '/usr/bin/btrfs receive /backup_volume/backups/../x'],
  ['receive with a file option after the path', '/usr/bin/btrfs receive /backup_volume/backups/x -f /etc/shadow'],
  ['receive with a chroot option', '/usr/bin/btrfs receive -m / /backup_volume/backups/x'],
  ['btrfs receive itself, even into the root', '/usr/bin/btrfs receive /backup_volume/backups/x'],
  ['btrbk-receive outside the root', '/usr/local/sbin/btrbk-receive /etc'],
  ['btrbk-receive into the staging area', '/usr/local/sbin/btrbk-receive /backup_volume/.btrbk-staging'],
  ['btrbk-receive with traversal', '/usr/local/sbin/btrbk-receive /backup_volume/backups/../x'],
  ['btrbk-receive with a test option', '/usr/local/sbin/btrbk-receive --root / /backup_volume/backups/x'],
  ['btrbk-receive cleaning staging', '/usr/local/sbin/btrbk-receive --clean-stale'],
  ['btrbk-prune itself (deletes)', '/usr/local/sbin/btrbk-prune'],
  ['btrbk-manifest outside the root', '/usr/local/sbin/btrbk-manifest /etc'],
  ['btrbk-manifest of the volume top', '/usr/local/sbin/btrbk-manifest /backup_volume'],
  ['btrbk-manifest with traversal', '/usr/local/sbin/btrbk-manifest /backup_volume/backups/../../etc'],
  ['btrbk-manifest with a sample but no seed', '/usr/local/sbin/btrbk-manifest --sample 5 /backup_volume/backups/x'],
  ['btrbk-manifest with a sample of 0', '/usr/local/sbin/btrbk-manifest --sample 0 --seed 1 /backup_volume/backups/x'],
  [
    'btrbk-manifest with a huge seed',
    '/usr/local/sbin/btrbk-manifest --sample 5 --seed 1234567890123456789 /backup_volume/backups/x',
  ],
  ['btrbk-manifest of two paths', '/usr/local/sbin/btrbk-manifest /backup_volume/backups/x /etc'],
  ['btrbk-prune with options', '/usr/local/sbin/btrbk-prune report --config /tmp/x'],
  ['send into a file', '/usr/bin/btrfs send -f /tmp/x /backup_volume/backups/x'],
  ['send outside the root', '/usr/bin/btrfs send /etc'],
  ['send of the root itself', '/usr/bin/btrfs send /backup_volume/backups'],
  ['delete the root', '/usr/bin/btrfs subvolume delete /backup_volume/backups'],
  ['delete the root via /.', '/usr/bin/btrfs subvolume delete /backup_volume/backups/.'],
  ['delete the root via ..', '/usr/bin/btrfs subvolume delete /backup_volume/backups/x/..'],
  ['delete the mount top', '/usr/bin/btrfs subvolume delete /backup_volume'],
  ['delete two subvolumes', '/usr/bin/btrfs subvolume delete /backup_volume/backups/a /backup_volume/backups/b'],
  ['list of /', '/usr/bin/btrfs subvolume list -a /'],
  ['snapshot', '/usr/bin/btrfs subvolume snapshot /backup_volume/backups/a /backup_volume/backups/b'],
  ['property set ro false', '/usr/bin/btrfs property set /backup_volume/backups/x ro false'],
  ['usage of /', '/usr/bin/btrfs filesystem usage /'],
  ['resize', '/usr/bin/btrfs filesystem resize 1G /backup_volume'],
  ['tail of another file', '/usr/bin/tail -n 200 /etc/shadow'],
  ['tail with more lines', '/usr/bin/tail -n 200 /var/log/cloud-init-output.log /etc/shadow'],
  ['a shell', '/bin/sh -c id'],
  ['readlink as root (the gate runs it as btrbk)', '/usr/bin/readlink -v -e /backup_volume/backups'],
  ['mkdir as root', '/usr/bin/mkdir -p /backup_volume/backups/x'],
])('sudo refuses: %s', (_what, commandLine) => {
  expect(allowedBy(commandLine.split(' '))).toBeUndefined();
});
