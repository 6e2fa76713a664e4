// What backup.mjs install writes: the btrbk config (read by the real btrbk), the ssh config (read by the real ssh
// -G), the systemd units, and the file set written only where it differs (idempotent).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { renderBtrbkConf } from '../../scripts/lib/deploy/btrbk-conf.js';
import {
  applyFiles,
  installedConnection,
  manifestFile,
  manifestFor,
  planInstallFiles,
  readManifest,
  removeFiles,
  renderSshConfig,
  controlPathFor,
  type InstallInputs,
} from '../../scripts/lib/laptop/install.js';
import { CONTROL_PATH, FILES, LOCKFILE, SSH_ALIAS, UNITS } from '../../scripts/lib/laptop/layout.js';
import { parseSshG, sshSettingsProblems } from '../../scripts/lib/laptop/system.js';
import {
  checkInterval,
  parseCalendarGap,
  randomDelaySeconds,
  renderNotifyScript,
  renderPresleepUnit,
  renderServiceUnit,
  renderTimerUnit,
  timeSpan,
} from '../../scripts/lib/laptop/units.js';
import { sampleConnection } from '../support/connection-fixture.js';

const conn = sampleConnection({
  host: '127.0.0.1',
  port: 2222,
  instanceId: 'local-target',
});
const inputs: InstallInputs = {
  conn,
  envFile: '/repo/local_connection.env',
  machine: 'laptop1',
  targetDir: '/backup_volume/backups/laptop1',
  sources: [
    { subvolume: '/mnt/disk/home', snapshotDir: '/mnt/disk/.btrbk-aws-snapshots' },
    { subvolume: '/mnt/disk/srv', snapshotDir: '/mnt/disk/.btrbk-aws-snapshots' },
  ],
  interval: 'hourly',
  appendOnly: true,
  knownHosts: '[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv1',
  identity: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n',
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'laptop-gen-'));
const fileOf = (p: string): string => planInstallFiles(inputs).find((f) => f.path === p)?.content ?? '';

