// check-ssh with injected fakes: every diagnosis it can make, from the key file to the gate.
import { CHECK_COMMANDS } from '../../scripts/lib/diagnose/check-commands.js';
import { checkKeyFile, checkSsh } from '../../scripts/lib/diagnose/check-ssh.js';
import { conn, rejected, healthy, fakes, connectError, byName } from '../support/diagnose-fakes.js';

describe('check-ssh', () => {
  it('all pass on a healthy host, through the gate', async () => {
    const { deps, calls } = fakes();
    const r = await checkSsh(conn(), deps);
    expect(r.filter((x: any) => !x.ok)).toEqual([]);
    expect(r.map((x: any) => x.name)).toEqual([
      'private key file permissions',
      'pinned host key on file',
      'TCP 203.0.113.7:22 reachable',
      'host key matches the pinned key',
      'key accepted for btrbk',
      'lands in the SSH gate (an allowed diagnostic runs)',
      'the gate refuses a forbidden command (`id`)',
      'an allowed btrbk command runs (btrfs subvolume list)',
    ]);
    expect(r[5].detail).toBe('btrbk-ssh-gate 1 root=/backup_volume/backups mount=/backup_volume');
    expect(calls).toEqual([
      'btrbk-diag version',
      'id',
      "sudo -n btrfs subvolume list -a -c -u -q -R '/backup_volume/backups'",
    ]);
  });

  it.each([
    [0o100644, 1000, /mode 0644.*UNPROTECTED PRIVATE KEY FILE/, /chmod 600/],
    [0o100640, 1000, /mode 0640/, /chmod 600/],
    [0o100600, 0, /owned by uid 0, not by you/, /chown 1000/],
  ])('key file mode %o owner %i: named, with the fix', (mode, owner, cause, next) => {
    const r = checkKeyFile('/keys/id_ed25519', {
      stat: () => ({ isFile: () => true, mode, uid: owner }) as any,
      uid: 1000,
    });
    expect(r.ok).toBe(false);
    expect(r.cause).toMatch(cause);
    expect(r.next).toMatch(next);
  });

  it('key file 0400 passes; a missing key file is named', () => {
    expect(checkKeyFile('/k', { stat: () => ({ isFile: () => true, mode: 0o100400, uid: 5 }) as any, uid: 5 }).ok).toBe(
      true,
    );
    const r = checkKeyFile('/k', {
      stat: () => {
        throw Object.assign(new Error('x'), { code: 'ENOENT' });
      },
    });
    expect(r).toMatchObject({ ok: false, cause: '/k does not exist' });
  });

  it('sshd stopped: TCP refused, and nothing else is attempted', async () => {
    const { deps, connects } = fakes(healthy(), { probe: async () => ({ ok: false, code: 'ECONNREFUSED', ms: 1 }) });
    const r = await checkSsh(conn(), deps);
    const t = byName(r, /^TCP/);
    expect(t.ok).toBe(false);
    expect(t.cause).toMatch(/nothing listens on port 22 \(sshd is stopped/);
    expect(t.next).toMatch(/check-logs/);
    expect(connects()).toBe(0);
  });

  it('no answer at all: points at the instance state and the security group', async () => {
    const { deps } = fakes(healthy(), { probe: async () => ({ ok: false, code: 'ETIMEDOUT', ms: 5000 }) });
    const t = byName(await checkSsh(conn(), deps), /^TCP/);
    expect(t.cause).toMatch(/ETIMEDOUT.*instance stopped/);
    expect(t.next).toMatch(/check-aws/);
  });

  it('host key mismatch is its own failure, and the key is not tried', async () => {
    const { deps } = fakes(healthy(), {
      connect: connectError(
        'host-key-mismatch',
        'the host key of 203.0.113.7 does NOT match the pinned key: not connecting',
        'the host was replaced',
      ),
    });
    const r = await checkSsh(conn(), deps);
    expect(r.at(-1)).toMatchObject({
      name: 'host key matches the pinned key',
      ok: false,
      cause: expect.stringMatching(/does NOT match the pinned key/),
    });
    expect(r.find((x: any) => /key accepted/.test(x.name))).toBeUndefined();
  });

  it('wrong key: the host key passes, authentication fails with the comparison to make', async () => {
    const { deps } = fakes(healthy(), {
      connect: connectError('auth', 'btrbk@203.0.113.7:22 refused the key /keys/id_ed25519'),
    });
    const r = await checkSsh(conn(), deps);
    expect(byName(r, /host key matches/).ok).toBe(true);
    expect(byName(r, /key accepted/)).toMatchObject({ ok: false, cause: expect.stringMatching(/refused the key/) });
  });

  it('no pinned key: stops before connecting', async () => {
    const { deps, connects } = fakes(healthy(), { readFile: () => '' });
    const r = await checkSsh(conn(), deps);
    expect(r.at(-1)).toMatchObject({ name: 'pinned host key on file', ok: false });
    expect(connects()).toBe(0);
  });

  it('a key that runs `id` is a shell, not the gate: a loud failure', async () => {
    const a = healthy();
    a.id = { code: 0, stdout: 'uid=998(btrbk) gid=998(btrbk) groups=998(btrbk)\n' };
    a[CHECK_COMMANDS.version] = { code: 127, stderr: 'bash: btrbk-diag: command not found\n' };
    const r = await checkSsh(conn(), fakes(a).deps);
    expect(byName(r, /forbidden/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/RAN on the host.*forced command is not in force/),
    });
    expect(byName(r, /lands in the SSH gate/)).toMatchObject({
      ok: false,
      next: expect.stringMatching(/forced command/),
    });
  });

  it('sudo not set up for btrbk: says so', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = { code: 1, stderr: 'sudo: a password is required\n' };
    expect(byName(await checkSsh(conn(), fakes(a).deps), /btrbk command/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/sudo refused/),
    });
  });

  it('the gate refuses the btrbk command: a grammar mismatch', async () => {
    const a = healthy();
    a[CHECK_COMMANDS.subvolumeList('/backup_volume/backups')] = rejected(
      'btrfs subvolume list: option not allowed: -R',
    );
    expect(byName(await checkSsh(conn(), fakes(a).deps), /btrbk command/)).toMatchObject({
      ok: false,
      cause: expect.stringMatching(/the gate refused/),
    });
  });
});
