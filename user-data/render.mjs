// The one boot-script renderer: the CDKTF stack renders it into the instance's user data, the local target
// renders it into its container. Both get the same bytes for the same settings.
//
// bootstrap.sh is the boot script. Two kinds of marker lines in it are replaced:
//   `# @settings`           -> KEY='value' assignments for the per-deployment settings
//   `# @embed FILE FUNC`    -> a shell function FUNC that prints user-data/FILE (a quoted heredoc: no expansion)
// The boot script's own comment-only lines are left out of the rendered text (EC2 takes at most 16 KB of user data,
// even gzipped); heredoc bodies and embedded files are kept byte for byte, so the installed gate keeps its comments.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const USER_DATA_DIR = path.dirname(fileURLToPath(import.meta.url));
export const BOOT_SCRIPT = path.join(USER_DATA_DIR, 'bootstrap.sh');

/** The settings a deployment varies, and the shell variable each becomes. */
export const SETTINGS = Object.freeze({
  volumeId: 'BTRBK_VOLUME_ID',
  backupSshPublicKey: 'BTRBK_SSH_PUBLIC_KEY',
  adminSshPublicKey: 'BTRBK_ADMIN_SSH_PUBLIC_KEY',
});

const HEREDOC_END = '__BTRBK_EMBEDDED_FILE_END__';

/** Escapes literal text for a Terraform string template: `${` and `%{` would otherwise be interpolated. */
export function escapeTerraformTemplate(text) {
  return text.replace(/\$\{/g, () => '$${').replace(/%\{/g, () => '%%{');
}

function shellSingleQuote(value) {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

function embed(file, func) {
  if (!/^[A-Za-z0-9._-]+$/.test(file) || !/^[a-z_][a-z0-9_]*$/.test(func)) throw new Error(`bad @embed line: ${file} ${func}`);
  const body = fs.readFileSync(path.join(USER_DATA_DIR, file), 'utf8');
  if (body.split('\n').includes(HEREDOC_END)) throw new Error(`${file} contains the heredoc terminator`);
  return `${func}() {\ncat <<'${HEREDOC_END}'\n${body.endsWith('\n') ? body : `${body}\n`}${HEREDOC_END}\n}`;
}

/**
 * Renders the boot script.
 * @param {{volumeId: string, backupSshPublicKey: string, adminSshPublicKey?: string}} settings
 * @param {{forTerraform?: boolean}} [options] forTerraform: escape the static text for a Terraform string
 *   template and insert the settings as given (they may be cdktf tokens that resolve to references).
 */
export function renderBootScript(settings, options = {}) {
  const { forTerraform = false } = options;
  const source = fs.readFileSync(BOOT_SCRIPT, 'utf8');
  const esc = forTerraform ? escapeTerraformTemplate : (s) => s;
  let sawSettings = false;
  let heredocEnd = null; // inside a heredoc of bootstrap.sh: its terminator
  const out = source.split('\n').flatMap((line, index) => {
    if (heredocEnd !== null) {
      if (line.replace(/^\t+/, '') === heredocEnd) heredocEnd = null;
      return [esc(line)];
    }
    const heredoc = /(?<!<)<<-?\s*(['"]?)([A-Za-z_][A-Za-z0-9_]*)\1(?![A-Za-z0-9_])/.exec(line);
    if (heredoc && !line.trimStart().startsWith('#')) {
      heredocEnd = heredoc[2];
      return [esc(line)];
    }
    // comment-only lines go; the shebang, marker lines and shellcheck directives stay
    if (index > 0 && /^\s*#/.test(line) && !/^(# @|\s*# shellcheck )/.test(line)) return [];
    if (line === '# @settings') {
      sawSettings = true;
      return [
        Object.entries(SETTINGS)
          .map(([key, shellVar]) => `${shellVar}=${shellSingleQuote(settings[key] ?? '')}`)
          .join('\n'),
      ];
    }
    const m = /^# @embed (\S+) (\S+)$/.exec(line);
    if (m) return [esc(embed(m[1], m[2]))];
    return [esc(line)];
  });
  if (!sawSettings) throw new Error(`${BOOT_SCRIPT} has no '# @settings' line`);
  if (heredocEnd !== null) throw new Error(`${BOOT_SCRIPT}: heredoc ${heredocEnd} is never closed`);
  return out.join('\n');
}
