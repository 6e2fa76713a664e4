// The one boot-script renderer (user-data/render.ts) and the boot script's static shape. Running the script for
// real is the local target's job (__tests__/integration/boot.local-target.test.ts).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  BOOT_SCRIPT,
  USER_DATA_DIR,
  escapeTerraformTemplate,
  installedText,
  renderBootScript,
  renderHostPayload,
} from '../../user-data/render.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8m0Xh7y2mVJ3p0c8t8tq7s2l4z3T0j3a1cQ9bV0hX4 laptop';
const ADMIN = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPq0q7d9Qm3vG0lq1W0mJ3JgYcE3k8m5bF8xqS9kqLwZ admin';
const settings = { volumeId: 'vol-0123456789abcdef0', backupSshPublicKey: KEY };
const source = fs.readFileSync(BOOT_SCRIPT, 'utf8');
/** The host files the boot script carries: [user-data/FILE, the function that prints it, its marker]. */
const EMBEDDED: Array<[string, string, '@payload']> = [
  ['btrbk-ssh-gate.sh', 'gate_script', '@payload'],
  ['sudoers-btrbk', 'sudoers_fragment', '@payload'],
  ['btrbk-receive.sh', 'receive_script', '@payload'],
  ['btrbk-stream-check', 'stream_check_script', '@payload'],
  ['btrbk-prune.sh', 'prune_script', '@payload'],
  ['host-identity.sh', 'host_key_script', '@payload'],
  ['btrbk-layout.sh', 'layout_script', '@payload'],
  ['btrbk-scrub.sh', 'scrub_script', '@payload'],
  ['btrbk-manifest', 'manifest_script', '@payload'],
  ['btrbk-heartbeat.sh', 'heartbeat_script', '@payload'],
];
const S3 = {
  payload: 's3' as const,
  payloadUrl: 'https://btrbk-host-payload-x.s3.us-west-1.amazonaws.com/host-payload/0.sh.gz',
  payloadRegion: 'us-west-1',
};

/** The text of a shell function `name() { ... }` in the rendered script (the embedded heredoc ends it). */
function functionText(script: string, name: string): string {
  const start = script.indexOf(`${name}() {\n`);
  const terminator = '\n__BTRBK_EMBEDDED_FILE_END__\n}\n';
  const end = script.indexOf(terminator, start);
  expect(start).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(start);
  return script.slice(start, end + terminator.length);
}

