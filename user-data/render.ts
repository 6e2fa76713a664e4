// The one boot-script renderer: the CDKTF stack renders it into the instance's user data, the local target
// renders it into its container. Both get the same bytes for the same settings.
//
// bootstrap.sh is the boot script. Two kinds of marker lines in it are replaced:
//   `# @settings`           -> KEY='value' assignments for the per-deployment settings
//   `# @payload FILE FUNC`  -> a shell function FUNC that prints user-data/FILE (a quoted heredoc: no expansion),
//                              carried in the host payload (below), or inline in a self-contained script
// Comment-only lines are left out of everything the instance gets: of the boot script and of each host file
// (installedText() is a file as the host installs it); heredoc bodies are kept byte for byte, and so are the
// shebang, `# @` markers and shellcheck directives of the boot script. The commented source stays in user-data/.
//
// The host payload: the host's programs (the `# @payload` functions: the SSH gate, btrbk-receive, sudoers, the
// prune, ...) as one gzipped shell text. EC2 takes at most 16 KB of user data, so on AWS the user data is only the
// boot script's steps and the settings, and the payload is one private, encrypted S3 object that the instance reads
// with its own role (the role may read that one object and nothing else; the request is signed by curl's
// --aws-sigv4, no AWS CLI). The boot script carries the payload's sha256 and loads it only when it matches, so an
// object changed by anyone else stops the boot instead of running. The object's key holds the sha256: a changed
// payload is a new object and a new user data, so the instance is replaced (volume, address and host key kept).
// The local target gets the same bytes as a file (payload mode 'file').
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { VARIABLE_DEFAULTS } from '../constructs/variables.js';
import { checkoutRoot } from './checkout.js';
import { shellQuote } from './shell.js';

export const USER_DATA_DIR = path.join(checkoutRoot(import.meta.url), 'user-data');
export const BOOT_SCRIPT = path.join(USER_DATA_DIR, 'bootstrap.sh');

/** The settings a deployment varies. */
export type SettingKey =
  'volumeId' | 'backupSshPublicKey' | 'adminSshPublicKey' | 'appendOnly' | 'retention' | 'retentionMin' | 'devices';

/** The settings a deployment varies, and the shell variable each becomes. */
export const SETTINGS: Readonly<Record<SettingKey, string>> = Object.freeze({
  volumeId: 'BTRBK_VOLUME_ID',
  backupSshPublicKey: 'BTRBK_SSH_PUBLIC_KEY',
  adminSshPublicKey: 'BTRBK_ADMIN_SSH_PUBLIC_KEY',
  appendOnly: 'BTRBK_APPEND_ONLY',
  retention: 'BTRBK_RETENTION',
  retentionMin: 'BTRBK_RETENTION_MIN',
  devices: 'BTRBK_DEVICES',
});

/** What the host does when a setting is not given: the stack's variables' defaults (one table). */
export const SETTING_DEFAULTS: Readonly<Record<Exclude<SettingKey, 'volumeId' | 'backupSshPublicKey'>, string>> =
  Object.freeze({
    adminSshPublicKey: VARIABLE_DEFAULTS.admin_ssh_public_key,
    // the boot script reads the switch as the text the engine renders a bool as
    appendOnly: String(VARIABLE_DEFAULTS.append_only),
    retention: VARIABLE_DEFAULTS.retention,
    retentionMin: VARIABLE_DEFAULTS.retention_min,
    // no device keys: the legacy key alone, as before devices existed
    devices: '',
  });

/** The settings of one boot script; each may also be a cdktf token that resolves to the value. */
export interface BootScriptSettings {
  /** EBS volume id of the data volume (vol-...). */
  volumeId: string;
  /** The backup key (ssh-ed25519), installed for the btrbk user behind the gate. */
  backupSshPublicKey: string;
  /** Optional key for the image's default (admin) user; empty: the default user keeps no key. */
  adminSshPublicKey?: string;
  /** 'true' (default): the backup key cannot delete on the host and the host prunes by its own clock. */
  appendOnly?: string;
  /** The host's retention policy in btrbk's syntax (default '48h 14d 8w 12m'). */
  retention?: string;
  /** Every backup younger than this is kept (btrbk's preserve_min syntax, default '1d'). */
  retentionMin?: string;
  /**
   * A key per device: newline-separated `NAME ssh-ed25519 AAAA... [comment]` lines (default none). Each key reaches
   * only backups/NAME; backupSshPublicKey (the legacy key, which reaches every device's backups) may then be ''.
   */
  devices?: string;
}

