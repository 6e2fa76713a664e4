// The SSH gate as installed by the real boot script in the local target, reached through real sshd with the
// backup key: the whole attack corpus is refused and runs nothing, the key keeps working for the allowed
// commands, no pty / forwarding, no other user, and the installed sudoers answers like the unit test says.
import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { LOCAL_ENV_FILE, readConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT, HOST_IDENTITY_DIR, SELFTEST_DIR_NAME } from '../../user-data/host-layout.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { installedText } from '../../user-data/render.js';
import { ACCEPTED, ACCEPTED_WITH_ALLOW_DELETE, loadAttacks } from '../user-data/gate-harness.js';
import { masterConnection } from './btrbk-client-harness.js';

jest.setTimeout(10 * 60_000);

const MARKER = '/tmp/btrbk-gate-attack-marker';
const conn = readConnection(process.env.BTRBK_ENV_FILE ?? LOCAL_ENV_FILE);

function sshBase(user = conn.user): string[] {
  return [
    '-i',
    conn.keyFile,
    '-p',
    String(conn.port),
    '-o',
    `UserKnownHostsFile=${conn.knownHostsFile}`,
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'ConnectTimeout=10',
    '-F',
    '/dev/null',
    `${user}@${conn.host}`,
  ];
}

/** ssh with the backup key; `command` undefined = no command (an interactive login request). */
function ssh(
  command: string | undefined,
  { user, extra = [], input }: { user?: string; extra?: string[]; input?: string } = {},
) {
  const args = [...extra, ...sshBase(user)];
  if (command !== undefined) args.push('--', command);
  const r = spawnSync('ssh', args, { encoding: 'utf8', input: input ?? '', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function target(argv: string[]) {
  const r = execInTarget(argv);
  if (r.status !== 0) throw new Error(`in the target: ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Paths under /backup_volume that the corpus names: none of them may appear on the target. */
function namedPaths(commands: string[]): string[] {
  const found = new Set<string>();
  for (const c of commands)
    for (const m of c.matchAll(/\/backup_volume[A-Za-z0-9_@+.\/-]*/g)) found.add(m[0].replace(/\/+$/, ''));
  // the host's kept SSH identity exists on purpose: its key is checksummed in targetState instead
  return [...found].filter(
    (p) =>
      !['/backup_volume', '/backup_volume/backups'].includes(p) &&
      !/\/\.\.?(\/|$)/.test(p) &&
      p !== HOST_IDENTITY_DIR &&
      !p.startsWith(`${HOST_IDENTITY_DIR}/`),
  );
}

/** What an executed attack could have changed on the target (other tests may add their own dirs meanwhile). */
function targetState(paths: string[]) {
  return target([
    '/bin/sh',
    '-c',
    `sha256sum /home/btrbk/.ssh/authorized_keys /etc/passwd /etc/shadow /etc/group /etc/sudoers /etc/sudoers.d/btrbk /usr/local/sbin/btrbk-ssh-gate /etc/ssh/sshd_config.d/* ${HOST_IDENTITY_DIR}/*; ` +
      `stat -c '%U:%G %a %n' /backup_volume /backup_volume/backups /home/btrbk /home/btrbk/.ssh; ls -A /etc/sudoers.d /root /tmp; ` +
      'for p in "$@"; do test -e "$p" && echo "EXISTS $p"; done; true',
    'sh',
    MARKER,
    ...paths,
  ]);
}

const sha256 = (text: string) => crypto.createHash('sha256').update(text).digest('hex');
/** The sudoers fragment as an append-only host (the default) installs it: without the BTRBK_DELETE lines. */
const appendOnlySudoers = () =>
  installedText('sudoers-btrbk')
    .split('\n')
    .filter((l) => !l.includes('BTRBK_DELETE'))
    .join('\n');

describe('SSH gate on the local target (real sshd, real boot script)', () => {
  test("the target runs this checkout's gate and sudoers (else it is a stale target: down, then up)", () => {
    const out = target(['sha256sum', '/usr/local/sbin/btrbk-ssh-gate', '/etc/sudoers.d/btrbk']);
    expect(out).toContain(`${sha256(installedText('btrbk-ssh-gate.sh'))}  /usr/local/sbin/btrbk-ssh-gate`);
    expect(out).toContain(`${sha256(appendOnlySudoers())}  /etc/sudoers.d/btrbk`);
    expect(target(['stat', '-c', '%U:%G %a', '/usr/local/sbin/btrbk-ssh-gate']).trim()).toBe('root:root 755');
    expect(target(['stat', '-c', '%U:%G %a', '/etc/sudoers.d/btrbk']).trim()).toBe('root:root 440');
  });

  test('authorized_keys: restrict and the forced command on the only key line', () => {
    const lines = target(['cat', '/home/btrbk/.ssh/authorized_keys'])
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^restrict,command="\/usr\/local\/sbin\/btrbk-ssh-gate" ssh-ed25519 AAAA/);
  });

  test('the key works for the allowed commands before the attacks', () => {
    const r = ssh('btrbk-diag version');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('btrbk-ssh-gate 1 root=/backup_volume/backups mount=/backup_volume mode=append-only\n');
  });

  describe('the attack corpus through real SSH', () => {
    const attacks = loadAttacks();
    let before: string;
    let named: string[] = [];
    const results: Array<{ command: string; status: number | null; stderr: string; stdout: string }> = [];
    let seconds = 0;

    beforeAll(() => {
      target(['rm', '-f', MARKER]);
      named = namedPaths(attacks.map((a) => a.command));
      before = targetState(named);
      const t0 = Date.now();
      // one master connection: every attack is still its own session with its own forced command
      const master = masterConnection(conn, `/tmp/gate-mux-${process.pid}`);
      try {
        for (const a of attacks) results.push({ command: a.command, ...ssh(a.command, { extra: master.reuse }) });
      } finally {
        master.close();
      }
      seconds = (Date.now() - t0) / 1000;
      process.stderr.write(`[gate] ${attacks.length} attacks through ssh in ${seconds.toFixed(1)} s\n`);
    });

    test('every line is refused by the gate: exit 255 and a rejected: line (not an ssh failure)', () => {
      const notRefused = results.filter((r) => r.status !== 255 || !/^rejected: \S/m.test(r.stderr) || r.stdout !== '');
      expect(notRefused).toEqual([]);
      expect(results).toHaveLength(attacks.length);
    });

    test('nothing ran: no marker, no new file or subvolume, keys, users, sudoers and gate unchanged', () => {
      expect(named.length).toBeGreaterThan(20);
      expect(before).not.toMatch(/^EXISTS /m);
      const after = targetState(named);
      expect(after).not.toMatch(/^EXISTS /m);
      expect(after).toBe(before);
    });

    test('each refusal was logged by the gate', () => {
      const journal = execInTarget([
        'journalctl',
        '-t',
        'btrbk-ssh-gate',
        '--since',
        '-15min',
        '-o',
        'cat',
        '--no-pager',
      ]);
      expect(journal.status).toBe(0);
      const rejected = journal.stdout.split('\n').filter((l) => l.startsWith('rejected: '));
      expect(rejected.length).toBeGreaterThanOrEqual(attacks.length);
      expect(journal.stdout).toMatch(
        /rejected: command contains a control character or a non-ASCII byte; client=127\.0\.0\.1 command=\$'mkdir -p/,
      );
    });

    test('the key still works afterwards for the allowed commands', () => {
      const dir = `${BACKUP_ROOT}/${SELFTEST_DIR_NAME}/gate-test-${process.pid}`;
      try {
        expect(ssh(`mkdir -p '${dir}'`).status).toBe(0);
        const rl = ssh(`sudo -n readlink -v -e '${dir}/'`);
        expect(rl.stdout).toBe(`${dir}\n`);
        const list = ssh(`sudo -n btrfs subvolume list -a -c -u -q -R '/backup_volume'`);
        expect(list.status).toBe(0);
        expect(ssh(`sudo -n btrfs subvolume show --rootid=5 '/backup_volume'`).stdout).toMatch(/Subvolume ID:\s+5/);
        expect(ssh('cat /proc/self/mountinfo').stdout).toMatch(/ \/backup_volume \S+ .* - btrfs /);
        const usage = ssh('btrbk-diag usage');
        expect(usage.status).toBe(0);
        expect(usage.stdout).toMatch(/Device size:\s+\d+/);
        expect(ssh('btrbk-diag device-stats').stdout).toMatch(/write_io_errs\s+0/);
        expect(ssh('btrbk-diag mount').stdout).toMatch(/^\/backup_volume\s+\S+\s+btrfs\s/);
        expect(ssh('btrbk-diag boot-log').stdout).toMatch(/btrbk-backup-host: SUCCESS/);
      } finally {
        execInTarget(['rmdir', dir]);
      }
    });
  });

  test('an interactive login (no command) is refused', () => {
    const r = ssh(undefined);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/rejected: no command given/);
  });

  test('no pty: a requested terminal is refused', () => {
    const r = ssh('btrbk-diag version', { extra: ['-tt'] });
    expect(r.stderr).toMatch(/PTY allocation request failed/);
  });

  test('no port forwarding: local (-W) and remote (-R) forwards are refused', () => {
    const local = ssh(undefined, { extra: ['-W', '127.0.0.1:22'] });
    expect(local.status).toBe(255);
    expect(local.stderr).toMatch(/administratively prohibited|open failed/);
    const remote = ssh('btrbk-diag version', {
      extra: ['-o', 'ExitOnForwardFailure=yes', '-R', '127.0.0.1:0:127.0.0.1:22'],
    });
    expect(remote.status).toBe(255);
    expect(remote.stderr).toMatch(/remote port forwarding failed/);
  });

  test('sshd config for btrbk: no agent/X11/tcp forwarding, no tty, no user rc, public key only', () => {
    const cfg = target(['sshd', '-T', '-C', 'user=btrbk,host=localhost,addr=127.0.0.1']);
    for (const line of [
      'allowagentforwarding no',
      'allowtcpforwarding no',
      'x11forwarding no',
      'permittty no',
      'permituserrc no',
      'passwordauthentication no',
      'permitrootlogin no',
    ]) {
      expect(cfg.split('\n')).toContain(line);
    }
  });

  test('the backup key logs in as no other user of the target', () => {
    const users = target(['getent', 'passwd'])
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':'))
      .filter(
        ([name, , , , , , shell]) =>
          name !== 'btrbk' && (name === 'root' || !/(nologin|false|sync)$/.test(shell ?? '')),
      )
      .map(([name]) => name);
    expect(users).toContain('root');
    for (const user of [...users, 'ubuntu', 'admin', 'nobody']) {
      const r = ssh('id', { user });
      expect({ user, status: r.status, denied: /Permission denied \(publickey\)/.test(r.stderr) }).toEqual({
        user,
        status: 255,
        denied: true,
      });
    }
  });

  test("the installed sudoers, asked by the real sudo: the gate's commands yes, everything else no", () => {
    const ask = (cmd: string) => execInTarget(['sudo', '-n', '-l', '-U', 'btrbk', ...cmd.split(' ')]).status === 0;
    const sudoArgvs = ACCEPTED.flatMap(([, stages]) =>
      stages.filter((s) => s[0] === '/usr/bin/sudo').map((s) => s.slice(2).join(' ')),
    );
    expect(sudoArgvs.length).toBeGreaterThan(20);
    expect(sudoArgvs.filter((c) => !ask(c))).toEqual([]);
    for (const c of [
      '/usr/bin/btrfs device stats /backup_volume',
      '/usr/bin/btrfs filesystem usage -b /backup_volume',
      '/usr/local/sbin/btrbk-prune report',
    ]) {
      expect(ask(c)).toBe(true);
    }
    // append-only (the default): no delete, not even of one backup, and no btrfs receive without btrbk-receive
    const deletes = ACCEPTED_WITH_ALLOW_DELETE.flatMap(([, stages]) => stages.map((s) => s.slice(2).join(' ')));
    expect(deletes.length).toBe(3);
    expect(deletes.filter((c) => ask(c))).toEqual([]);
    const denied = [
      '/usr/bin/btrfs receive /backup_volume/backups/x',
      '/usr/local/sbin/btrbk-receive --clean-stale',
      '/usr/local/sbin/btrbk-receive --root / /backup_volume/backups/x',
      '/usr/local/sbin/btrbk-prune',
      '/usr/bin/btrfs receive /etc',
      '/usr/bin/btrfs receive /backup_volume/backups/x -f /etc/shadow',
      '/usr/bin/btrfs subvolume delete /backup_volume/backups',
      '/usr/bin/btrfs subvolume delete /backup_volume/backups/..',
      '/usr/bin/btrfs send -f /tmp/x /backup_volume/backups/x',
      '/usr/bin/btrfs property set /backup_volume/backups/x ro false',
      '/usr/bin/tail -n 200 /etc/shadow',
      '/usr/bin/tail -n 200 /var/log/btrbk-backup-host.log',
      '/bin/sh',
      '/usr/bin/id',
      '/usr/bin/mkdir -p /backup_volume/backups/x',
    ];
    expect(denied.filter((c) => ask(c))).toEqual([]);
  });
});
