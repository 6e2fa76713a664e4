// scripts/backup.mjs on a real laptop (the laptop container: Debian 13, systemd 257, btrbk 0.32.6, its own btrfs
// disk) backing up to the run's local target (Debian 12) through the SSH gate. In order, as a person meets it:
// install (units checked by systemd-analyze verify, the timer enabled), status before any backup, one backup
// started the way the timer starts it, status fresh/stale, the pre-sleep unit with the network down (a snapshot,
// nothing sent), status with the target unreachable and with the target broken, list, a new laptop (a fresh
// filesystem) restoring and making the backup live, the next backup's wire bytes near the size of the change,
// and uninstall (units and configs gone, snapshots and backups kept).
import { jest } from '@jest/globals';
import path from 'node:path';
import process from 'node:process';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';
import type { RunResult } from '../../scripts/lib/core/process.js';
import { FILES, UNITS } from '../../scripts/lib/laptop/layout.js';
import { laptopNetwork, LAPTOP_DISK_MOUNT, LAPTOP_ENV_FILE } from '../../scripts/lib/local-target/laptop.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { startTestLaptop, type TestLaptop } from './laptop-harness.js';

jest.setTimeout(20 * 60_000);

const HOME = `${LAPTOP_DISK_MOUNT}/home`;
const SRV = `${LAPTOP_DISK_MOUNT}/srv`;
const SNAPSHOTS = `${LAPTOP_DISK_MOUNT}/.btrbk-aws-snapshots`;
const MiB = 1024 * 1024;
const DATA_MIB = 16;
let laptop: TestLaptop;
let targetDir: string;

