// The laptop side of devices (issue 20), on the laptop container under real systemd, backing up to a local target of
// this file's own with two devices (alpha, bravo): the laptop installs as alpha with alpha's connection file, backs
// up with real btrbk through the gate into backups/alpha, and status and list show it; bravo's connection file with
// alpha's key is refused by name (which device, which key, what to do); a key the target does not know stops install
// before anything is written and prints the terraform.tfvars line; and alpha's backup comes back with restore
// --device alpha on a machine with nothing installed; and the upgrade: a laptop installed with the legacy key (as
// machine charlie) gets its own device key once the host has devices.charlie, and carries on incrementally.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { formatConnection, readConnection } from '../../scripts/lib/core/connection.js';
import type { RunResult } from '../../scripts/lib/core/process.js';
import {
  deviceEnvFile,
  deviceKey,
  ensureDeviceKeys,
  renderFor,
  writeDeviceEnvFiles,
} from '../../scripts/lib/local-target/boot-script.js';
import { loadState, type UpState } from '../../scripts/lib/local-target/paths.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';
import { parseSize } from '../../scripts/lib/core/btrfs-output.js';
import { LAPTOP_DISK_MOUNT, LAPTOP_ENV_FILE, laptopConnection } from '../../scripts/lib/local-target/laptop.js';
import {
  down,
  execInTarget,
  installBootScript,
  localTargetPaths,
  rerunBootScript,
  up,
} from '../../scripts/lib/local-target/local-target.js';
import { startTestLaptop, type TestLaptop } from './laptop-harness.js';
import { freePort } from './test-target.js';

jest.setTimeout(15 * 60_000);

const A = 'alpha';
const B = 'bravo';
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-test-ldev-'));
const env = {
  ...process.env,
  BTRBK_LOCAL_TARGET_STATE: stateDir,
  BTRBK_LOCAL_TARGET_NAME: `btrbk-test-ldev-${path.basename(stateDir).slice(-6)}`,
  BTRBK_LOCAL_TARGET_ENV_FILE: path.join(stateDir, 'connection.env'),
  BTRBK_LOCAL_TARGET_PORT: '',
  BTRBK_LOCAL_TARGET_DEVICES: '',
};
const paths = () => ({ ...localTargetPaths(env), devices: [A, B] });
const HOME = `${LAPTOP_DISK_MOUNT}/home`;
const SECRETS = path.posix.dirname(LAPTOP_ENV_FILE);
const NOTE = `alpha's note ${Date.now()}\n`;
let laptop: TestLaptop;

/** When the last backup.mjs run started: btrbk names snapshots to the second (long-iso), so the next run must start
 * in a later second (a run takes seconds: this rarely waits at all). */
