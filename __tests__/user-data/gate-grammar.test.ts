// The SSH gate accepts exactly the commands a btrbk 0.32.x client sends to a send/receive target (and for a
// restore), and turns each into the argv it runs. Dry runs check the argv; sandbox runs check that the stages
// really run, piped, without a shell, with a clean environment.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  ACCEPTED,
  ACCEPTED_WITH_ALLOW_DELETE,
  ALLOW_DELETE,
  DIAGNOSTICS,
  GATE,
  dryRun,
  makeSandbox,
  R,
  runGate,
  runInSandbox,
  SUDO_RECEIVE,
  type Sandbox,
} from './gate-harness.js';

describe('gate grammar: every btrbk command shape is accepted with the exact argv (dry run)', () => {
  test.each(ACCEPTED)('%s', (command, stages) => {
    const r = dryRun(command);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stages).toEqual(stages);
  });

  test.each(DIAGNOSTICS)('diagnostic %s runs a fixed argv', (command, argv) => {
    const r = dryRun(command);
    expect(r.status).toBe(0);
    expect(r.stages).toEqual([argv]);
  });

  test('the gate options move the root, mount and logs, and no client text can', () => {
    const args = ['--root', '/srv/vol/b', '--mount', '/srv/vol', '--boot-log', '/srv/boot.log'];
    expect(dryRun(`sudo -n btrfs receive '/srv/vol/b/x/'`, args).stages).toEqual([[...SUDO_RECEIVE, '/srv/vol/b/x']]);
    expect(dryRun('btrbk-diag boot-log', args).stages).toEqual([['/usr/bin/tail', '-n', '200', '/srv/boot.log']]);
    const outside = dryRun(`sudo -n btrfs receive '${R}/x/'`, args);
    expect(outside.status).toBe(255);
    expect(outside.stderr).toMatch(/^rejected: path outside the backup root/m);
  });
});

describe('append-only (the default): the backup key cannot delete a backup', () => {
  test.each(ACCEPTED_WITH_ALLOW_DELETE)('refused without --allow-delete: %s', (command) => {
    const r = dryRun(command);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(
      /^rejected: btrfs subvolume delete: this key cannot delete backups \(the host is append-only/m,
    );
  });

  test.each(ACCEPTED_WITH_ALLOW_DELETE)('accepted with --allow-delete (append_only = false): %s', (command, stages) => {
    const r = dryRun(command, ALLOW_DELETE);
    expect(r.stderr).toBe('');
    expect(r.stages).toEqual(stages);
  });

  test.each([`${R}/selftest`, `${R}/selftestX/a`, `${R}/a/selftest/b`, `${R}/selftest/../l/home.1`])(
    'outside the scratch area %s: refused',
    (p) => {
      const r = dryRun(`sudo -n btrfs subvolume delete '${p}'`);
      expect(r.status).toBe(255);
      expect(r.stderr).toMatch(/^rejected: /m);
    },
  );

  test('a delete hidden in a pipeline or behind plain btrfs is refused the same way', () => {
    for (const command of [
      `btrfs subvolume delete '${R}/l/home.1'`,
      `zstd -d -c | sudo -n btrfs subvolume delete '${R}/l/home.1'`,
    ]) {
      const r = dryRun(command);
      expect(r.status).toBe(255);
      expect(r.stderr).toMatch(/^rejected: /m);
    }
  });

  test('every receive runs btrbk-receive, never btrfs receive itself', () => {
    const receives = ACCEPTED.filter(([c]) => c.includes(' receive ')).map(([c]) => dryRun(c).stages.at(-1));
    expect(receives.length).toBeGreaterThanOrEqual(10);
    for (const argv of receives) expect(argv?.slice(0, 3)).toEqual(SUDO_RECEIVE);
  });

  test('btrbk-diag version says which mode the gate is in', () => {
    expect(runGate('btrbk-diag version', ['--logger', '/bin/true']).stdout).toMatch(/ mode=append-only$/m);
    expect(runGate('btrbk-diag version', ['--logger', '/bin/true', ...ALLOW_DELETE]).stdout).toMatch(
      / mode=allow-delete$/m,
    );
  });
});

describe('gate configuration errors are refused, not guessed', () => {
  test.each([
    [['--root', '/backup_volume/../etc']],
    [['--root', '/etc', '--mount', '/backup_volume']],
    [['--root']],
    [['--frobnicate']],
    [['--mount', '/']],
    [['--sudo', 'sudo']],
  ])('%j', (args) => {
    const r = runGate(`mkdir -p '${R}/x'`, [...args, '--logger', '/bin/true']);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/^rejected: gate misconfigured: /m);
  });
});

