// The host's SSH identity kept on the data volume (user-data/host-identity.sh), run as the boot script runs it
// (`bash <(host_key_script) DIR ETC`: bash reads the installed text, without comments, from a pipe) on scratch
// directories: DIR stands for /backup_volume/.host-identity, ETC for /etc/ssh. Real ssh-keygen, no root needed
// (the files must belong to whoever runs it: root on the host).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { installedText } from '../../user-data/render.js';

const KEY = 'ssh_host_ed25519_key';
const SCRIPT = installedText('host-identity.sh');

let scratch: string;
let dir: string; // the kept identity
let etc: string; // sshd's
beforeEach(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'host-identity-'));
  dir = path.join(scratch, 'volume', '.host-identity');
  etc = path.join(scratch, 'etc-ssh');
  fs.mkdirSync(path.dirname(dir));
  fs.mkdirSync(etc);
});
afterEach(() => fs.rmSync(scratch, { recursive: true, force: true }));

function keep(etcDir = etc) {
  const r = spawnSync('bash', ['-c', 'bash <(printf \'%s\\n\' "$1") "$2" "$3"', 'boot-script', SCRIPT, dir, etcDir], {
    encoding: 'utf8',
    input: '',
  });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}
/** A new instance's host keys: what cloud-init (or ssh-keygen -A) makes on a fresh root disk. */
function newInstanceKey(etcDir = etc): string {
  for (const f of [KEY, `${KEY}.pub`]) fs.rmSync(path.join(etcDir, f), { force: true });
  expect(
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@new-instance', '-f', path.join(etcDir, KEY)])
      .status,
  ).toBe(0);
  return fingerprint(path.join(etcDir, `${KEY}.pub`));
}
const fingerprint = (pub: string) =>
  spawnSync('ssh-keygen', ['-l', '-f', pub], { encoding: 'utf8' }).stdout.split(' ')[1];
const mode = (p: string) => (fs.statSync(p).mode & 0o777).toString(8);
const read = (p: string) => fs.readFileSync(p);

test('a blank volume keeps the key sshd has (root-only: 0700 dir, 0600 key); a second run changes nothing', () => {
  const fp = newInstanceKey();
  const sshdKey = read(path.join(etc, KEY));
  const r = keep();
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(`kept the SSH host key in ${dir} (${fp}): a replaced instance answers with it`);
  expect(read(path.join(dir, KEY))).toEqual(sshdKey);
  expect(read(path.join(etc, KEY))).toEqual(sshdKey); // the current key is kept, not replaced (an existing host)
  expect([mode(dir), mode(path.join(dir, KEY)), mode(path.join(dir, `${KEY}.pub`))]).toEqual(['700', '600', '644']);
  expect(fingerprint(path.join(dir, `${KEY}.pub`))).toBe(fp);
  expect(fs.readdirSync(dir).sort()).toEqual([KEY, `${KEY}.pub`]); // no temporary files left

  const again = keep();
  expect(again).toMatchObject({ status: 0, stdout: '' });
  expect(again.stderr).toContain(`sshd already has the kept host key ${fp}`);
});

test('a new instance (another key in /etc/ssh) gets the kept key back; the kept one is untouched', () => {
  const fp = newInstanceKey();
  expect(keep().status).toBe(0);
  const kept = read(path.join(dir, KEY));
  const newFp = newInstanceKey();
  expect(newFp).not.toBe(fp);
  const r = keep();
  expect(r.status).toBe(0);
  expect(r.stdout).toBe(
    `restored the SSH host key kept in ${dir} (${fp}): a replaced instance answers with the pinned key`,
  );
  expect(read(path.join(etc, KEY))).toEqual(kept);
  expect(mode(path.join(etc, KEY))).toBe('600');
  expect(fingerprint(path.join(etc, `${KEY}.pub`))).toBe(fp);
  expect(read(path.join(dir, KEY))).toEqual(kept);
});

test('an image without an ed25519 host key: one is made and kept', () => {
  const r = keep();
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^made a new SSH host key and kept the SSH host key in .* \(SHA256:[A-Za-z0-9+/]{43}\)/);
  expect(read(path.join(dir, KEY))).toEqual(read(path.join(etc, KEY)));
  expect(fingerprint(path.join(etc, `${KEY}.pub`))).toMatch(/^SHA256:/);
});

test('a loosened directory or key is made root-only again', () => {
  newInstanceKey();
  keep();
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, KEY), 0o644);
  expect(keep().status).toBe(0);
  expect([mode(dir), mode(path.join(dir, KEY))]).toEqual(['700', '600']);
});

test('a damaged kept key stops loudly (what, cause, next) and replaces nothing', () => {
  newInstanceKey();
  keep();
  fs.writeFileSync(path.join(dir, KEY), 'not a key\n', { mode: 0o600 });
  newInstanceKey();
  const sshdKey = read(path.join(etc, KEY));
  const r = keep();
  expect(r.status).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(
    /ERROR: the kept SSH host key .* is not a readable ed25519 private key; the host's identity was NOT replaced\n {2}cause: .+\n {2}next: {2}restore it from a snapshot/,
  );
  expect(read(path.join(etc, KEY))).toEqual(sshdKey);
  expect(read(path.join(dir, KEY)).toString()).toBe('not a key\n');
});

test('a symlink where the kept identity belongs is refused', () => {
  newInstanceKey();
  fs.symlinkSync(etc, dir);
  const r = keep();
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/ERROR: .* is a symlink/);
  expect(fs.lstatSync(dir).isSymbolicLink()).toBe(true);
});
