// How this machine reaches the local target: sshd on a loopback port, its banner, and local_connection.env (the
// aws_connection.env format) that every script reads.
import net from 'node:net';
import { writeConnection, type Connection } from '../core/connection.js';
import { BACKUP_ROOT, BACKUP_USER } from '../../../user-data/host-layout.js';
import type { LocalTargetPaths, UpState } from './paths.js';

export const DEFAULT_PORT = 2222;

/**
 * The connection object for local_connection.env. btrbk's URL grammar is ssh://HOST[:PORT]/PATH (no user part:
 * the user is btrbk's ssh_user option), so the target URL carries the port and not the user.
 */
export function localConnection({
  port,
  sshKey,
  knownHosts,
  volumeId,
}: {
  port: number;
  sshKey: string;
  knownHosts: string;
  volumeId: string;
}): Connection {
  return {
    host: '127.0.0.1',
    port,
    user: BACKUP_USER,
    keyFile: sshKey,
    knownHostsFile: knownHosts,
    targetUrl: `ssh://127.0.0.1:${port}${BACKUP_ROOT}/`,
    backupRoot: BACKUP_ROOT,
    instanceId: 'local-target',
    volumeId,
    region: 'local',
  };
}

/** Writes the target's local_connection.env. */
export function writeEnvFile(paths: LocalTargetPaths, state: UpState): void {
  writeConnection(
    paths.envFile,
    localConnection({ port: state.port, sshKey: paths.sshKey, knownHosts: paths.knownHosts, volumeId: state.volumeId }),
    'Written by scripts/local-target.mjs up: the local target (a container on this machine), in the aws_connection.env format.',
  );
}

/** True when nothing listens on 127.0.0.1:port. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Resolves with the SSH banner sshd sends on host:port, or null after timeoutMs. */
export async function sshBanner(
  port: number,
  { timeoutMs = 2000 }: { timeoutMs?: number } = {},
): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = '';
    const done = (v: string | null) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => done(null));
    sock.on('data', (d) => {
      data += d.toString();
      if (data.includes('\n')) done(data.split('\n')[0].trim());
    });
    sock.on('error', () => done(null));
    sock.on('close', () => done(data.startsWith('SSH-') ? data.trim() : null));
  });
}
