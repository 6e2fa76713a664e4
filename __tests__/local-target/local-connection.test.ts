// Unit tests of the local target's connection file (scripts/lib/local-target/local-connection.ts).
import { localConnection } from '../../scripts/lib/local-target/local-connection.js';
import { connectionFromEnv, formatConnection, parseEnvText } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

describe('local target: names and formats', () => {
  test('the connection file is in the aws_connection.env format, with the port and the pinned known_hosts', () => {
    const conn = localConnection({
      port: 2299,
      sshKey: '/s/id_ed25519',
      knownHosts: '/s/known_hosts',
      volumeId: 'vol-0aaaaaaaaaaaaaaaa',
    });
    const env = parseEnvText(formatConnection(conn));
    expect(env).toMatchObject({ BTRBK_AWS_SSH_PORT: '2299', BTRBK_AWS_KNOWN_HOSTS: '/s/known_hosts' });
    expect(connectionFromEnv(env)).toEqual(conn);
    expect(conn).toMatchObject({
      host: '127.0.0.1',
      user: 'btrbk',
      backupRoot: BACKUP_ROOT,
      instanceId: 'local-target',
      region: 'local',
    });
  });

  test("the target URL is in btrbk's grammar: ssh://HOST[:PORT]/PATH, no user part", () => {
    const { targetUrl } = localConnection({
      port: 2222,
      sshKey: 'k',
      knownHosts: 'h',
      volumeId: 'vol-0aaaaaaaaaaaaaaaa',
    });
    expect(targetUrl).toBe('ssh://127.0.0.1:2222/backup_volume/backups/');
    // btrbk 0.32 check_url(): ^(ssh://(hostname|ipv4|[ipv6])(:[1-9][0-9]*)?)/
    expect(targetUrl).toMatch(/^ssh:\/\/[0-9.]+(:[1-9][0-9]*)?\//);
  });
});
