// check-ssh: the private key file, the pinned host key, the TCP port, the SSH handshake and key, and that the
// key lands in the SSH gate (an allowed diagnostic runs, `id` is refused, a btrbk command runs).
import fs from 'node:fs';
import process from 'node:process';
import { CONNECTION_KEYS, type Connection } from '../core/connection.js';
import type { TestResult } from '../core/report.js';
import { SUDOERS_PATH } from '../../../user-data/host-layout.js';
import { shellWord } from '../../../user-data/shell.js';
import { probeTcp, readPinnedKeys, sshParams, type ExecResult, type PinnedKey } from '../remote/ssh.js';
import { CHECK_COMMANDS, REJECTED, gateRefusalHint } from './check-commands.js';
import type { CheckDeps } from './deps.js';
import { errorFields, fail, fromError, messageOf, pass } from './results.js';
import { sshSession, type Session } from './session.js';

/** Private key file: exists, a regular file, mode 0600 or 0400 (no group/other bits), owned by this user. */
export function checkKeyFile(
  keyFile: string,
  { stat = (f) => fs.statSync(f), uid = process.geteuid?.() ?? 0 }: Pick<CheckDeps, 'stat' | 'uid'> = {},
): TestResult {
  const name = 'private key file permissions';
  let st;
  try {
    st = stat(keyFile);
  } catch (err) {
    const { code, message } = errorFields(err) as NodeJS.ErrnoException;
    return fail(
      name,
      `${keyFile} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? message})`}`,
      `point ${CONNECTION_KEYS.keyFile} in the connection file at the private key whose public half is ssh_public_key in terraform.tfvars`,
    );
  }
  if (!st.isFile())
    return fail(name, `${keyFile} is not a regular file`, `point ${CONNECTION_KEYS.keyFile} at the private key file`);
  const mode = st.mode & 0o777;
  const octal = mode.toString(8).padStart(4, '0');
  if (mode & 0o077) {
    return fail(
      name,
      `${keyFile} has mode ${octal}: group or others can read it, and OpenSSH refuses such a key ("UNPROTECTED PRIVATE KEY FILE"), so btrbk cannot use it`,
      `chmod 600 ${shellWord(keyFile)}`,
      `mode ${octal}`,
    );
  }
  if (st.uid !== uid) {
    return fail(
      name,
      `${keyFile} is owned by uid ${st.uid}, not by you (uid ${uid}); OpenSSH refuses a key that is not yours`,
      `chown ${uid} ${shellWord(keyFile)} (or run as the key's owner)`,
      `owner uid ${st.uid}`,
    );
  }
  if (!(mode & 0o400))
    return fail(name, `${keyFile} is not readable by its owner (mode ${octal})`, `chmod 600 ${shellWord(keyFile)}`);
  return pass(name, `mode ${octal}, owner uid ${st.uid}`);
}

