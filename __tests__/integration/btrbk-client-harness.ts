// Test helper for the resilience and restore tests: a real btrbk 0.32.5 client on this machine, backing up to
// the test run's local target through the SSH gate. btrbk runs `ssh` from PATH; the wrapper here pins the target's
// host key (as setup's ssh_config block does), records each remote command, writes the pid of the ssh that
// carries a `btrfs receive` (so a test can cut that connection), and counts the bytes it carries.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from '../../scripts/lib/core/connection.js';
import { deleteRemote } from '../../scripts/lib/bench/bench-measure.js';
import { listBackups } from '../../scripts/lib/data/restore.js';
import { execInTarget } from '../../scripts/lib/local-target/local-target.js';
import { sshArgs } from '../../scripts/lib/remote/ssh.js';

export type Conn = Connection;

/** The product's own OpenSSH argv for the backup key (remote/ssh.ts sshArgs: the pinned host key, the key only, no
 * prompts), with no user ssh_config read; append '--' and the remote command. */
export function keySshArgs(conn: Connection): string[] {
  return sshArgs(conn, { connectTimeout: 10, extra: ['-F', '/dev/null'] });
}

/**
 * A master connection of CONN's key at SOCKET (ssh -M, as btrbk's own ssh_config has ControlMaster): a command given
 * `reuse` rides it as a session of its own, through the gate as the key's forced command, without a new key exchange
 * and sshd per command. `close` ends it (a revoked key must meet a fresh connection).
 */
export function masterConnection(conn: Connection, socket: string): { reuse: string[]; close: () => void } {
  const opts = ['-o', 'ControlMaster=yes', '-o', `ControlPath=${socket}`, '-N', '-f'];
  const r = spawnSync('ssh', ['-F', '/dev/null', ...sshArgs(conn, { extra: opts })], {
    stdio: 'ignore',
    timeout: 60_000,
  });
  if (r.status !== 0) throw new Error(`the master connection at ${socket} did not start (exit ${r.status})`);
  return {
    reuse: ['-o', 'ControlMaster=no', '-o', `ControlPath=${socket}`],
    close: () => {
      spawnSync('ssh', ['-F', '/dev/null', '-o', `ControlPath=${socket}`, '-O', 'exit', 'master'], {
        stdio: 'ignore',
      });
    },
  };
}

export function sh(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: Buffer | string; timeout?: number } = {},
) {
  const r = spawnSync(cmd, args, {
    env: opts.env ?? process.env,
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeout ?? 600_000,
    maxBuffer: 1 << 26,
  });
  return { status: r.status, out: r.stdout ?? '', err: r.stderr ?? '' };
}

export interface BtrbkClient {
  conf: string;
  env: NodeJS.ProcessEnv;
  receivePidFile: string;
  countFile: string;
  run(...args: string[]): { status: number | null; out: string; err: string };
  start(...args: string[]): { child: ReturnType<typeof spawn>; done: Promise<{ code: number | null; out: string }> };
  receivedBytes(): number;
}

/** A btrbk client in `work` for `volume`/`subvolume` (snapshot dir `snaps`) backing up to `targetDir`. */
export function btrbkClient(
  conn: Conn,
  work: string,
  {
    volume,
    subvolume = 'data',
    snapshotDir = 'snaps',
    targetDir,
    extra = [] as string[],
  }: { volume: string; subvolume?: string; snapshotDir?: string; targetDir: string; extra?: string[] },
): BtrbkClient {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  const receivePidFile = path.join(work, 'receive-ssh.pid');
  const countFile = path.join(work, 'receive-bytes');
  const sshOpts = `-F /dev/null -o 'UserKnownHostsFile=${conn.knownHostsFile}' -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes`;
  fs.writeFileSync(
    path.join(bin, 'ssh'),
    `#!/bin/bash
for last; do :; done
printf '%s\\n' "$last" >> '${path.join(work, 'ssh-commands.log')}'
case $last in
  *"btrfs receive"*)
    # the ssh that carries the stream runs in the background so that its own pid is known: killing it cuts
    # the connection exactly as a network failure would
    /usr/bin/ssh ${sshOpts} "$@" < <(tee >(wc -c > '${countFile}')) &
    echo $! > '${receivePidFile}'
    wait $!
    exit $? ;;
esac
exec /usr/bin/ssh ${sshOpts} "$@"
`,
    { mode: 0o755 },
  );
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
  const conf = path.join(work, 'btrbk.conf');
  fs.writeFileSync(
    conf,
    [
      `ssh_identity ${conn.keyFile}`,
      `ssh_user ${conn.user}`,
      'backend_remote btrfs-progs-sudo',
      'timestamp_format long-iso',
      'snapshot_preserve_min all',
      'target_preserve_min all',
      ...extra,
      `volume ${volume}`,
      `  snapshot_dir ${snapshotDir}`,
      `  subvolume ${subvolume}`,
      `    target send-receive ssh://${conn.host}:${conn.port}${targetDir}`,
      '',
    ].join('\n'),
  );
  return {
    conf,
    env,
    receivePidFile,
    countFile,
    run: (...args) => sh('btrbk', ['-c', conf, ...args], { env }),
    start: (...args) => {
      const child = spawn('btrbk', ['-c', conf, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const done = new Promise<{ code: number | null; out: string }>((resolve) =>
        child.on('close', (code) => resolve({ code, out })),
      );
      return { child, done };
    },
    receivedBytes: () => Number(fs.readFileSync(countFile, 'utf8').trim()),
  };
}

/** Waits until fn() is truthy (polling), or throws after timeoutMs. */
export async function waitUntil<T>(fn: () => T, timeoutMs: number, what: string): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs every cleanup step even when one fails (a target that went away must not leave mounts behind here). */
export async function runEach(steps: (() => unknown)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length) throw errors[0];
}

/** runEach's steps that remove a test's directory on the target: every backup in it, then the directory. */
export const removeRemoteDir = (conn: Connection, dir: string): (() => unknown)[] => [
  async () =>
    deleteRemote(
      conn,
      (await listBackups(conn, dir)).map((b) => b.path),
    ),
  () => execInTarget(['rmdir', dir]),
];
