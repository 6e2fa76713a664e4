// Unit tests of the local target's connection file (scripts/lib/local-target/local-connection.ts).
import { localConnection } from '../../scripts/lib/local-target/local-connection.js';
import { formatConnection, parseEnvText, validateConnection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT } from '../../scripts/lib/core/host-layout.js';

describe('local target: names and formats', () => {
  test('the connection file is in the aws_connection.env format, with the port and the pinned known_hosts', () => {
    const conn = localConnection({
      port: 2299,
      sshKey: '/s/id_ed25519',
      knownHosts: '/s/known_hosts',
      volumeId: 'vol-0aaaaaaaaaaaaaaaa',
    });
    expect(validateConnection(conn)).toMatchObject({
      BTRBK_AWS_SSH_PORT: '2299',
      BTRBK_AWS_KNOWN_HOSTS: '/s/known_hosts',
    });
    expect(parseEnvText(formatConnection(conn))).toEqual(conn);
    expect(conn).toMatchObject({
      BTRBK_AWS_HOST: '127.0.0.1',
      BTRBK_AWS_USER: 'btrbk',
      BTRBK_AWS_PATH: BACKUP_ROOT,
      BTRBK_AWS_INSTANCE_ID: 'local-target',
      BTRBK_AWS_REGION: 'local',
    });
  });

  test("the target URL is in btrbk's grammar: ssh://HOST[:PORT]/PATH, no user part", () => {
    const { BTRBK_AWS_TARGET } = localConnection({
      port: 2222,
      sshKey: 'k',
      knownHosts: 'h',
      volumeId: 'vol-0aaaaaaaaaaaaaaaa',
    });
    expect(BTRBK_AWS_TARGET).toBe('ssh://127.0.0.1:2222/backup_volume/backups/');
    // btrbk 0.32 check_url(): ^(ssh://(hostname|ipv4|[ipv6])(:[1-9][0-9]*)?)/
    expect(BTRBK_AWS_TARGET).toMatch(/^ssh:\/\/[0-9.]+(:[1-9][0-9]*)?\//);
  });
});