describe('the installed btrbk config', () => {
  const text = fileOf(FILES.btrbkConf);

  test('btrbk 0.32 parses it: each subvolume by absolute path, its snapshot dir, the target through the ssh alias', () => {
    const file = path.join(dir, 'btrbk-aws.conf');
    fs.writeFileSync(file, text);
    const r = spawnSync('btrbk', ['-c', file, '--format=raw', 'list', 'config'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const s of ['home', 'srv']) {
      expect(r.stdout).toContain(`source_subvolume='/mnt/disk/${s}'`);
    }
    expect(r.stdout).toContain("snapshot_path='/mnt/disk/.btrbk-aws-snapshots'");
    expect(r.stdout).toContain(`target_host='${SSH_ALIAS}'`);
    expect(r.stdout).toContain("target_path='/backup_volume/backups/laptop1'");
    // btrbk runs plain `ssh -i KEY btrbk@ALIAS`: the port and the pinned host key come only from the ssh config
    expect(r.stdout).toMatch(
      /target_rsh='ssh -c aes128-gcm@openssh\.com,chacha20-poly1305@openssh\.com -i .*\/etc\/btrbk\/btrbk-aws\/id_backup.* btrbk@btrbk-aws-target'/,
    );
  });

  test('append-only host: never deletes on the target; long-iso names; a lockfile', () => {
    expect(text).toMatch(/^target_preserve_min\s+all$/m);
    expect(text).not.toMatch(/^target_preserve\s/m);
    expect(text).toMatch(/^timestamp_format\s+long-iso$/m);
    expect(text).toMatch(new RegExp(`^lockfile\\s+${LOCKFILE}$`, 'm'));
    expect(text).not.toMatch(/^volume /m);
  });

  test('a host that allows deletes: the client prunes, but keeps every backup of the last day (a same-day run sends)', () => {
    const t = planInstallFiles({ ...inputs, appendOnly: false }).find((f) => f.path === FILES.btrbkConf)?.content ?? '';
    expect(t).toMatch(/^target_preserve_min\s+1d$/m);
    expect(t).toMatch(/^target_preserve\s+20d 10w 6m$/m);
  });

  test('the printed snippet and the installed file come from the same generator', () => {
    const printed = renderBtrbkConf(installedConnection(conn), {
      sources: inputs.sources,
      targetDir: inputs.targetDir,
      sshConfig: { alias: SSH_ALIAS, file: FILES.sshConfig },
      identity: FILES.identity,
      lockfile: LOCKFILE,
      timestampFormat: 'long-iso',
      writtenBy: 'backup.mjs install',
    });
    expect(printed).toBe(text);
    // setup's own snippet now says how to make the snapshot dir and points at install
    const snippet = renderBtrbkConf(conn);
    expect(snippet).toMatch(/mkdir \/mnt\/btr_pool\/btrbk_snapshots/);
    expect(snippet).toMatch(/backup\.mjs install --subvolume/);
  });
});

describe('the installed ssh config', () => {
  test('ssh -G reads it for the alias: pinned known_hosts, strict checking, port, key, connection reuse', () => {
    const file = path.join(dir, 'ssh_config');
    fs.writeFileSync(file, renderSshConfig(conn));
    const g = parseSshG(execFileSync('ssh', ['-G', '-F', file, SSH_ALIAS], { encoding: 'utf8' }));
    expect(sshSettingsProblems(g, { host: '127.0.0.1', port: '2222', user: 'btrbk' })).toEqual([]);
    expect(g.batchmode).toBe('yes');
    expect(g.controlpath).toMatch(/^\/run\/btrbk-aws\/ssh-[0-9a-f]+$/);
    expect(CONTROL_PATH).toBe('/run/btrbk-aws/ssh-%C');
  });

  test("connection reuse is per key: another key's install gets another socket, so a master the earlier key opened (alive 60 s) never carries the next key's connections", () => {
    const pathFor = (identity: string) => {
      const file = path.join(dir, 'ssh_config');
      fs.writeFileSync(file, renderSshConfig(conn, identity));
      return parseSshG(execFileSync('ssh', ['-G', '-F', file, SSH_ALIAS], { encoding: 'utf8' })).controlpath;
    };
    const alpha = pathFor('-----BEGIN OPENSSH PRIVATE KEY-----\nalpha\n');
    const legacy = pathFor('-----BEGIN OPENSSH PRIVATE KEY-----\nlegacy\n');
    expect(alpha).toMatch(/^\/run\/btrbk-aws\/ssh-[0-9a-f]{40}-[0-9a-f]{8}$/);
    expect(legacy).not.toBe(alpha);
    expect(pathFor('-----BEGIN OPENSSH PRIVATE KEY-----\nalpha\n')).toBe(alpha); // the same key: the same socket
    expect(controlPathFor('x')).toBe(`${CONTROL_PATH}-${controlPathFor('x').slice(-8)}`);
  });

  test('sshSettingsProblems names a setting another config overrode', () => {
    const g = {
      hostname: '127.0.0.1',
      port: '2222',
      user: 'btrbk',
      userknownhostsfile: '~/.ssh/known_hosts',
      stricthostkeychecking: 'false',
      controlmaster: 'auto',
      controlpersist: '60',
      identityfile: FILES.identity,
      controlpath: '/run/btrbk-aws/x',
    };
    expect(sshSettingsProblems(g, { host: '127.0.0.1', port: '2222', user: 'btrbk' })).toEqual([
      `userknownhostsfile is ~/.ssh/known_hosts, not ${FILES.knownHosts}`,
      'stricthostkeychecking is false, not true',
    ]);
  });

  test('the include file names the ssh config, nothing else', () => {
    expect(
      fileOf(FILES.sshInclude)
        .split('\n')
        .filter((l) => l && !l.startsWith('#')),
    ).toEqual([`Include ${FILES.sshConfig}`]);
  });
});

describe('the systemd units', () => {
  test('service: oneshot, bounded, after the network is online, runs btrbk with the installed config', () => {
    const s = renderServiceUnit({ btrbk: '/usr/bin/btrbk' });
    expect(s).toMatch(/^Type=oneshot$/m);
    expect(s).toMatch(/^TimeoutStartSec=6h$/m);
    expect(s).toMatch(/^After=network-online\.target$/m);
    expect(s).toMatch(/^Wants=network-online\.target$/m);
    expect(s).toMatch(new RegExp(`^ExecStart=/usr/bin/btrbk -c ${FILES.btrbkConf} run$`, 'm'));
    expect(s).toMatch(/^RuntimeDirectory=btrbk-aws$/m);
  });

  test('the installed service creates the target directory through the gate before each run (install may have run offline)', () => {
    expect(fileOf(FILES.service)).toMatch(
      new RegExp(
        `^ExecStartPre=/usr/bin/ssh -i ${FILES.identity} ${SSH_ALIAS} "mkdir -p '/backup_volume/backups/laptop1'"$`,
        'm',
      ),
    );
  });

  test('timer: hourly by default, Persistent, a randomized delay; daily and a calendar expression too', () => {
    const t = renderTimerUnit();
    expect(t).toMatch(/^OnCalendar=hourly$/m);
    expect(t).toMatch(/^Persistent=true$/m);
    expect(t).toMatch(/^RandomizedDelaySec=10min$/m);
    expect(t).toMatch(/^WantedBy=timers\.target$/m);
    expect(renderTimerUnit({ interval: 'daily' })).toMatch(/^RandomizedDelaySec=1h$/m);
    expect(checkInterval('*-*-* 0/2:00')).toBeNull();
    expect(checkInterval('hourly; rm -rf /')).toMatch(/--interval/);
  });

  test("the random delay scales with the interval: a sixth of it, at most 1 h (a 15-minute interval does not wait up to 10 min); an OnCalendar expression's interval from systemd-analyze", () => {
    expect(['hourly', 'daily', 'weekly'].map((i) => randomDelaySeconds(i))).toEqual([600, 3600, 3600]);
    expect(randomDelaySeconds('*:0/15', 900)).toBe(150);
    expect(randomDelaySeconds('*:0/15', null)).toBe(0);
    expect(renderTimerUnit({ interval: '*:0/15', randomDelay: 150 })).toMatch(/^RandomizedDelaySec=150s$/m);
    expect(renderTimerUnit({ interval: '*:0/30', randomDelay: 300 })).toMatch(/^RandomizedDelaySec=5min$/m);
    expect(renderTimerUnit({ interval: '*:0/30' })).toMatch(/^RandomizedDelaySec=0s$/m);
    expect([timeSpan(600), timeSpan(3600), timeSpan(150), timeSpan(0)]).toEqual(['10min', '1h', '150s', '0s']);
    // systemd-analyze calendar --iterations=2 (systemd 252), TZ=UTC
    const out = `  Original form: *:0/15
Normalized form: *-*-* *:00/15:00
    Next elapse: Sat 2026-12-05 19:45:00 UTC
       From now: 8min left
       Iter. #2: Sat 2026-12-05 20:00:00 UTC
       From now: 23min left
`;
    expect(parseCalendarGap(out)).toBe(900);
    // systemd 257 (Debian 13)
    expect(parseCalendarGap(out.replace('       Iter. #2:', '   Iteration #2:').replace('20:00:00', '20:30:00'))).toBe(
      2700,
    );
    expect(parseCalendarGap('Failed to parse calendar specification')).toBeNull();
  });

  test('pre-sleep: before sleep.target, a snapshot only (no network, deletes nothing), short', () => {
    const p = renderPresleepUnit();
    expect(p).toMatch(/^Before=sleep\.target$/m);
    expect(p).toMatch(/^WantedBy=sleep\.target$/m);
    expect(p).toMatch(/--preserve snapshot$/m);
    expect(p).not.toMatch(/network-online/);
    expect(p).toMatch(/^TimeoutStartSec=60$/m);
  });
});

describe('--notify (off by default)', () => {
  test('off: no OnFailure, no notify files; on: OnFailure= the notify unit, its script 0755', () => {
    expect(planInstallFiles(inputs).map((f) => f.path)).not.toContain(FILES.notify);
    expect(fileOf(FILES.service)).not.toMatch(/OnFailure/);
    const on = planInstallFiles({ ...inputs, notify: true });
    expect(on.find((f) => f.path === FILES.service)?.content).toMatch(new RegExp(`^OnFailure=${UNITS.notify}$`, 'm'));
    expect(on.find((f) => f.path === FILES.notifyScript)?.mode).toBe(0o755);
    expect(on.find((f) => f.path === FILES.notify)?.content).toMatch(
      new RegExp(`^ExecStart=${FILES.notifyScript}$`, 'm'),
    );
  });

  test('the script is shellcheck-clean and notifies each graphical session as its user, on its bus, and nobody else', () => {
    const bin = fs.mkdtempSync(path.join(dir, 'bin-'));
    const log = path.join(bin, 'log');
    const script = path.join(bin, 'notify-failure');
    fs.writeFileSync(script, renderNotifyScript(), { mode: 0o755 });
    expect(spawnSync('shellcheck', [script], { encoding: 'utf8' }).stdout).toBe('');
    const fake = (name: string, body: string) =>
      fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    fake(
      'loginctl',
      `case $1 in
  list-sessions) printf '%s\\n' '  3 1000 alice seat0 tty2' '  7 1001 bob   -     pts/1' ;;
  show-session) case $2 in 3) echo wayland ;; *) echo tty ;; esac ;;
esac`,
    );
    fake('runuser', `echo "runuser $*" >> ${log}; shift 3; exec "$@"`);
    fake('notify-send', `echo "notify-send DBUS=$DBUS_SESSION_BUS_ADDRESS $*" >> ${log}`);
    // the session bus sockets: the script checks they exist (a socket made by python's socket module)
    const runDir = fs.mkdtempSync(path.join(dir, 'run-'));
    const sock = path.join(runDir, 'bus');
    execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind('${sock}')`]);
    const text = renderNotifyScript().replace(/\/run\/user\/\$uid\/bus/, sock);
    fs.writeFileSync(script, text, { mode: 0o755 });
    const r = spawnSync('sh', [script], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin` } });
    expect(r.status).toBe(0);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(
      /^runuser -u alice -- env DBUS_SESSION_BUS_ADDRESS=unix:path=.*bus notify-send --urgency=critical/,
    );
    expect(lines[1]).toMatch(
      /^notify-send DBUS=unix:path=.*bus --urgency=critical --app-name=btrbk-aws Off-site backup failed/,
    );
    expect(lines).toHaveLength(2);
  });
});