const ok = (r: RunResult, what: string): RunResult => {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.output.slice(-3000)}`);
  return r;
};
const sh = (script: string, what = script): RunResult =>
  ok(laptop.exec(['bash', '-euo', 'pipefail', '-c', script]), what);
/** Bytes through the laptop's loopback, its only interface: everything it sends to and receives from the target,
 * TCP/IP headers included (lo's transmit counter: each packet on lo counts once there, both directions). */
const wireBytes = (): number => {
  const lo = sh('cat /proc/net/dev')
    .stdout.split('\n')
    .find((l) => l.trim().startsWith('lo:'));
  return Number((lo ?? '').split(':')[1].trim().split(/\s+/)[8]);
};
/** The names of the snapshots (laptop) or backups (target) of one subvolume. */
const namesOf = (list: string, base: string): string[] =>
  list
    .split('\n')
    .map((l) => l.trim())
    .filter((n) => new RegExp(`^${base}\\.\\d{8}T\\d{4}`).test(n))
    .sort();
const localSnapshots = (base: string): string[] => namesOf(sh(`ls -1 ${SNAPSHOTS}`).stdout, base);
const targetBackups = (base: string): string[] => {
  const r = execInTarget(['ls', '-1', targetDir]);
  return r.status === 0 ? namesOf(r.stdout, base) : [];
};
/** Starts a unit the way its timer (or sleep.target) does, and waits for the oneshot to finish. */
const startUnit = (unit: string): { result: string; status: string } => {
  laptop.exec(['systemctl', 'start', unit], { timeout: 10 * 60_000 });
  const show = laptop.exec(['systemctl', 'show', '-p', 'Result', '-p', 'ExecMainStatus', unit]).stdout;
  return { result: /^Result=(.*)$/m.exec(show)?.[1] ?? '', status: /^ExecMainStatus=(.*)$/m.exec(show)?.[1] ?? '' };
};
interface StatusJson {
  ok: boolean;
  subvolumes: Array<{ subvolume: string; state: string; reason: string; backups: number }>;
}
/** `status --json`: its exit status, each subvolume's state and reason, and the output. */
const status = (
  extra: string[] = [],
): { code: number | null; states: string[]; reasons: string; json: StatusJson | null; text: string } => {
  const r = laptop.backup(['status', '--json', ...extra]);
  let json: StatusJson | null = null;
  try {
    json = JSON.parse(r.stdout) as StatusJson;
  } catch {
    /* json stays null: the assertions on states fail and show the text */
  }
  return {
    code: r.status,
    states: (json?.subvolumes ?? []).map((v) => v.state),
    reasons: (json?.subvolumes ?? []).map((v) => v.reason).join('\n'),
    json,
    text: r.output,
  };
};
/** `status` as a person reads it. */
const statusText = (): RunResult => laptop.backup(['status']);

beforeAll(async () => {
  laptop = await startTestLaptop('bk');
  targetDir = path.posix.join(BACKUP_ROOT, laptop.paths.name);
  // a person's home: one larger file of random (incompressible) bytes and some small ones; a server directory
  sh(
    `mkdir -p ${HOME}/me/docs && head -c ${DATA_MIB * MiB} /dev/urandom > ${HOME}/me/data.bin && for i in $(seq 1 40); do echo "note $i" > ${HOME}/me/docs/note-$i.txt; done && echo site > ${SRV}/index.html`,
  );
});
afterAll(async () => {
  await laptop?.destroy();
});

test('install: the btrbk config, ssh settings and units are written, pass systemd-analyze verify, and the timer is enabled', () => {
  const r = laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]);
  expect(r.output).not.toMatch(/✗/);
  expect(r.status).toBe(0);
  // no backup on the target yet: the first backup's estimate, from btrfs filesystem du, at t3a.nano's baseline
  expect(r.stdout).toMatch(
    /^first backup \(\S+, \S+\) of [\d.]+ [MG]B \(give --upload-mbit N for your uplink\):\n {2}standard +t3a\.nano +4\.0 MB\/s \(limited by its network baseline\)/m,
  );
  for (const f of [FILES.btrbkConf, FILES.sshConfig, FILES.knownHosts, FILES.service, FILES.timer, FILES.presleep])
    expect(laptop.exec(['test', '-f', f]).status).toBe(0);
  // systemd 257 reads the units as it will run them (and the programs they name exist)
  const verify = laptop.exec(['systemd-analyze', 'verify', FILES.service, FILES.timer, FILES.presleep]);
  expect(verify.output).toBe('');
  expect(verify.status).toBe(0);
  expect(laptop.exec(['systemctl', 'is-enabled', UNITS.timer]).stdout.trim()).toBe('enabled');
  expect(laptop.exec(['systemctl', 'is-active', UNITS.timer]).stdout.trim()).toBe('active');
  expect(laptop.exec(['systemctl', 'is-enabled', UNITS.presleep]).stdout.trim()).toBe('enabled');
  expect(laptop.exec(['systemctl', 'show', '-p', 'NextElapseUSecRealtime', UNITS.timer]).stdout).toMatch(
    /^NextElapseUSecRealtime=\S+/,
  );
  // the config is btrbk's and is not the person's own btrbk.conf
  expect(laptop.exec(['test', '-e', '/etc/btrbk/btrbk.conf']).status).toBe(1);
  expect(laptop.exec(['btrbk', '-c', FILES.btrbkConf, 'list', 'config']).status).toBe(0);
});

test('install again changes nothing', () => {
  const before = sh(
    `sha256sum ${FILES.btrbkConf} ${FILES.service} ${FILES.timer} ${FILES.presleep} ${FILES.sshConfig}`,
  ).stdout;
  const r = ok(
    laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]),
    'install again',
  );
  expect(r.stdout).toMatch(/Nothing changed/);
  expect(
    sh(`sha256sum ${FILES.btrbkConf} ${FILES.service} ${FILES.timer} ${FILES.presleep} ${FILES.sshConfig}`).stdout,
  ).toBe(before);
});

test('install --subvolume /srv after /home and /srv: adds (both stay protected, said), a custom --interval gets a scaled random delay (said); --replace drops /home (said, its snapshots kept); install again protects both', () => {
  const more = ok(
    // every 15 minutes, but only on a day far ahead: the timer must not start a backup while the tests run
    laptop.backup(['install', '--subvolume', SRV, '--interval', '2099-01-01 00:00/15', '--env', LAPTOP_ENV_FILE]),
    'install --subvolume /srv',
  );
  expect(more.stdout).toMatch(
    new RegExp(`^protected now: ${HOME}, ${SRV} \\(kept from the earlier install ${HOME}\\)$`, 'm'),
  );
  expect(more.stdout).toMatch(
    /^ {2}timer: OnCalendar=2099-01-01 00:00\/15, each run after a random delay of up to 2\.5 min \(a sixth of the interval, at most 1 h\)$/m,
  );
  expect(sh(`cat ${FILES.timer}`).stdout).toMatch(/^RandomizedDelaySec=150s$/m);
  expect(sh(`cat ${FILES.btrbkConf}`).stdout).toMatch(new RegExp(`^subvolume ${HOME}$`, 'm'));
  // systemd 257 takes the timer as written
  expect(laptop.exec(['systemd-analyze', 'verify', FILES.timer]).status).toBe(0);
  const replaced = ok(
    laptop.backup(['install', '--replace', '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]),
    'install --replace',
  );
  expect(replaced.stdout).toMatch(new RegExp(`^protected now: ${SRV}$`, 'm'));
  expect(replaced.stdout).toMatch(
    new RegExp(
      `^! ${HOME} is no longer protected \\(--replace\\): its snapshots in \\S+ and its backups on the target are kept`,
      'm',
    ),
  );
  expect(sh(`cat ${FILES.btrbkConf}`).stdout).not.toMatch(new RegExp(`^subvolume ${HOME}$`, 'm'));
  expect(status().json?.subvolumes.map((v) => v.subvolume)).toEqual([SRV]);
  const both = ok(
    laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]),
    'install both again',
  );
  expect(both.stdout).toMatch(new RegExp(`^protected now: ${HOME}, ${SRV} \\(added ${HOME}\\)$`, 'm'));
  expect(sh(`cat ${FILES.timer}`).stdout).toMatch(/^RandomizedDelaySec=10min$/m);
});

test('status before the first backup: never backed up, exit non-zero', () => {
  const s = status();
  expect(s.states).toEqual(['never', 'never']);
  expect(s.reasons).toMatch(/has never been backed up/);
  expect(s.code).not.toBe(0);
  const t = statusText();
  expect(t.stdout).toMatch(/never backed up/);
  expect(t.status).not.toBe(0);
});

test('the service started as the timer starts it sends both subvolumes to the target', () => {
  const w0 = wireBytes();
  expect(startUnit(UNITS.service)).toEqual({ result: 'success', status: '0' });
  const sent = wireBytes() - w0;
  expect(targetBackups('home')).toHaveLength(1);
  expect(targetBackups('srv')).toHaveLength(1);
  expect(localSnapshots('home')).toHaveLength(1);
  // the first backup is a full one: the random data crossed the wire
  expect(sent).toBeGreaterThan(DATA_MIB * MiB);
  // what arrived is what was sent: the file on the target is the file on the laptop
  const [backup] = targetBackups('home');
  const there = execInTarget(['sha256sum', `${targetDir}/${backup}/me/data.bin`]).stdout.split(' ')[0];
  expect(there).toBe(sh(`sha256sum ${HOME}/me/data.bin`).stdout.split(' ')[0]);
  // the run's result is in the journal
  expect(laptop.exec(['journalctl', '-u', UNITS.service, '--no-pager', '-o', 'cat']).stdout).toMatch(
    /Backup Summary|>>>|\+\+\+/,
  );
});

test('status: fresh after the backup (exit 0); stale with a threshold shorter than its age (exit non-zero)', () => {
  const fresh = status();
  expect(fresh.states).toEqual(['fresh', 'fresh']);
  expect(fresh.code).toBe(0);
  expect(statusText().stdout).toMatch(/fresh/);
  const stale = status(['--max-age-hours', '0.0001']);
  expect(stale.states).toEqual(['stale', 'stale']);
  expect(stale.reasons).toMatch(/old, more than 0\.0001 h/);
  expect(stale.code).not.toBe(0);
});

test('the pre-sleep unit with the network down: a snapshot is made, nothing is sent, and it finishes at once', async () => {
  await laptopNetwork('down', laptop.paths);
  try {
    sh(`echo changed before sleep >> ${HOME}/me/docs/note-1.txt`);
    const homeBefore = localSnapshots('home');
    const w0 = wireBytes();
    const t0 = Date.now();
    // (a snapshot name has minutes: two in the same minute get a _1 suffix, which namesOf counts too)
    expect(startUnit(UNITS.presleep)).toEqual({ result: 'success', status: '0' });
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(localSnapshots('home').length).toBe(homeBefore.length + 1);
    expect(wireBytes() - w0).toBe(0);
    expect(targetBackups('home')).toHaveLength(1);
    // install while offline: installs, and the warning says where, why and what next
    const offline = laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]);
    expect(offline.status).toBe(0);
    expect(offline.stdout).toMatch(
      /^! the target btrbk@127\.0\.0\.1 port \d+ did not answer: the target refused the connection \(.*Connection refused\): nothing listens there; is the host running\?\. Installed anyway, .* Next: node_modules\/\.bin\/zx scripts\/troubleshoot\.mjs check-ssh --env \/root\/btrbk-aws\/connection\.env, then node_modules\/\.bin\/zx scripts\/backup\.mjs run$/m,
    );
    // status while offline: the target is unreachable, exit non-zero
    const s = status();
    expect(s.states).toEqual(['unreachable', 'unreachable']);
    expect(s.code).not.toBe(0);
    expect(statusText().stdout).toMatch(/target unreachable/);
  } finally {
    await laptopNetwork('up', laptop.paths);
  }
  // the next scheduled run sends what the pre-sleep unit took
  expect(startUnit(UNITS.service)).toEqual({ result: 'success', status: '0' });
  expect(targetBackups('home').length).toBeGreaterThanOrEqual(2);
});

test('a broken target (its sshd stopped): status says unreachable and exits non-zero; the scheduled run fails and status says so', () => {
  ok(execInTarget(['systemctl', 'stop', 'ssh']), "stop the target's sshd");
  try {
    const s = status();
    expect(s.states).toEqual(['unreachable', 'unreachable']);
    expect(s.reasons).toMatch(/cannot ask the target/);
    expect(s.code).not.toBe(0);
    expect(startUnit(UNITS.service).result).toBe('exit-code');
    // status names the failed scheduled run (it failed before btrbk started: the target directory step)
    expect(statusText().stdout).toMatch(/^last scheduled run: .*exit-code/m);
  } finally {
    ok(execInTarget(['systemctl', 'start', 'ssh']), "start the target's sshd again");
  }
  expect(status().code).toBe(0);
});

test('list: the backups on the target with their times and sizes', () => {
  const r = ok(laptop.backup(['list', '--json']), 'list');
  const text = r.stdout;
  for (const name of [...targetBackups('home'), ...targetBackups('srv')]) expect(text).toContain(name);
  const one = ok(laptop.backup(['list', '--subvolume', SRV]), 'list --subvolume').stdout;
  expect(one).toContain(targetBackups('srv')[0]);
  expect(one).not.toContain(targetBackups('home')[0]);
  expect(one).toMatch(/^sizes: --sizes measures them/m);
  // --sizes: measured on the local snapshot each backup was sent from (the real btrfs filesystem du)
  const sized = JSON.parse(ok(laptop.backup(['list', '--sizes', '--json']), 'list --sizes').stdout) as {
    subvolumes: Array<{ name: string; backups: Array<{ name: string; bytes: number | null }> }>;
    sizes: { measured: number };
  };
  const home = sized.subvolumes.find((x) => x.name === 'home')!.backups;
  expect(home.at(-1)!.bytes).toBeGreaterThanOrEqual(DATA_MIB * MiB); // data.bin (the notes are inline: du counts extents)
  expect(home.at(-1)!.bytes).toBeLessThan((DATA_MIB + 1) * MiB);
  expect(sized.sizes.measured).toBe(sized.subvolumes.flatMap((x) => x.backups).filter((b) => b.bytes !== null).length);
  const sizedText = ok(laptop.backup(['list', '--sizes', '--subvolume', HOME]), 'list --sizes').stdout;
  expect(sizedText).toMatch(
    new RegExp(`^ {4}${home.at(-1)!.name.replace(/[+.]/g, '\\$&')} {3}\\S+ {3}${DATA_MIB}\\.\\d MiB$`, 'm'),
  );
  expect(sizedText).toMatch(/^sizes: the data each backup holds, measured on the local snapshot it was sent from/m);
  // every backup's snapshot is still here: none is '-', and no reason claims one is gone
  expect(sized.subvolumes.flatMap((x) => x.backups).filter((b) => b.bytes === null)).toEqual([]);
  expect(sizedText).not.toMatch(/gone|not measured/);
  // a subvolume this install no longer protects (--replace) is still measured on its snapshots in the shared directory
  ok(laptop.backup(['install', '--replace', '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]), 'install --replace');
  try {
    const after = JSON.parse(ok(laptop.backup(['list', '--sizes', '--json']), 'list --sizes').stdout) as typeof sized;
    expect(after.subvolumes.find((x) => x.name === 'home')!.backups.at(-1)!.bytes).toBe(home.at(-1)!.bytes);
    // one gone for real: its own reason
    const gone = home[0].name;
    sh(`btrfs subvolume delete ${SNAPSHOTS}/${gone} >/dev/null`);
    const text = ok(laptop.backup(['list', '--sizes', '--subvolume', HOME]), 'list --sizes').stdout;
    expect(text).toMatch(new RegExp(`^ {4}${gone.replace(/[+.]/g, '\\$&')} {3}\\S+ {3}-$`, 'm'));
    expect(text).toMatch(
      /; 1 not measured \(-\): home is not protected by this install and no snapshot of that name is in /m,
    );
  } finally {
    ok(laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]), 'install both');
  }
});

test('browse under the install (issue 21): a second backup after a change, then ls, diff and find on the target, verify --at of the first; exit statuses and lines asserted', () => {
  sh(
    `echo "note 7, edited" > ${HOME}/me/docs/note-7.txt && echo "buy milk" > ${HOME}/me/todo.txt && rm ${HOME}/me/docs/note-40.txt`,
  );
  const run = laptop.backup(['run']);
  expect({ status: run.status, out: run.output.slice(-2000) }).toMatchObject({ status: 0 });
  // the closing line of the incremental: its bytes, not the DATA_MIB of the first
  expect(run.output).toMatch(/home\.\S+: [\d.]+ (B|KiB) sent in \S+, .*\(incremental\)/);
  const names = targetBackups('home');
  expect(names.length).toBeGreaterThanOrEqual(2);
  const [first, newest] = [names[0], names[names.length - 1]];

  const ls = laptop.backup(['ls', '--depth', '1', `${HOME}/me`]);
  expect(ls.status).toBe(0);
  expect(ls.stdout).toMatch(
    new RegExp(`^-rw\\S+ +\\d+:\\d+ +${DATA_MIB * MiB} \\S+ \\S+  ${HOME}/me/data\\.bin$`, 'm'),
  );
  expect(ls.stdout).toMatch(new RegExp(`^-rw\\S+ +\\d+:\\d+ +9 \\S+ \\S+  ${HOME}/me/todo\\.txt$`, 'm'));
  expect(ls.stdout).toMatch(new RegExp(`^d\\S+ .*  ${HOME}/me/docs/$`, 'm'));
  expect(ls.stdout).not.toMatch(/note-1\.txt/); // --depth 1: the directory's own entries only
  const json = laptop.backup(['ls', '--json', `${HOME}/me/docs`]);
  expect(json.status).toBe(0);
  const entries = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { struct_type: string; path: string; type: string; size: number | null });
  expect(entries[0]).toMatchObject({ struct_type: 'backup' });
  expect(entries.filter((e) => e.type === 'file').map((e) => e.path)).toHaveLength(39); // note-40 was removed
  expect(entries).toContainEqual(expect.objectContaining({ path: `${HOME}/me/docs/note-7.txt`, size: 15 }));

  const diff = laptop.backup(['diff', first, newest, '--subvolume', HOME]); // two are protected: name one
  expect(diff.status).toBe(0);
  expect(diff.stdout).toContain(`${HOME}: from ${first} to ${newest}`);
  expect(diff.stdout).toMatch(new RegExp(`^M ${HOME}/me/docs/note-7\\.txt$`, 'm'));
  expect(diff.stdout).toMatch(new RegExp(`^\\+ ${HOME}/me/todo\\.txt$`, 'm'));
  expect(diff.stdout).toMatch(new RegExp(`^- ${HOME}/me/docs/note-40\\.txt$`, 'm'));
  expect(diff.stdout).not.toMatch(/data\.bin/); // unchanged: btrfs send skips what both share
  // note-1 too: the pre-sleep test changed it after the first backup
  expect(diff.stdout).toMatch(new RegExp(`^M ${HOME}/me/docs/note-1\\.txt$`, 'm'));
  expect(diff.stdout).toMatch(/^1 added, 1 removed, 0 renamed, 2 modified, \d+ with metadata changes only$/m);

  const found = laptop.backup(['find', 'note-7*']);
  expect(found.status).toBe(0);
  expect(found.stdout).toMatch(new RegExp(`^ +${HOME}/me/docs/note-7\\.txt$`, 'm'));
  expect(found.stdout).toMatch(new RegExp(`changed in: ${newest.replace(/^home\./, '').replace(/\+/g, '\\+')}`));
  const none = laptop.backup(['find', 'no-such-name*']);
  expect(none.status).toBe(1);
  const missing = laptop.backup(['ls', `${HOME}/me/nothing`]);
  expect(missing.status).toBe(1);
  expect(missing.output).toMatch(/not in this backup/);
  expect(missing.output).not.toMatch(/\n\s+at /); // a message, not a stack trace

  // an older backup: its local snapshot went with the second run (btrbk keeps the latest here), so it is read back on
  // the host, every sampled file, and said to be only that (exit 0)
  const verify = laptop.backup(['verify', '--subvolume', HOME, '--at', first, '--sample', '10']);
  expect({ status: verify.status, out: verify.output.slice(-1500) }).toMatchObject({ status: 0 });
  expect(verify.output).toMatch(new RegExp(`✓ readable +${HOME} +${first.replace(/[.+]/g, '\\$&')}`));
  expect(verify.output).toMatch(
    /readable: [1-9]\d* entries read back on the host without an error .*its local snapshot is gone, so nothing was compared/,
  );
});

test('restore --path copies one file out of a backup without touching the live subvolume', () => {
  sh(`echo edited >> ${HOME}/me/docs/note-2.txt`);
  ok(
    laptop.backup(['restore', '--subvolume', HOME, '--path', 'me/docs/note-2.txt', '--to', '/root/note-2.restored']),
    'restore --path',
  );
  expect(sh('cat /root/note-2.restored').stdout).toBe('note 2\n');
  // a destination that exists is never overwritten
  const again = laptop.backup([
    'restore',
    '--subvolume',
    HOME,
    '--path',
    'me/docs/note-2.txt',
    '--to',
    '/root/note-2.restored',
  ]);
  expect(again.status).not.toBe(0);
  expect(again.output).toMatch(/already exists/);
  expect(sh(`cat ${HOME}/me/docs/note-2.txt`).stdout).toBe('note 2\nedited\n');
});

test('restore --path of a deleted file: back under its own name, from the local snapshot (said: nothing transferred); --from-target reads the off-site copy (said, with its bytes); with something in its place the copy goes beside it', () => {
  sh(`rm -r ${HOME}/me/docs`);
  const local = ok(laptop.backup(['restore', '--subvolume', HOME, '--path', 'me/docs/note-3.txt']), 'restore --path');
  expect(local.stdout).toMatch(/^restore of \S+ from the local snapshot \S+ \(the same as \S+ on the target\):$/m);
  expect(local.stdout).toMatch(
    /^done, from the local snapshot .*the off-site copy not read: --from-target reads it\): \S+\/me\/docs\/note-3\.txt$/m,
  );
  expect(sh(`cat ${HOME}/me/docs/note-3.txt`).stdout).toBe('note 3\n');
  // its directory was gone too: made as it is in the backup
  expect(sh(`stat -c %a ${HOME}/me/docs`).stdout.trim()).toBe('755');
  const w0 = wireBytes();
  const remote = ok(
    laptop.backup(['restore', '--subvolume', HOME, '--path', 'me/docs/note-4.txt', '--from-target']),
    'restore --path --from-target',
  );
  const wire = wireBytes() - w0;
  expect(remote.stdout).toMatch(/^restore of \S+ from \/backup_volume\/backups\/\S+ on the target:$/m);
  expect(remote.stdout).toMatch(
    /^ {2}1\. receive \S+ from the target \(the off-site copy\) into \S+\/from-target-\d{8}T\d{6}Z\/ \(read-only\)$/m,
  );
  expect(remote.stdout).toMatch(
    /^done, from the target's \S+ \([\d.]+ MiB received, [\d.]+ MiB over the wire\): \S+\/me\/docs\/note-4\.txt$/m,
  );
  expect(sh(`cat ${HOME}/me/docs/note-4.txt`).stdout).toBe('note 4\n');
  expect(wire).toBeGreaterThan(DATA_MIB * MiB * 0.9); // the whole backup came over the wire (random data)
  const beside = ok(laptop.backup(['restore', '--subvolume', HOME, '--path', 'me/docs/note-4.txt']), 'restore again');
  expect(beside.stdout).toMatch(/^done, .*: \S+\/me\/docs\/note-4\.txt\.restored-\S+$/m);
  // the rest of docs back for the tests after this one
  sh(`cp -a --reflink=auto ${SNAPSHOTS}/$(ls ${SNAPSHOTS} | grep '^home\\.' | tail -1)/me/docs/. ${HOME}/me/docs/`);
  sh(
    `rm -rf ${SNAPSHOTS}/from-target-* 2>/dev/null || true; for d in ${SNAPSHOTS}/from-target-*; do [ -e "$d" ] || continue; btrfs subvolume delete "$d"/* >/dev/null; rmdir "$d"; done`,
  );
});

test('a new laptop (a fresh filesystem) restores the backup, makes it live, and its next backup sends about the change only', async () => {
  const want = sh(`sha256sum ${HOME}/me/data.bin`).stdout.split(' ')[0];
  await laptop.down({ purge: true });
  await laptop.up(); // the same name, a new disk and a fresh OS: nothing installed
  expect(laptop.exec(['test', '-e', `${HOME}/me/data.bin`]).status).toBe(1);
  ok(laptop.backup(['restore', '--subvolume', HOME, '--make-live', '--env', LAPTOP_ENV_FILE]), 'restore --make-live');
  expect(sh(`sha256sum ${HOME}/me/data.bin`).stdout.split(' ')[0]).toBe(want);
  expect(sh(`cat ${HOME}/me/docs/note-1.txt`).stdout).toMatch(/changed before sleep/);
  // the old (empty) home is kept under another name, never deleted
  expect(
    sh(`btrfs subvolume list -o ${LAPTOP_DISK_MOUNT}`)
      .stdout.split('\n')
      .filter((l) => / path home\.before-restore-/.test(l)).length,
  ).toBeGreaterThanOrEqual(1);
  ok(
    laptop.backup(['install', '--subvolume', HOME, '--subvolume', SRV, '--env', LAPTOP_ENV_FILE]),
    'install on the new laptop',
  );
  const backupsBefore = targetBackups('home').length;
  sh(`head -c ${MiB} /dev/urandom > ${HOME}/me/new-1MiB.bin`);
  const w0 = wireBytes();
  expect(startUnit(UNITS.service)).toEqual({ result: 'success', status: '0' });
  const sent = wireBytes() - w0;
  expect(targetBackups('home').length).toBe(backupsBefore + 1);
  // incremental: 1 MiB changed, the home holds DATA_MIB + 1; the wire (both directions, ssh included) stays near 1 MiB
  expect(sent).toBeGreaterThan(MiB);
  expect(sent).toBeLessThan(3 * MiB);
  process.stderr.write(
    `[laptop-backup] wire bytes of the first backup after the restore: ${(sent / MiB).toFixed(2)} MiB for a 1 MiB change\n`,
  );
});

test('install --exclude: a plain directory stays as it is without --make-subvolume (the steps are printed); with it, it becomes a nested subvolume holding every file, left out of the next backup (btrfs send does not carry it)', () => {
  const CACHE = `${HOME}/me/.cache`;
  sh(
    `mkdir -p ${CACHE}/thumbs && head -c 300K /dev/urandom > ${CACHE}/thumbs/a.bin && echo cfg > ${CACHE}/state && ln -s state ${CACHE}/link && chmod 700 ${CACHE} && chmod 640 ${CACHE}/state`,
  );
  const tree = `cd ${CACHE} && find . -printf '%p %y %m %s %l\\n' | sort && find . -type f -exec sha256sum {} + | sort`;
  const before = sh(tree).stdout;
  expect(before).toMatch(/\.\/thumbs\/a\.bin f 644 307200/);
  const install = (extra: string[]) =>
    laptop.backup([
      'install',
      '--subvolume',
      HOME,
      '--subvolume',
      SRV,
      '--env',
      LAPTOP_ENV_FILE,
      '--exclude',
      CACHE,
      ...extra,
    ]);
  const refused = install([]);
  expect(refused.status).not.toBe(0);
  expect(refused.output).toMatch(/plain directory/);
  expect(refused.output).toMatch(/--make-subvolume/);
  expect(refused.output).toMatch(/rename .*before-exclude/);
  expect(laptop.exec(['btrfs', 'subvolume', 'show', CACHE]).status).not.toBe(0);
  expect(sh(tree).stdout).toBe(before);
  ok(install(['--make-subvolume']), 'install --exclude --make-subvolume');
  expect(laptop.exec(['btrfs', 'subvolume', 'show', CACHE]).status).toBe(0);
  expect(sh(tree).stdout).toBe(before);
  expect(sh(`ls -d ${CACHE}.before-exclude-*`).stdout.trim()).toMatch(/\.cache\.before-exclude-/); // the original, kept
  // the next scheduled backup has an empty .cache (a nested subvolume is not part of its parent's snapshot)
  const backupsBefore = targetBackups('home').length;
  expect(startUnit(UNITS.service)).toEqual({ result: 'success', status: '0' });
  expect(targetBackups('home').length).toBe(backupsBefore + 1);
  const newest = `${targetDir}/${targetBackups('home').at(-1)}`;
  expect(execInTarget(['ls', '-A', `${newest}/me`]).stdout).toMatch(/^docs$/m);
  expect(ok(execInTarget(['find', `${newest}/me`, '-path', '*/.cache/*']), 'find in the backup').stdout).toBe('');
  // and install with an existing nested subvolume only says so
  const again = ok(install([]), 'install --exclude (already a subvolume)');
  expect(again.output).toMatch(/already a nested subvolume/);
  // both subvolumes have backups there now: no first-backup estimate
  expect(again.stdout).not.toMatch(/^first backup/m);
});

test('uninstall removes the units and configs, and no snapshot and no backup', () => {
  const snaps = localSnapshots('home');
  const backups = targetBackups('home');
  expect(snaps.length).toBeGreaterThan(0);
  ok(laptop.backup(['uninstall']), 'uninstall');
  for (const f of [FILES.btrbkConf, FILES.sshConfig, FILES.service, FILES.timer, FILES.presleep, FILES.manifest])
    expect(laptop.exec(['test', '-e', f]).status).toBe(1);
  expect(laptop.exec(['systemctl', 'is-enabled', UNITS.timer]).status).not.toBe(0);
  expect(localSnapshots('home')).toEqual(snaps);
  expect(targetBackups('home')).toEqual(backups);
  // status after uninstall: nothing is installed (not a missing connection file), exit 1
  const st = laptop.backup(['status']);
  expect(st.status).toBe(1);
  expect(st.stderr).toMatch(/^✗ nothing is installed on this machine: no backups are scheduled here$/m);
  expect(st.output).not.toMatch(/no connection file|run setup/);
});

test('inside the laptop (node without npm): hints name node_modules/.bin/zx and the connection file that works here, not npx or local_connection.env', () => {
  expect(laptop.exec(['sh', '-c', 'command -v npx']).status).not.toBe(0);
  const r = laptop.backup(['install', '--subvolume', HOME, '--dry-run']);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/^✗ no connection file at /m);
  expect(r.stderr).toMatch(new RegExp(`^ {4}${LAPTOP_ENV_FILE}$`, 'm'));
  expect(r.stderr).toMatch(
    new RegExp(
      `^ {2}next: {2}node_modules/\\.bin/zx scripts/backup\\.mjs install --subvolume PATH --env ${LAPTOP_ENV_FILE}`,
      'm',
    ),
  );
  expect(r.output).not.toMatch(/local_connection\.env|npx/);
});
