// The btrbk.conf setup prints must be accepted by btrbk itself: `btrbk -c FILE list config` parses the file and
// prints the source/target relations without touching any filesystem or host.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { btrbkTargetUrl, renderBtrbkConf, sshConfigBlock } from '../../scripts/lib/deploy/btrbk-conf.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';

const AWS_CONN = {
  host: '203.0.113.7',
  user: 'btrbk',
  keyFile: '/root/.ssh/btrbk_aws',
  targetUrl: `ssh://btrbk@203.0.113.7${BACKUP_ROOT}/`,
  backupRoot: BACKUP_ROOT,
  instanceId: 'i-0123456789abcdef0',
  volumeId: 'vol-0123456789abcdef0',
  region: 'us-west-1',
  port: 22,
  knownHostsFile: '/work/state/known_hosts',
};
const LOCAL_CONN = {
  ...AWS_CONN,
  host: '127.0.0.1',
  port: 2222,
  instanceId: 'local-btrbk-target',
};

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbkconf-'));
function btrbkListConfig(text: string) {
  const file = path.join(dir, `btrbk-${Math.random().toString(36).slice(2)}.conf`);
  fs.writeFileSync(file, text);
  return spawnSync('btrbk', ['-c', file, '--format=raw', 'list', 'config'], { encoding: 'utf8' });
}

describe('btrbk.conf snippet', () => {
  test('the target URL has no user part (btrbk refuses ssh://user@host) and carries a non-default port', () => {
    expect(btrbkTargetUrl(AWS_CONN)).toBe('ssh://203.0.113.7/backup_volume/backups');
    expect(btrbkTargetUrl(LOCAL_CONN)).toBe('ssh://127.0.0.1:2222/backup_volume/backups');
    expect(btrbkTargetUrl({ ...AWS_CONN, host: '2001:db8::7' })).toBe('ssh://[2001:db8::7]/backup_volume/backups');
  });

  test('holds the options a send-receive target behind the gate needs', () => {
    const text = renderBtrbkConf(AWS_CONN, { generatedAt: '2026-11-23' });
    expect(text).toMatch(/^ssh_identity\s+\/root\/.ssh\/btrbk_aws$/m);
    expect(text).toMatch(/^ssh_user\s+btrbk$/m);
    expect(text).toMatch(/^backend_remote\s+btrfs-progs-sudo$/m);
    expect(text).toMatch(/^stream_compress\s+zstd$/m);
    // issue 12: the cheapest receive on a t3a.nano host (docs/PERFORMANCE.md, the limits item)
    expect(text).toMatch(/^stream_compress_level\s+1$/m);
    expect(text).toMatch(/^ssh_cipher_spec\s+aes128-gcm@openssh\.com,chacha20-poly1305@openssh\.com$/m);
    // append-only host (the default): btrbk never deletes on the target
    expect(text).toMatch(/^target_preserve_min\s+all$/m);
    expect(text).not.toMatch(/^target_preserve\s/m);
    expect(text).toMatch(/UserKnownHostsFile \/work\/state\/known_hosts/);
    expect(text).toMatch(/StrictHostKeyChecking yes/);
    expect(text).toMatch(/noatime/);
    expect(text).toContain('i-0123456789abcdef0 in us-west-1, written by setup on 2026-11-23');
  });

  test('with append_only = false the client prunes the target itself', () => {
    const text = renderBtrbkConf(AWS_CONN, { appendOnly: false });
    expect(text).toMatch(/^target_preserve_min\s+1d$/m);
    expect(text).toMatch(/^target_preserve\s+20d 10w 6m$/m);
    const r = btrbkListConfig(text);
    expect(r.status).toBe(0);
  });

  test.each([
    ['AWS target', AWS_CONN, '203.0.113.7', ''],
    ['local target on port 2222', LOCAL_CONN, '127.0.0.1', '2222'],
  ])('btrbk itself parses the %s config and sees the target', (_name, conn, host, port) => {
    const r = btrbkListConfig(renderBtrbkConf(conn, { streamBuffer: '256m' }));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`target_host='${host}'`);
    expect(r.stdout).toContain("target_path='/backup_volume/backups'");
    expect(r.stdout).toContain("source_subvolume='/mnt/btr_pool/home'");
    expect(r.stdout).toMatch(/target_rsh='ssh .*-i .*\/root\/.ssh\/btrbk_aws.* btrbk@/);
    if (port) expect(r.stdout).toContain(`target_port='${port}'`);
  });

  test('btrbk rejects the user@ form, which is why the snippet does not use the raw target URL', () => {
    const text = renderBtrbkConf(AWS_CONN).replace('ssh://203.0.113.7/', 'ssh://btrbk@203.0.113.7/');
    const r = btrbkListConfig(text);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Only absolute files allowed for option "target"/);
  });

  test('the ssh config block is accepted by ssh -G and makes host key checking strict', () => {
    const cfg = path.join(dir, 'ssh_config');
    fs.writeFileSync(cfg, `${sshConfigBlock(LOCAL_CONN)}\n`);
    const out = execFileSync('ssh', ['-G', '-F', cfg, '-p', '2222', '127.0.0.1'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(out).toMatch(/^stricthostkeychecking true$/m);
    expect(out).toMatch(/^userknownhostsfile \/work\/state\/known_hosts$/m);
    expect(out).toMatch(/^identityfile \/root\/.ssh\/btrbk_aws$/m);
  });
});