describe('writing the files', () => {
  test('the key is 0600; a second apply changes nothing; a changed setting updates exactly its files; removal', () => {
    const root = fs.mkdtempSync(path.join(dir, 'root-'));
    const files = planInstallFiles(inputs);
    expect(files.find((f) => f.path === FILES.identity)?.mode).toBe(0o600);
    expect(applyFiles(root, files).every((c) => c.action === 'created')).toBe(true);
    expect(fs.statSync(path.join(root, FILES.identity)).mode & 0o777).toBe(0o600);
    expect(applyFiles(root, files).every((c) => c.action === 'unchanged')).toBe(true);
    const daily = planInstallFiles({ ...inputs, interval: 'daily' });
    expect(applyFiles(root, daily).filter((c) => c.action !== 'unchanged')).toEqual([
      { path: FILES.timer, action: 'updated' },
    ]);
    const m = manifestFor(inputs, files, [], '2026-11-30T00:00:00Z');
    applyFiles(root, [manifestFile(m)]);
    expect(m.files).toContain(FILES.manifest);
    expect(m.connection.keyFile).toBe(FILES.identity);
    // the first-send ETA's settings are recorded only when install was given them (an older manifest stays as it was)
    expect(Object.keys(m)).not.toContain('instanceType');
    expect(
      manifestFor({ ...inputs, instanceType: 't3a.small', uploadMbit: 40 }, files, [], '2026-11-30T00:00:00Z'),
    ).toMatchObject({ instanceType: 't3a.small', uploadMbit: 40 });
    const removed = removeFiles(root, m.files);
    expect(removed.every((c) => c.action === 'removed')).toBe(true);
    expect(fs.existsSync(path.join(root, FILES.dir))).toBe(false);
    expect(fs.existsSync(path.join(root, '/etc/btrbk'))).toBe(true);
  });
});