describe('renderBootScript', () => {
  test('puts the settings where the # @settings line was, single-quoted', () => {
    const out = renderBootScript({ ...settings, adminSshPublicKey: ADMIN });
    expect(out).not.toContain('# @settings');
    expect(out).toContain(
      `\nBTRBK_VOLUME_ID='vol-0123456789abcdef0'\nBTRBK_SSH_PUBLIC_KEY='${KEY}'\nBTRBK_ADMIN_SSH_PUBLIC_KEY='${ADMIN}'\n`,
    );
    expect(renderBootScript(settings)).toContain("\nBTRBK_ADMIN_SSH_PUBLIC_KEY=''\n");
  });

  test('a quote or $(...) in a setting stays data: bash reads back exactly the value given', () => {
    const evil = "ssh-ed25519 AAAA x'$(touch /tmp/pwned)`id`";
    const out = renderBootScript({ ...settings, backupSshPublicKey: evil });
    const line = out.split('\n').find((l) => l.startsWith('BTRBK_SSH_PUBLIC_KEY='))!;
    const r = spawnSync('bash', ['-c', `${line}\nprintf '%s' "$BTRBK_SSH_PUBLIC_KEY"`], { encoding: 'utf8' });
    expect(r.stdout).toBe(evil);
  });

  test.each(EMBEDDED)(
    'embeds user-data/%s as the function %s that prints it without its comment lines (%s)',
    (file, func, marker) => {
      expect(source.split('\n')).toContain(`# ${marker} ${file} ${func}`);
      const out = renderBootScript(settings);
      const r = spawnSync('bash', ['-c', `${functionText(out, func)}\n${func}`], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const original = fs.readFileSync(path.join(USER_DATA_DIR, file), 'utf8');
      expect(r.stdout).toBe(installedText(file));
      // exactly the original's lines minus its comment-only ones (the shebang and shellcheck directives stay),
      // unindented (heredoc bodies keep theirs)
      const code = original.split('\n').filter((l, i) => i === 0 || !/^\s*#/.test(l) || /^\s*# shellcheck /.test(l));
      expect(r.stdout.split('\n').map((l) => l.trimStart())).toEqual(code.map((l) => l.trimStart()));
      expect(original.split('\n').length - code.length).toBeGreaterThan(3);
    },
  );

  test('the installed scripts still parse and are shellcheck-clean without their comments', () => {
    for (const [file] of EMBEDDED.filter(([f]) => f.endsWith('.sh'))) {
      const text = installedText(file);
      expect(text.startsWith('#!/bin/bash')).toBe(true);
      const sc = spawnSync('shellcheck', ['-s', 'bash', '-'], { input: text, encoding: 'utf8' });
      expect({ file, out: sc.stdout }).toEqual({ file, out: '' });
    }
  });

  test('the embedded functions are defined before the main steps call them', () => {
    const out = renderBootScript(settings);
    const main = out.indexOf('\ncheck_settings\n');
    for (const [, func] of EMBEDDED) expect(main).toBeGreaterThan(out.indexOf(`${func}() {`));
  });

  test('the rendered script parses (bash -n) and is shellcheck-clean', () => {
    const out = renderBootScript({ ...settings, adminSshPublicKey: ADMIN });
    expect(spawnSync('bash', ['-n'], { input: out, encoding: 'utf8' }).status).toBe(0);
    const sc = spawnSync('shellcheck', ['-s', 'bash', '-'], { input: out, encoding: 'utf8' });
    expect(sc.stdout).toBe('');
    expect(sc.status).toBe(0);
  });

  test('forTerraform escapes ${ and %{ and changes nothing else; settings go in as given (they may be tokens)', () => {
    const plain = renderBootScript(settings);
    const tf = renderBootScript({ ...settings, volumeId: '${aws_ebs_volume.data.id}' }, { forTerraform: true });
    expect(tf).toContain("BTRBK_VOLUME_ID='${aws_ebs_volume.data.id}'");
    expect(tf).not.toMatch(/(?<!\$)\$\{(?!aws_ebs_volume)/);
    const unescaped = tf
      .replace(/\$\$\{/g, '${')
      .replace(/%%\{/g, '%{')
      .replace('${aws_ebs_volume.data.id}', settings.volumeId);
    expect(unescaped).toBe(plain);
    expect(escapeTerraformTemplate('a ${b} %{c} $d')).toBe('a $${b} %%{c} $d');
  });

  test('gzipped, the script the stack renders (payload in S3) fits in EC2 user data (16384 bytes; base64gzip), with room to spare', () => {
    // Terraform's base64gzip compresses at Go's default level, about zlib's level 6
    const longComment = `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI${'A'.repeat(43)} ${'a-long-key-comment'.repeat(5)}`;
    const out = renderBootScript(
      { ...settings, volumeId: '${aws_ebs_volume.data.id}', backupSshPublicKey: longComment, adminSshPublicKey: ADMIN },
      { forTerraform: true, ...S3 },
    );
    const used = gzipSync(out, { level: 6 }).length;
    process.stderr.write(
      `user data: ${used} of 16384 bytes gzipped (${16384 - used} to spare); host payload: ${renderHostPayload().gzip.length} bytes gzipped in one S3 object\n`,
    );
    expect(used).toBeLessThan(12 * 1024); // a quarter of EC2's 16 KB stays free for what comes next
    // and everything inline would not fit: why the payload exists
    const inline = renderBootScript(
      { ...settings, volumeId: '${aws_ebs_volume.data.id}', adminSshPublicKey: ADMIN },
      { forTerraform: true },
    );
    expect(gzipSync(inline, { level: 6 }).length).toBeGreaterThan(16384);
  });

  test('the host payload: the @payload functions as one gzip, deterministic, pinned by sha256; the S3 script carries its URL and region', () => {
    const p = renderHostPayload();
    expect(gunzipSync(p.gzip).toString('utf8')).toBe(p.text);
    expect(Buffer.from(p.base64, 'base64')).toEqual(p.gzip);
    expect(createHash('sha256').update(p.text).digest('hex')).toBe(p.sha256);
    for (const [, func] of EMBEDDED) expect(p.text).toContain(functionText(p.text, func));
    expect(renderHostPayload()).toEqual(p); // deterministic: the same object on every synth
    const s3 = renderBootScript(settings, S3);
    expect(s3).toContain(
      `\nBTRBK_PAYLOAD_SHA256='${p.sha256}'\nBTRBK_PAYLOAD_FILE=''\nBTRBK_PAYLOAD_URL='${S3.payloadUrl}'\nBTRBK_PAYLOAD_REGION='us-west-1'\n`,
    );
    for (const [, func] of EMBEDDED) expect(s3).not.toContain(`${func}() {`);
    expect(renderBootScript(settings)).toContain("\nBTRBK_PAYLOAD_SHA256=''\n");
    expect(() => renderBootScript(settings, { payload: 'file' })).toThrow(/payloadFile/);
    expect(() => renderBootScript(settings, { payload: 's3' })).toThrow(/payloadUrl/);
    expect(() => renderBootScript(settings, { payloadUrl: S3.payloadUrl, payloadRegion: 'x' })).toThrow(/payloadUrl/);
  });
});

describe('the boot script source (user-data/bootstrap.sh)', () => {
  test('keeps exactly one # @settings line and one embed line per host file', () => {
    const lines = source.split('\n');
    expect(lines.filter((l) => l === '# @settings')).toHaveLength(1);
    expect(lines.filter((l) => /^# @(embed|payload) /.test(l))).toEqual(
      EMBEDDED.map(([file, func, marker]) => `# ${marker} ${file} ${func}`),
    );
  });

  test('is shellcheck -x clean as it is', () => {
    const sc = spawnSync('shellcheck', ['-x', BOOT_SCRIPT], { encoding: 'utf8' });
    expect(sc.stdout).toBe('');
    expect(sc.status).toBe(0);
  });

  test('the key pattern accepts exactly one ed25519 public key', () => {
    const re = /readonly ED25519_KEY_RE='([^']+)'/.exec(source)![1];
    const check = (key: string) => spawnSync('bash', ['-c', `re='${re}'; [[ $1 =~ $re ]]`, '_', key]).status;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'render-key-'));
    expect(
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'me@laptop', '-f', path.join(dir, 'k')]).status,
    ).toBe(0);
    expect(check(fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim())).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
    expect(check(KEY)).toBe(0);
    expect(check(KEY.split(' ').slice(0, 2).join(' '))).toBe(0);
    expect(check(`${KEY}\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8m0Xh7y2mVJ3p0c8t8tq7s2l4z3T0j3a1cQ9bV0hX4`)).not.toBe(
      0,
    );
    expect(check(`command="sh" ${KEY}`)).not.toBe(0);
    expect(check('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 x')).not.toBe(0);
    expect(check('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO8m0Xh7y2mVJ3p0c8t8')).not.toBe(0);
    expect(check('')).not.toBe(0);
  });
});