/** Where the `# @payload` functions go. */
export type PayloadMode = 'inline' | 's3' | 'file';

export interface BootScriptOptions {
  /**
   * Escape the static text for a Terraform string template and insert the settings as given (they may be cdktf
   * tokens that resolve to references).
   */
  forTerraform?: boolean;
  /**
   * 'inline': in the script itself (default; one self-contained script); 's3': the S3 object payloadUrl, read with
   * the instance role's credentials (EC2); 'file': the gzip in payloadFile on the host (the local target).
   */
  payload?: PayloadMode;
  /** The payload's path on the host; with payload 'file' only. */
  payloadFile?: string;
  /** The payload object's https URL (virtual-hosted style) and its region; with payload 's3' only (may be tokens). */
  payloadUrl?: string;
  payloadRegion?: string;
  /**
   * With forTerraform, instead of settings.devices: a Terraform expression (without `${ }`) whose value is the
   * devices' lines. The engine renders BTRBK_DEVICES='...' from it, and only when it is not "": a deployment without
   * devices gets the user data it had. (No quote can be in the lines: the stack's rules on names and keys.)
   */
  devicesExpression?: string;
}

export interface HostPayload {
  /** The `# @payload` functions as one shell text (what the boot script sources). */
  text: string;
  sha256: string;
  /** its gzip (level 9, no name, no time: the same bytes every time) */
  gzip: Buffer;
  /** base64 of the gzip (what the stack uploads) */
  base64: string;
}

const HEREDOC_END = '__BTRBK_EMBEDDED_FILE_END__';

