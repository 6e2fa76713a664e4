// The commands the checks send through the gate, run through the real gate (user-data/btrbk-ssh-gate.sh) in
// --dry-run mode: every one is accepted, and `id` is refused.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/core/connection.js';
import { CHECK_COMMANDS } from '../../scripts/lib/diagnose/check-commands.js';

describe('the commands the checks send are the ones the real gate accepts', () => {
  const gate = path.join(REPO_ROOT, 'user-data', 'btrbk-ssh-gate.sh');
  const dry = (cmd: string) =>
    spawnSync('bash', [gate, '--dry-run', '--logger', '/bin/true'], {
      env: { SSH_ORIGINAL_COMMAND: cmd, PATH: process.env.PATH },
      encoding: 'utf8',
    });
  it.each(Object.entries(CHECK_COMMANDS).filter(([k]) => k !== 'forbidden'))('%s', (_k, v) => {
    const cmd = typeof v === 'function' ? v('/backup_volume/backups') : v;
    const r = dry(cmd);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it('and `id` is refused', () => {
    const r = dry(CHECK_COMMANDS.forbidden);
    expect(r.status).toBe(255);
    expect(r.stderr).toMatch(/^rejected: /);
  });
});