describe('renderBootScript leaves out the boot script’s own comments', () => {
  const out = renderBootScript(settings);
  const gate = fs.readFileSync(path.join(USER_DATA_DIR, 'btrbk-ssh-gate.sh'), 'utf8');

  test('no comment-only line of bootstrap.sh outside heredocs reaches the instance, but shellcheck directives do', () => {
    const ownComments = source
      .split('\n')
      .slice(1)
      .filter((l) => /^\s*#/.test(l) && !/^(# @|\s*# shellcheck )/.test(l));
    expect(ownComments.length).toBeGreaterThan(5);
    const outsideEmbedded = out
      .replace(/\n__BTRBK_EMBEDDED_FILE_END__\n/g, '\u0000')
      .split("<<'__BTRBK_EMBEDDED_FILE_END__'");
    const bootOnly = outsideEmbedded.map((part, i) => (i === 0 ? part : part.slice(part.indexOf('\u0000')))).join('');
    const kept = ownComments.filter(
      (c) => c.trim().length > 3 && (bootOnly.split('\n').includes(c) || bootOnly.split('\n').includes(c.trimStart())),
    );
    expect(kept.filter((c) => !isInHeredoc(c))).toEqual([]);
    for (const d of source.split('\n').filter((l) => /^\s*# shellcheck /.test(l))) expect(out).toContain(d.trimStart());
  });

  test('heredoc bodies keep their comment lines; the embedded gate keeps all of its code', () => {
    for (const c of source.split('\n').filter(isInHeredoc)) expect(out).toContain(c);
    expect(out).toContain(installedText('btrbk-ssh-gate.sh'));
    for (const line of gate.split('\n').filter((l) => l.trim() && !/^\s*#/.test(l)))
      expect(out).toContain(line.trimStart());
  });

  function isInHeredoc(line: string): boolean {
    let end: string | null = null;
    for (const l of source.split('\n')) {
      if (end !== null) {
        if (l.replace(/^\t+/, '') === end) end = null;
        else if (l === line) return true;
        continue;
      }
      const m = /(?<!<)<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1(?![A-Za-z0-9_])/.exec(l);
      if (m && !l.trimStart().startsWith('#')) end = m[2];
    }
    return false;
  }
});