/** Escapes literal text for a Terraform string template: `${` and `%{` would otherwise be interpolated. */
export function escapeTerraformTemplate(text: string): string {
  return text.replace(/\$\{/g, () => '$${').replace(/%\{/g, () => '%%{');
}

const HEREDOC_START = /(?<!<)<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1(?![A-Za-z0-9_])/;

/**
 * The lines of a shell script (or a sudoers file, whose comments also start with #) without its comment-only
 * lines and without the indentation of the others (the bytes EC2's 16 KB and the payload's tags are spent on);
 * heredoc bodies are kept as they are. keep(line, index) keeps a comment line anyway.
 * Returns [line, inHeredoc] pairs.
 */
function withoutComments(
  text: string,
  keep: (line: string, index: number) => boolean = (_line, index) => index === 0,
): Array<[line: string, inHeredoc: boolean]> {
  let heredocEnd: string | null = null;
  const out: Array<[string, boolean]> = [];
  text.split('\n').forEach((line, index) => {
    if (heredocEnd !== null) {
      if (line.replace(/^\t+/, '') === heredocEnd) heredocEnd = null;
      out.push([line, true]);
      return;
    }
    const heredoc = HEREDOC_START.exec(line);
    if (heredoc && !line.trimStart().startsWith('#')) heredocEnd = heredoc[2];
    if (/^\s*#/.test(line) && !keep(line, index)) return;
    out.push([line.replace(/^[ \t]+/, ''), false]);
  });
  if (heredocEnd !== null) throw new Error(`heredoc ${heredocEnd} is never closed`);
  return out;
}

/** user-data/FILE as the instance installs it: without its comment-only lines (the shebang and shellcheck directives stay). */
export function installedText(file: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(file)) throw new Error(`bad file name: ${file}`);
  return withoutComments(
    fs.readFileSync(path.join(USER_DATA_DIR, file), 'utf8'),
    (line, index) => index === 0 || /^\s*# shellcheck /.test(line),
  )
    .map(([line]) => line)
    .join('\n');
}

function embed(file: string, func: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(func)) throw new Error(`bad @embed line: ${file} ${func}`);
  const body = installedText(file);
  if (body.split('\n').includes(HEREDOC_END)) throw new Error(`${file} contains the heredoc terminator`);
  return `${func}() {\ncat <<'${HEREDOC_END}'\n${body.endsWith('\n') ? body : `${body}\n`}${HEREDOC_END}\n}`;
}

/** The `# @payload FILE FUNC` lines of the boot script, in order. */
function payloadEntries(source: string): Array<[file: string, func: string]> {
  return source.split('\n').flatMap((line): Array<[string, string]> => {
    const m = /^# @payload (\S+) (\S+)$/.exec(line);
    return m ? [[m[1], m[2]]] : [];
  });
}

/** The host payload: the `# @payload` functions as one shell text, its sha256 and its gzip. */
export function renderHostPayload(): HostPayload {
  const text = `${payloadEntries(fs.readFileSync(BOOT_SCRIPT, 'utf8'))
    .map(([file, func]) => embed(file, func))
    .join('\n')}\n`;
  const sha256 = createHash('sha256').update(text).digest('hex');
  const gzip = gzipSync(text, { level: 9 });
  return { text, sha256, gzip, base64: gzip.toString('base64') };
}

/** Renders the boot script. */
export function renderBootScript(settings: BootScriptSettings, options: BootScriptOptions = {}): string {
  const {
    forTerraform = false,
    payload = 'inline',
    payloadFile = '',
    payloadUrl = '',
    payloadRegion = '',
    devicesExpression = '',
  } = options;
  if (devicesExpression && (!forTerraform || settings.devices !== undefined))
    throw new Error('devicesExpression goes with forTerraform, and instead of settings.devices');
  // the engine's BTRBK_DEVICES line and its newline, or nothing (it goes before the line after the settings)
  const devicesLine = devicesExpression
    ? `\${${devicesExpression} == "" ? "" : "${SETTINGS.devices}='\${${devicesExpression}}'\\n"}`
    : '';
  if (!['inline', 's3', 'file'].includes(payload)) throw new Error(`unknown payload mode ${payload}`);
  if ((payload === 'file') !== Boolean(payloadFile))
    throw new Error("payloadFile goes with payload 'file', and only with it");
  if ((payload === 's3') !== Boolean(payloadUrl && payloadRegion))
    throw new Error("payloadUrl and payloadRegion go with payload 's3', and only with it");
  const external = payload === 'inline' ? null : renderHostPayload();
  const source = fs.readFileSync(BOOT_SCRIPT, 'utf8');
  const esc = forTerraform ? escapeTerraformTemplate : (s: string) => s;
  const defaults: Partial<Record<SettingKey, string>> = SETTING_DEFAULTS;
  let sawSettings = false;
  // comment-only lines go; the shebang, marker lines and shellcheck directives stay
  const keep = (line: string, index: number) => index === 0 || /^(# @|\s*# shellcheck )/.test(line);
  const out = withoutComments(source, keep)
    .map(([line, inHeredoc]) => {
      if (inHeredoc) return esc(line);
      if (line === '# @settings') {
        sawSettings = true;
        return [
          ...(Object.entries(SETTINGS) as Array<[SettingKey, string]>)
            // no devices: no line (the user data of a single-key deployment stays as it was)
            .filter(([key]) => key !== 'devices' || Boolean(settings.devices))
            .map(([key, shellVar]) => `${shellVar}=${shellQuote(settings[key] ?? defaults[key] ?? '')}`),
          `${devicesLine}BTRBK_PAYLOAD_SHA256='${external?.sha256 ?? ''}'`,
          `BTRBK_PAYLOAD_FILE=${shellQuote(payloadFile)}`,
          `BTRBK_PAYLOAD_URL=${shellQuote(payloadUrl)}`,
          `BTRBK_PAYLOAD_REGION=${shellQuote(payloadRegion)}`,
        ].join('\n');
      }
      const p = /^# @payload (\S+) (\S+)$/.exec(line);
      if (p) return external ? null : esc(embed(p[1], p[2]));
      return esc(line);
    })
    .filter((line): line is string => line !== null);
  if (!sawSettings) throw new Error(`${BOOT_SCRIPT} has no '# @settings' line`);
  return out.join('\n');
}
