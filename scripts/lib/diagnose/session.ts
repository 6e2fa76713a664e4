// The SSH session the checks of a run share: connected lazily, once, with a timeout per gate command.
import { type Connection } from '../core/connection.js';
import { connectSsh, type ExecResult, type SshConnectError, type SshConnection } from '../remote/ssh.js';
import type { CheckDeps } from './deps.js';

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
    promise.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });

/** An opened session: the SSH connection, or why it could not be made (connectSsh's error, with its `kind`). */
export type SessionState = ({ ok: true } & SshConnection) | { ok: false; error: SshConnectError };

/** The SSH session the checks of a run share (see sshSession). */
export interface Session {
  /** Connects on the first call; later calls resolve the same outcome. */
  open(): Promise<SessionState>;
  /** Runs a command through the gate. Rejects when the session could not open or the command timed out. */
  exec(command: string, opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** Closes the connection, if one was made. */
  close(): void;
}

/**
 * One SSH session shared by the checks of a run: connected lazily, once; a failed connection is remembered
 * (its OperatorError with `.kind`) so every check that needs it can say why it could not run.
 */
export function sshSession(conn: Connection, deps: CheckDeps = {}): Session {
  const connect = deps.connect ?? ((c: Connection) => connectSsh(c));
  let opened: Promise<SessionState> | null = null;
  const session: Session = {
    async open() {
      if (!opened)
        opened = connect(conn).then(
          (s): SessionState => ({ ok: true, ...s }),
          (error: SshConnectError): SessionState => ({ ok: false, error }),
        );
      return opened;
    },
    async exec(command, { timeoutMs = deps.execTimeoutMs ?? 30000 } = {}) {
      const s = await session.open();
      if (!s.ok) throw s.error;
      const r = await withTimeout(s.ssh.execCommand(command), timeoutMs, command);
      return { code: r.code, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    close() {
      if (opened) opened.then((s) => s.ok && s.ssh.dispose());
    },
  };
  return session;
}