export async function checkSsh(
  conn: Connection,
  deps: CheckDeps = {},
  session: Session = sshSession(conn, deps),
): Promise<TestResult[]> {
  const results: TestResult[] = [];
  const p = sshParams(conn);
  results.push(checkKeyFile(p.keyFile, deps));

  let pinned: PinnedKey[];
  try {
    pinned = readPinnedKeys(conn, deps);
    results.push(
      pass(
        'pinned host key on file',
        `${pinned.map((k) => `${k.keyType} ${k.fingerprint}`).join(', ')} in ${p.knownHostsFile}`,
      ),
    );
  } catch (err) {
    results.push(fromError('pinned host key on file', err));
    return results; // without a pin we do not connect at all
  }

  const probe = await (deps.probe ?? probeTcp)(p.host, p.port, { timeoutMs: deps.tcpTimeoutMs ?? 5000 });
  if (!probe.ok) {
    const refused = probe.code === 'ECONNREFUSED';
    results.push(
      fail(
        `TCP ${p.host}:${p.port} reachable`,
        refused
          ? `connection refused: nothing listens on port ${p.port} (sshd is stopped or crashed, or the boot script has not started it)`
          : `${probe.code}: the host does not answer (instance stopped or booting, security group does not allow your address, or the address changed)`,
        refused
          ? 'read the boot log: `npx zx scripts/troubleshoot.mjs check-logs` (falls back to the EC2 console output); restart the instance if sshd died'
          : '`npx zx scripts/troubleshoot.mjs check-aws` for the instance state; check allowed_ssh_cidrs in terraform.tfvars against your public IP',
        probe.code,
      ),
    );
    return results;
  }
  results.push(pass(`TCP ${p.host}:${p.port} reachable`, `${probe.ms} ms`));

  const s = await session.open();
  if (!s.ok) {
    const kind = s.error.kind;
    if (kind === 'host-key-mismatch') {
      results.push(fromError('host key matches the pinned key', s.error));
      return results;
    }
    if (kind === 'auth' || kind === 'key-file') {
      results.push(pass('host key matches the pinned key', pinned.map((k) => k.fingerprint).join(', ')));
      results.push(fromError(`key accepted for ${p.user}`, s.error));
      return results;
    }
    results.push(fromError('SSH handshake', s.error));
    return results;
  }
  results.push(
    pass('host key matches the pinned key', s.hostKey ? `${s.hostKey.keyType} ${s.hostKey.fingerprint}` : ''),
  );
  results.push(pass(`key accepted for ${p.user}`, p.keyFile));

  const exec = async (name: string, command: string, judge: (r: ExecResult) => TestResult) => {
    try {
      results.push(judge(await session.exec(command)));
    } catch (err) {
      results.push(fail(name, `${command}: ${messageOf(err)}`, 'run check-ssh again; if it repeats, read check-logs'));
    }
  };

  await exec('lands in the SSH gate (an allowed diagnostic runs)', CHECK_COMMANDS.version, (r) =>
    r.code === 0 && /^btrbk-ssh-gate /.test(r.stdout)
      ? pass('lands in the SSH gate (an allowed diagnostic runs)', r.stdout.trim())
      : fail(
          'lands in the SSH gate (an allowed diagnostic runs)',
          `\`${CHECK_COMMANDS.version}\` → exit ${r.code}: ${gateRefusalHint(r)}`,
          REJECTED.test(r.stderr)
            ? 'the gate on the host is older than these tools: re-provision (terraform apply replaces the instance, the data volume stays)'
            : 'the key is not bound to the gate (forced command): check ~btrbk/.ssh/authorized_keys on the host, and the boot log (check-logs)',
        ),
  );

  await exec('the gate refuses a forbidden command (`id`)', CHECK_COMMANDS.forbidden, (r) => {
    const name = 'the gate refuses a forbidden command (`id`)';
    if (r.code === 255 && REJECTED.test(r.stderr)) return pass(name, `exit 255, ${r.stderr.trim().split('\n')[0]}`);
    if (r.code === 0) {
      return fail(
        name,
        `\`id\` RAN on the host (${r.stdout.trim().slice(0, 80)}): this key opens a shell, the forced command is not in force`,
        'treat the key as able to do anything on the host: fix ~btrbk/.ssh/authorized_keys (restrict,command="…btrbk-ssh-gate") or re-provision, and rotate the key if it may have leaked',
      );
    }
    return fail(
      name,
      `\`id\` → exit ${r.code} without "rejected:" (${r.stderr.trim().slice(0, 120)})`,
      'the forced command is not the SSH gate this project installs: re-provision the host',
    );
  });

  const listCmd = CHECK_COMMANDS.subvolumeList(p.backupRoot);
  await exec('an allowed btrbk command runs (btrfs subvolume list)', listCmd, (r) => {
    const name = 'an allowed btrbk command runs (btrfs subvolume list)';
    if (r.code === 0)
      return pass(name, `${r.stdout.trim() ? r.stdout.trim().split('\n').length : 0} subvolume(s) listed`);
    if (REJECTED.test(r.stderr))
      return fail(
        name,
        `the gate refused \`${listCmd}\`: ${r.stderr.trim()}`,
        'the gate and these tools disagree on the command grammar: update the host (re-provision) or these tools',
      );
    if (/password is required|not allowed to execute|sudoers/i.test(r.stderr)) {
      return fail(
        name,
        `sudo refused btrfs for the btrbk user: ${r.stderr.trim()}`,
        `the boot script did not install ${SUDOERS_PATH}: read check-logs`,
      );
    }
    if (/not a btrfs|No such file|ERROR: cannot access/i.test(r.stderr)) {
      return fail(
        name,
        `btrfs cannot list ${p.backupRoot}: ${r.stderr.trim()}`,
        'the volume is probably not mounted: run check-volume',
      );
    }
    return fail(name, `exit ${r.code}: ${r.stderr.trim()}`, 'run check-volume and check-logs');
  });
  return results;
}
