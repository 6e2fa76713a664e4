// A realistic AWS connection (the aws_connection.env keys) for unit tests; override what a test varies.
import { BACKUP_ROOT } from '../../scripts/lib/core/host-layout.js';

export const sampleConnection = (over: Record<string, string> = {}): Record<string, string> => ({
  BTRBK_AWS_HOST: '203.0.113.7',
  BTRBK_AWS_USER: 'btrbk',
  BTRBK_AWS_SSH_KEY: '/keys/id_ed25519',
  BTRBK_AWS_TARGET: `ssh://203.0.113.7${BACKUP_ROOT}/`,
  BTRBK_AWS_PATH: BACKUP_ROOT,
  BTRBK_AWS_INSTANCE_ID: 'i-0123456789abcdef0',
  BTRBK_AWS_VOLUME_ID: 'vol-0123456789abcdef0',
  BTRBK_AWS_REGION: 'eu-central-1',
  BTRBK_AWS_SSH_PORT: '22',
  BTRBK_AWS_KNOWN_HOSTS: '/pins/known_hosts',
  ...over,
});
