// A realistic AWS connection (what readConnection returns for an aws_connection.env) for unit tests; override what
// a test varies.
import type { Connection } from '../../scripts/lib/core/connection.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

export const sampleConnection = (over: Partial<Connection> = {}): Connection => ({
  host: '203.0.113.7',
  port: 22,
  user: 'btrbk',
  keyFile: '/keys/id_ed25519',
  knownHostsFile: '/pins/known_hosts',
  targetUrl: `ssh://203.0.113.7${BACKUP_ROOT}/`,
  backupRoot: BACKUP_ROOT,
  instanceId: 'i-0123456789abcdef0',
  volumeId: 'vol-0123456789abcdef0',
  region: 'eu-central-1',
  ...over,
});