describe('gate in a sandbox (fake sudo, real pipes, no shell)', () => {
  let sb: Sandbox;
  beforeEach(() => {
    sb = makeSandbox();
  });
  afterEach(() => sb.cleanup());

  describe('execution', () => {
    test('decompress | mbuffer | receive: the stream arrives intact through three real stages', () => {
      fs.mkdirSync(path.join(sb.root, 'laptop'));
      const data = crypto.randomBytes(300_000);
      const zst = spawnSync('zstd', ['-c', '-q'], { input: data });
      expect(zst.status).toBe(0);
      const r = runInSandbox(
        sb,
        `zstd -d -c | mbuffer -v 1 -q -m 1M | sudo -n btrfs receive '${sb.root}/laptop/'`,
        zst.stdout,
      );
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(fs.readFileSync(path.join(sb.root, 'laptop', 'stream.bin')).equals(data)).toBe(true);
      expect(sb.sudoCalls()).toEqual([`-n /usr/local/sbin/btrbk-receive ${sb.root}/laptop`]);
      expect(sb.trapped()).toEqual([]);
      expect(sb.logLines()).toEqual([
        expect.stringMatching(/^-t btrbk-ssh-gate -p auth\.info -- accepted: client=192\.0\.2\.7 command=/),
      ]);
    });

    test("xz -d: a stream whose dictionary is 1 GiB is refused by the host's xz (128 MiB at most), one of 64 MiB (xz -9) arrives", () => {
      fs.mkdirSync(path.join(sb.root, 'laptop'));
      const data = crypto.randomBytes(100_000);
      const xz = (dict: string) => spawnSync('xz', ['-c', '-q', `--lzma2=dict=${dict}`], { input: data }).stdout;
      const huge = runInSandbox(sb, `xz -d -c | sudo -n btrfs receive '${sb.root}/laptop/'`, xz('1GiB'));
      expect(huge.status).not.toBe(0);
      expect(huge.stderr).toContain('Memory usage limit reached');
      const ok = runInSandbox(sb, `xz -d -c | sudo -n btrfs receive '${sb.root}/laptop/'`, xz('64MiB'));
      expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
      expect(fs.readFileSync(path.join(sb.root, 'laptop', 'stream.bin')).equals(data)).toBe(true);
    });

    test('send | mbuffer | compress: the client gets the compressed stream', () => {
      const snap = path.join(sb.root, 'laptop', 'home.1');
      fs.mkdirSync(snap, { recursive: true });
      const data = crypto.randomBytes(200_000);
      fs.writeFileSync(path.join(snap, 'payload.bin'), data);
      const env = {
        ...process.env,
        SSH_ORIGINAL_COMMAND: `sudo -n btrfs send '${snap}' | mbuffer -v 1 -q | zstd -c -3`,
      };
      const r = spawnSync('/bin/bash', ['-p', GATE, ...sb.args], { env, encoding: 'buffer' });
      expect(r.status).toBe(0);
      const back = spawnSync('zstd', ['-d', '-c', '-q'], { input: r.stdout });
      expect(back.stdout.equals(data)).toBe(true);
      expect(sb.sudoCalls()).toEqual([`-n /usr/bin/btrfs send ${snap}`]);
    });

    test('a failing stage fails the whole pipeline (pipefail), so btrbk sees the error', () => {
      const r = runInSandbox(
        sb,
        `zstd -d -c | sudo -n btrfs receive '${sb.root}/missing/'`,
        spawnSync('zstd', ['-c', '-q'], { input: 'x' }).stdout,
      );
      expect(r.status).not.toBe(0);
      expect(r.status).not.toBe(255);
    });

    test('commands run with a cleared environment (nothing from the login reaches sudo)', () => {
      const r = runInSandbox(sb, `sudo -n btrfs filesystem usage -b '${sb.mount}'`);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`fake btrfs /usr/bin/btrfs filesystem usage -b ${sb.mount}\n`);
      const names = sb.sudoEnv();
      expect(names).toContain('PATH');
      for (const leaked of ['SSH_ORIGINAL_COMMAND', 'SSH_CONNECTION', 'BASH_ENV', 'ENV', 'LD_PRELOAD', 'CMD'])
        expect(names).not.toContain(leaked);
      expect(sb.trapped()).toEqual([]);
    });

    test('mkdir -p and readlink run as the calling user, without sudo', () => {
      const dir = `${sb.root}/laptop/sub`;
      const mk = runInSandbox(sb, `mkdir -p '${dir}'`);
      expect(mk.status).toBe(0);
      expect(fs.statSync(dir).isDirectory()).toBe(true);
      const rl = runInSandbox(sb, `sudo -n readlink -v -e '${dir}'`);
      expect(rl.stdout).toBe(`${dir}\n`);
      const missing = runInSandbox(sb, `readlink -v -e '${sb.root}/nope'`);
      expect(missing.status).toBe(1);
      expect(sb.sudoCalls()).toEqual([]);
    });

    test('cat /proc/self/mountinfo prints the mount table', () => {
      const r = runInSandbox(sb, 'cat /proc/self/mountinfo');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^\d+ \d+ \d+:\d+ \S+ \/ /m);
    });

    test.each([
      ['receive through a symlinked directory', (s: Sandbox) => `sudo -n btrfs receive '${s.root}/link/'`],
      ['delete a symlink', (s: Sandbox) => `sudo -n btrfs subvolume delete '${s.root}/link'`],
      ['mkdir below a symlink', (s: Sandbox) => `mkdir -p '${s.root}/link/x'`],
      ['send through a nested symlink', (s: Sandbox) => `sudo -n btrfs send '${s.root}/host/inner/snap'`],
      ['readlink of a symlink', (s: Sandbox) => `readlink -v -e '${s.root}/link'`],
      ['manifest of a symlink', (s: Sandbox) => `btrbk-manifest '${s.root}/link'`],
      ['manifest through a symlink', (s: Sandbox) => `btrbk-manifest --sample 5 --seed 1 '${s.root}/link/shadow'`],
      ['manifest through a nested symlink', (s: Sandbox) => `btrbk-manifest '${s.root}/host/inner/snap'`],
      ['path through a regular file', (s: Sandbox) => `mkdir -p '${s.root}/file/x'`],
    ])('symlinks and files out of the root are refused: %s', (_what, cmd) => {
      fs.symlinkSync('/etc', path.join(sb.root, 'link'));
      fs.mkdirSync(path.join(sb.root, 'host'));
      fs.symlinkSync(sb.dir, path.join(sb.root, 'host', 'inner'));
      fs.writeFileSync(path.join(sb.root, 'file'), '');
      const r = runInSandbox({ ...sb, args: [...sb.args, ...ALLOW_DELETE] }, cmd(sb));
      expect(r.status).toBe(255);
      expect(r.stderr).toMatch(/^rejected: path (goes through a symlink|is a symlink|goes through a non-directory)/m);
      expect(sb.sudoCalls()).toEqual([]);
      expect(fs.existsSync('/etc/x')).toBe(false);
    });
  });

  describe('what the key learns of the volume: only the backup root and below (issue 17)', () => {
    const U = {
      top: 'fefe339c-fae5-4041-a461-b58eb35c17de',
      root: '997bdcf5-7554-164a-82d7-878b586e7a6f',
      b1: '3f58ee75-ff4d-ad48-bd0f-4732b9b2c5cf',
      stg: '11111111-2222-3333-4444-555555555555',
    };
    const line = (id: number, top: number, uuid: string, p: string) =>
      `ID ${id} gen 9 cgen 8 top level ${top} parent_uuid -                                    received_uuid -                                    uuid ${uuid} path ${p}`;
    const setOutput = (text: string) => fs.writeFileSync(path.join(sb.dir, 'btrfs-output'), text);

    test('subvolume list keeps the backup root and the backups in it; the top level, staging and host state are left out', () => {
      const kept = [
        line(257, 5, U.root, '<FS_TREE>/backups'),
        line(258, 257, U.b1, '<FS_TREE>/backups/laptop/home.20261205'),
      ];
      setOutput(
        [
          line(256, 5, U.stg, '<FS_TREE>/.btrbk-staging/rcv.Ab12Cd34/home.1'),
          kept[0],
          // a name the stream chose may hold " path backups/..." (the filter reads the first " path " only)
          line(259, 5, U.stg, '<FS_TREE>/.btrbk-staging/rcv.Ab12Cd34/x path backups/laptop/y'),
          kept[1],
          line(260, 5, U.top, '<FS_TREE>/.host-state'),
          line(261, 5, U.top, '<FS_TREE>/backups-old'),
          '',
        ].join('\n'),
      );
      const r = runInSandbox(sb, `sudo -n btrfs subvolume list -a -c -u -q -R '${sb.mount}'`);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${kept.join('\n')}\n`);
    });

    test('subvolume show of the top level (btrbk asks --rootid=5) says what it is, with no UUID, generation or time', () => {
      setOutput(
        `/\n\tName: \t\t\t<FS_TREE>\n\tUUID: \t\t\t${U.top}\n\tParent UUID: \t\t-\n\tReceived UUID: \t\t-\n\tCreation time: \t\t2026-12-05 13:41:15 +0000\n` +
          '\tSubvolume ID: \t\t5\n\tGeneration: \t\t77\n\tGen at creation: \t0\n\tParent ID: \t\t0\n\tTop level ID: \t\t0\n\tFlags: \t\t\t-\n\tSnapshot(s):\n\t\t\t\t.btrbk-staging/rcv.x/y\n',
      );
      for (const command of [
        `sudo -n btrfs subvolume show --rootid=5 '${sb.mount}'`,
        `sudo -n btrfs subvolume show '${sb.mount}'`,
      ]) {
        const r = runInSandbox(sb, command);
        expect(r.status).toBe(0);
        expect(r.stdout).not.toMatch(new RegExp(`${U.top}|77|2026|staging`));
        expect(r.stdout).toMatch(/^\/\n\tName: \t\t\t<FS_TREE>\n\tUUID: \t\t\t-\n/);
        expect(r.stdout).toMatch(
          /\tSubvolume ID: \t\t5\n\tGeneration: \t\t0\n\tGen at creation: \t0\n\tParent ID: \t\t0\n\tTop level ID: \t\t0\n\tFlags: \t\t\t-\n$/,
        );
      }
    });

    test('subvolume show of a backup is printed up to its Snapshot(s) list (which can name a receive in staging)', () => {
      const head = `backups/laptop/home.1\n\tName: \t\t\thome.1\n\tUUID: \t\t\t${U.b1}\n\tSubvolume ID: \t\t258\n\tFlags: \t\t\treadonly\n`;
      fs.mkdirSync(`${sb.root}/laptop`, { recursive: true }); // (a path through a directory that does not exist runs nothing)
      setOutput(`${head}\tSnapshot(s):\n\t\t\t\t.btrbk-staging/rcv.x/home.2\n`);
      const r = runInSandbox(sb, `sudo -n btrfs subvolume show '${sb.root}/laptop/home.1'`);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(head);
    });

    test('subvolume show --rootid of anything outside the backup root is refused, and says nothing of it', () => {
      for (const p of ['.btrbk-staging/rcv.x/home.2', '.host-state', 'backups-old/x']) {
        setOutput(`${p}\n\tName: \t\t\tx\n\tUUID: \t\t\t${U.stg}\n`);
        const r = runInSandbox(sb, `sudo -n btrfs subvolume show --rootid=300 '${sb.root}'`);
        expect(r.status).toBe(255);
        expect(r.stdout).toBe('');
        expect(r.stderr).toBe(`rejected: btrfs subvolume show: not a subvolume of the backup root ${sb.root}\n`);
      }
    });
  });

  describe('diagnostics with the backup key', () => {
    test('boot-log prints the last 200 lines', () => {
      const log = path.join(sb.dir, 'boot.log');
      fs.writeFileSync(log, Array.from({ length: 300 }, (_, i) => `line ${i + 1}`).join('\n') + '\n');
      const r = runInSandbox({ ...sb, args: [...sb.args, '--boot-log', log] }, 'btrbk-diag boot-log');
      expect(r.status).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(200);
      expect(lines[0]).toBe('line 101');
      expect(lines[199]).toBe('line 300');
    });

    test.each([
      [
        'btrbk-diag boot-log',
        '--boot-log',
        /boot\.log does not exist on the backup host \(the boot script has not started yet/,
      ],
      ['btrbk-diag cloud-init-log', '--cloud-init-log', /cloud-init\.log does not exist on the backup host/],
    ])('%s with no log file: a clear message and exit 1', (command, option, message) => {
      const file = path.join(sb.dir, option === '--boot-log' ? 'boot.log' : 'cloud-init.log');
      const r = runInSandbox({ ...sb, args: [...sb.args, option, file] }, command);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(sb.sudoCalls()).toEqual([]);
    });

    test('mount: an unmounted volume is reported, a mounted one printed', () => {
      const none = runInSandbox(sb, 'btrbk-diag mount');
      expect(none.status).toBe(1);
      expect(none.stderr).toMatch(/nothing is mounted at .*backup_volume/);
      const proc = runInSandbox(
        { ...sb, args: [...sb.args, '--mount', '/proc', '--root', '/proc/backups'] },
        'btrbk-diag mount',
      );
      expect(proc.status).toBe(0);
      expect(proc.stdout).toMatch(/^\/proc\s+proc\s+proc\s/);
    });

    test('help lists the diagnostics', () => {
      const r = runInSandbox(sb, 'btrbk-diag help');
      expect(r.stdout.trim().split('\n')).toEqual(DIAGNOSTICS.map(([c]) => c).concat('btrbk-diag version'));
    });
  });
});

describe('a path through a directory that does not exist: nothing runs on it (the check and the command are two steps)', () => {
  // Between them the missing directory could appear as a backup the key has just received, holding a symlink the
  // command would follow (a race that sent another device's backup over real SSH: integration/devices)
  let sb: Sandbox;
  beforeEach(() => {
    sb = makeSandbox();
    fs.mkdirSync(path.join(sb.root, 'laptop'));
  });
  afterEach(() => sb.cleanup());

  test.each([
    ['send', (r: string) => `sudo -n btrfs send '${r}/laptop/R1/l/b1'`],
    ['send | compress', (r: string) => `sudo -n btrfs send '${r}/laptop/R1/l/b1' | zstd -c -3`],
    ['subvolume delete (selftest)', (r: string) => `sudo -n btrfs subvolume delete '${r}/selftest/R1/l/b1'`],
    ['subvolume show', (r: string) => `sudo -n btrfs subvolume show '${r}/laptop/R1/l'`],
    ['btrbk-manifest', (r: string) => `btrbk-manifest '${r}/laptop/R1/l/host'`],
  ])('%s: the gate says it is not there, exit 1, nothing run', (_name, command) => {
    const r = runInSandbox(sb, command(sb.root));
    expect(r).toMatchObject({ status: 1, stdout: '' });
    expect(r.stderr).toMatch(/^ERROR: cannot access '[^']+\/(R1|selftest)': No such file or directory\n$/);
    expect(sb.sudoCalls()).toEqual([]);
    expect(sb.trapped()).toEqual([]);
    expect(sb.logLines()).toEqual([
      expect.stringMatching(
        /^-t btrbk-ssh-gate -p auth\.info -- accepted, answered by the gate \(\S+ does not exist\)/,
      ),
    ]);
  });

  test('test -d and readlink -e|-f: the answers of a path that does not exist, nothing run', () => {
    const p = `${sb.root}/laptop/R1/l`;
    expect(runInSandbox(sb, `sudo -n test -d '${p}'`)).toMatchObject({ status: 1, stdout: '', stderr: '' });
    for (const mode of ['-e', '-f'])
      expect(runInSandbox(sb, `sudo -n readlink -v ${mode} '${p}'`)).toMatchObject({
        status: 1,
        stdout: '',
        stderr: `readlink: ${p}: No such file or directory\n`,
      });
    expect(sb.sudoCalls()).toEqual([]);
    // the real ones agree
    expect(spawnSync('test', ['-d', p]).status).toBe(1);
    const real = spawnSync('readlink', ['-v', '-f', p], { encoding: 'utf8' });
    expect({ status: real.status, stderr: real.stderr }).toEqual({
      status: 1,
      stderr: `readlink: ${p}: No such file or directory\n`,
    });
  });

  test('mkdir -p makes each missing directory itself, one at a time', () => {
    const r = runInSandbox(sb, `mkdir -p '${sb.root}/laptop/a/b/c'`);
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(fs.statSync(path.join(sb.root, 'laptop/a/b/c')).isDirectory()).toBe(true);
    // again: nothing to make, and the plain mkdir -p runs
    expect(runInSandbox(sb, `mkdir -p '${sb.root}/laptop/a/b/c'`)).toMatchObject({ status: 0, stderr: '' });
    expect(sb.trapped()).toEqual([]);
  });
});