let lastRunAt = 0;
const backupRun = (what: string): RunResult => {
  lastRunAt = Date.now();
  return ok(laptop.backup(['run']), what);
};
const nextSecond = () => new Promise((r) => setTimeout(r, Math.max(0, lastRunAt + 1100 - Date.now())));
const ok = (r: RunResult, what: string): RunResult => {
  if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r;
};
const sh = (script: string): string => ok(laptop.exec(['sh', '-c', script]), script).stdout;
/** The backups below a directory on the target, as root there. */
const onTarget = (dir: string): string[] => {
  const r = execInTarget(['sh', '-c', 'ls -1 "$1" 2>/dev/null || true', 'sh', dir], { paths: paths() });
  return r.stdout.split('\n').filter(Boolean);
};
/** A connection file in the laptop: `conn` as the laptop holds it, with the key at `keyFile`. */
const writeLaptopConnection = (file: string, source: string, keyFile: string): void => {
  const conn = { ...laptopConnection(readConnection(source)), keyFile };
  ok(
    laptop.exec(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', file], { input: formatConnection(conn, 'test') }),
    `write ${file}`,
  );
};

beforeAll(async () => {
  env.BTRBK_LOCAL_TARGET_PORT = String(await freePort());
  await up({ env, devices: [A, B], onProgress: (l) => process.stderr.write(`[laptop-devices] ${l}\n`) });
  laptop = await startTestLaptop('ldev', { envFile: deviceEnvFile(paths(), A), target: paths() });
  sh(`mkdir -p ${HOME}/me && printf '%s' "${NOTE.trim()}" > ${HOME}/me/note.txt && echo >> ${HOME}/me/note.txt`);
});

afterAll(async () => {
  await laptop?.destroy();
  await down({ env, purge: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

test("the laptop holds alpha's connection file: it names the device, its root is backups/alpha", () => {
  const text = laptop.exec(['cat', LAPTOP_ENV_FILE]).stdout;
  expect(text).toMatch(/^BTRBK_AWS_DEVICE='?alpha'?$/m);
  expect(text).toMatch(/^BTRBK_AWS_PATH='?\/backup_volume\/backups\/alpha'?$/m);
});

test('install as device alpha, one backup with real btrbk through the gate: into backups/alpha itself; status and list show it', () => {
  const inst = ok(laptop.backup(['install', '--subvolume', HOME, '--env', LAPTOP_ENV_FILE]), 'install');
  expect(inst.stdout).toMatch(/device alpha: backups go to \/backup_volume\/backups\/alpha on the target/);
  const manifest = JSON.parse(laptop.exec(['cat', '/etc/btrbk/btrbk-aws/install.json']).stdout);
  expect(manifest).toMatchObject({ device: A, machine: A, targetDir: '/backup_volume/backups/alpha' });
  expect(laptop.exec(['systemctl', 'is-enabled', 'btrbk-aws.timer']).stdout.trim()).toBe('enabled');

  backupRun('run');
  const there = onTarget('/backup_volume/backups/alpha');
  expect(there.filter((n) => /^home\.\d{8}T\d{4}/.test(n))).toHaveLength(1);
  expect(onTarget('/backup_volume/backups/bravo')).toEqual([]);

  const status = laptop.backup(['status', '--json']);
  expect(status.status).toBe(0);
  const s = JSON.parse(status.stdout) as { targetDir: string; subvolumes: Array<{ state: string; backups: number }> };
  expect(s.targetDir).toBe('/backup_volume/backups/alpha');
  expect(s.subvolumes.map((v) => [v.state, v.backups])).toEqual([['fresh', 1]]);

  const list = ok(laptop.backup(['list']), 'list').stdout;
  expect(list).toMatch(/backups in \/backup_volume\/backups\/alpha on the target/);
  expect(list).toMatch(/home\.\d{8}T\d{4}/);
});

test("bravo's connection file with alpha's key: list, status and restore say whose key it is and what to do", () => {
  const file = `${SECRETS}/connection-bravo-wrong-key.env`;
  writeLaptopConnection(file, deviceEnvFile(paths(), B), `${SECRETS}/id_ed25519`);
  const refusal = `the key ${SECRETS}/id_ed25519 is device alpha's key, not device bravo's: the target refuses it for bravo's backups`;
  for (const args of [
    ['list', '--env', file],
    ['restore', '--subvolume', HOME, '--device', B, '--to', `${LAPTOP_DISK_MOUNT}/wrong`, '--env', file],
  ]) {
    const r = laptop.backup(args);
    expect({ args, status: r.status }).toEqual({ args, status: 1 });
    expect(r.stderr).toContain(refusal);
    expect(r.stderr).toMatch(/next:\s+use device bravo's own connection file and key \(--env connection-bravo\.env\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }
  const st = laptop.backup(['status', '--env', file]);
  expect(st.status).toBe(1);
  expect(st.stdout + st.stderr).toContain(refusal);
  // asking alpha's file for bravo: refused before any ssh, naming the file to use
  const asked = laptop.backup(['list', '--device', B, '--env', LAPTOP_ENV_FILE]);
  expect(asked.status).toBe(2);
  expect(asked.stderr).toMatch(/the connection file is device alpha's \(its key .*\), not device bravo's/);
  expect(laptop.exec(['test', '-e', `${LAPTOP_DISK_MOUNT}/wrong`]).status).toBe(1);
});

test('a key the target does not know: install prints the terraform.tfvars line and the next step, and writes nothing', () => {
  const key = `${SECRETS}/id_ed25519-carol`;
  sh(`ssh-keygen -q -t ed25519 -N '' -C root@carol -f ${key}`);
  const pub = laptop.exec(['cat', `${key}.pub`]).stdout.trim();
  // the single key's form of file (what setup writes on AWS), with the new key
  const file = `${SECRETS}/connection-carol.env`;
  writeLaptopConnection(file, paths().envFile, key);
  const before = laptop.exec(['cat', '/etc/btrbk/btrbk-aws/install.json']).stdout;
  const r = laptop.backup(['install', '--subvolume', HOME, '--device', 'carol', '--env', file]);
  expect(r.status).toBe(1);
  expect(r.stderr).toContain(`✗ the target refused the key ${key} of device carol`);
  expect(r.stderr).toContain(`    "carol" = "${pub}"`);
  expect(r.stderr).toMatch(/next:\s+add the line, deploy .*then run install again\. Nothing was installed\./);
  expect(laptop.exec(['cat', '/etc/btrbk/btrbk-aws/install.json']).stdout).toBe(before);
});

test("restore --device alpha with alpha's connection on a machine with nothing installed brings alpha's backup back", () => {
  ok(laptop.backup(['uninstall']), 'uninstall');
  const to = `${LAPTOP_DISK_MOUNT}/restored`;
  const r = ok(
    laptop.backup(['restore', '--subvolume', HOME, '--device', A, '--to', to, '--env', LAPTOP_ENV_FILE]),
    'restore',
  );
  expect(r.stdout).toMatch(/restore of .*home from \/backup_volume\/backups\/alpha\/home\.\d{8}T/);
  const name = sh(`ls ${to}`).trim();
  expect(name).toMatch(/^home\.\d{8}T/);
  expect(laptop.exec(['cat', `${to}/${name}/me/note.txt`]).stdout).toBe(NOTE);
});

test('upgrade: a laptop installed with the legacy key moves to its own device key (the host got `devices` with its name): its next backup is incremental from the backups it has, every one of them intact', async () => {
  const C = 'charlie';
  const dir = `${BACKUP_ROOT}/${C}`;
  const root = (script: string, ...args: string[]) => {
    const r = execInTarget(['/bin/bash', '-c', script, 'bash', ...args], { paths: paths() });
    if (r.status !== 0) throw new Error(`on the target: ${script} failed: ${r.stderr}`);
    return r.stdout;
  };
  /** Each backup below DIR as root: name, UUID, received UUID, parent UUID, read-only. */
  const backups = () =>
    root(
      'cd "$1" && for s in $(find . -mindepth 1 -type d -inum 256 | sort); do printf "%s %s\\n" "$s" "$(btrfs subvolume show "$s" | sed -n "s/^[[:space:]]*\\(UUID\\|Received UUID\\|Parent UUID\\|Flags\\):[[:space:]]*//p" | tr "\\n" " ")"; done',
      dir,
    )
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name, uuid, parent, received, flags] = l.split(/\s+/);
        return { name, uuid, parent, received, flags };
      });
  const copyKey = (from: string, to: string) =>
    ok(laptop.exec(['sh', '-c', 'umask 077 && cat > "$1"', 'sh', to], { input: fs.readFileSync(from, 'utf8') }), to);

  // the single-key setup as it is today: the legacy key, the machine's own directory backups/charlie
  const legacyFile = `${SECRETS}/connection-legacy.env`;
  copyKey(paths().sshKey, `${SECRETS}/id_ed25519-legacy`);
  writeLaptopConnection(legacyFile, paths().envFile, `${SECRETS}/id_ed25519-legacy`);
  sh(`head -c 1M /dev/urandom > ${HOME}/me/photo.raw`);
  ok(laptop.backup(['install', '--subvolume', HOME, '--machine', C, '--env', legacyFile]), 'install (legacy key)');
  backupRun('run (legacy key, full)');
  sh(`echo second >> ${HOME}/me/note.txt`);
  await nextSecond();
  backupRun('run (legacy key, incremental)');
  const before = backups(); // two, and any older snapshot of this home btrbk sends as a missing backup
  expect(before.length).toBeGreaterThanOrEqual(2);
  expect(root('stat -c %i "$1"', dir).trim()).not.toBe('256'); // a plain directory, as the single key made it

  // the owner adds devices.charlie (here: the boot script run again with it, as a deploy replaces the instance)
  const devices = { ...paths(), devices: [A, B, C] };
  ensureDeviceKeys(devices);
  const volumeId = JSON.parse(fs.readFileSync(devices.stateFile, 'utf8')).volumeId as string;
  installBootScript(devices, renderFor(devices, volumeId));
  const boot = await rerunBootScript({ paths: devices });
  expect({ status: boot.status, tail: boot.output.split('\n').slice(-3).join('\n') }).toMatchObject({ status: 0 });
  writeDeviceEnvFiles(devices, loadState(devices) as UpState);
  expect(root('stat -c %i "$1"', dir).trim()).toBe('256'); // moved into the device's own subvolume
  expect(backups()).toEqual(before); // every backup as it was: UUID, received UUID, read-only

  // the laptop moves to charlie's own key: install --device charlie, then its next backup
  const deviceFile = `${SECRETS}/connection-${C}.env`;
  copyKey(deviceKey(devices, C), `${SECRETS}/id_ed25519-${C}`);
  writeLaptopConnection(deviceFile, deviceEnvFile(devices, C), `${SECRETS}/id_ed25519-${C}`);
  const inst = ok(laptop.backup(['install', '--subvolume', HOME, '--device', C, '--env', deviceFile]), 'install');
  expect(inst.stdout).toMatch(new RegExp(`device ${C}: backups go to ${dir} on the target`));
  sh(`echo third >> ${HOME}/me/note.txt`);
  await nextSecond();
  const run = backupRun("run (charlie's key)");
  const after = backups();
  expect(after.slice(0, before.length)).toEqual(before);
  expect(after).toHaveLength(before.length + 1);
  // incremental: received as a snapshot of the newest backup there (a full receive has no parent), and small
  expect(after.at(-1)!.parent).toBe(before.at(-1)!.uuid);
  // backup.mjs run's closing line of the send: incremental, and a few KiB of the 1 MiB home
  const closing = /home\.\S+: ([\d.]+ \S+) sent in .*\((incremental|full send)\)/.exec(run.stdout + run.stderr);
  expect(closing?.[2]).toBe('incremental');
  expect(parseSize(closing?.[1] ?? '')).toBeLessThan(256 << 10);
  expect(laptop.exec(['cat', `${HOME}/me/note.txt`]).stdout).toMatch(/second\nthird\n$/);
  expect(root('cat "$1/$2/me/note.txt"', dir, after.at(-1)!.name)).toMatch(/second\nthird\n$/);
}, 600_000);