describe('the manifest on disk', () => {
  /** A manifest as install wrote it before the connection was typed: the connection file's KEY -> value pairs. */
  const OLD_MANIFEST = {
    version: 1,
    installedAt: '2026-11-01T10:00:00.000Z',
    envFile: '/repo/local_connection.env',
    connection: {
      BTRBK_AWS_SSH_PORT: '2222',
      BTRBK_AWS_KNOWN_HOSTS: FILES.knownHosts,
      BTRBK_AWS_HOST: '127.0.0.1',
      BTRBK_AWS_USER: 'btrbk',
      BTRBK_AWS_SSH_KEY: FILES.identity,
      BTRBK_AWS_TARGET: 'ssh://127.0.0.1:2222/backup_volume/backups/',
      BTRBK_AWS_PATH: '/backup_volume/backups',
      BTRBK_AWS_INSTANCE_ID: 'local-target',
      BTRBK_AWS_VOLUME_ID: 'vol-0123456789abcdef0',
      BTRBK_AWS_REGION: 'local',
    },
    machine: 'laptop1',
    targetDir: '/backup_volume/backups/laptop1',
    sources: inputs.sources,
    createdSnapshotDirs: [],
    interval: 'hourly',
    appendOnly: true,
    btrbk: '/usr/bin/btrbk',
    notify: false,
    files: [FILES.btrbkConf, FILES.manifest],
  };
  const writeManifest = (content: unknown): string => {
    const root = fs.mkdtempSync(path.join(dir, 'manifest-'));
    fs.mkdirSync(path.join(root, path.dirname(FILES.manifest)), { recursive: true });
    fs.writeFileSync(path.join(root, FILES.manifest), JSON.stringify(content, null, 2));
    return root;
  };

  test("an earlier install's manifest loads, its connection typed", () => {
    const m = readManifest(writeManifest(OLD_MANIFEST));
    expect(m?.connection).toEqual({
      host: '127.0.0.1',
      port: 2222,
      user: 'btrbk',
      keyFile: FILES.identity,
      knownHostsFile: FILES.knownHosts,
      targetUrl: 'ssh://127.0.0.1:2222/backup_volume/backups/',
      backupRoot: '/backup_volume/backups',
      instanceId: 'local-target',
      volumeId: 'vol-0123456789abcdef0',
      region: 'local',
    });
    expect(m?.targetDir).toBe(OLD_MANIFEST.targetDir);
  });

  test('install keeps writing the connection in that form, so the file reads back the same', () => {
    const m = manifestFor(inputs, planInstallFiles(inputs), [], '2026-11-30T00:00:00Z');
    const onDisk = JSON.parse(manifestFile(m).content);
    expect(onDisk.connection).toEqual({
      ...OLD_MANIFEST.connection,
      BTRBK_AWS_TARGET: conn.targetUrl,
      BTRBK_AWS_REGION: conn.region,
    });
    const root = fs.mkdtempSync(path.join(dir, 'manifest-'));
    applyFiles(root, [manifestFile(m)]);
    expect(readManifest(root)).toEqual(m);
  });

  test('a manifest whose connection lacks a key is refused with what to do', () => {
    const { BTRBK_AWS_USER: _, ...connection } = OLD_MANIFEST.connection;
    expect(() => readManifest(writeManifest({ ...OLD_MANIFEST, connection }))).toThrow(
      expect.objectContaining({
        what: expect.stringMatching(/install\.json is not a manifest this version can read$/),
        likelyCause: expect.stringMatching(/lacks BTRBK_AWS_USER/),
        next: expect.stringMatching(/run install again/),
      }),
    );
  });
});
