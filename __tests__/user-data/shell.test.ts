// The one shell-quoting module (user-data/shell.ts): what a POSIX shell reads back is the value given.
import { spawnSync } from 'node:child_process';
import { shellQuote, shellWord } from '../../user-data/shell.js';

describe('shell quoting', () => {
  it("quotes like btrbk: paths always single-quoted, a quote as '\\''", () => {
    expect(shellQuote('/backup_volume/backups/x')).toBe("'/backup_volume/backups/x'");
    expect(shellQuote("a'b")).toBe("'a'\\''b'");
    expect(shellWord('/plain/path')).toBe('/plain/path');
    expect(shellWord('with space')).toBe("'with space'");
  });

  it('sh reads back exactly the value given', () => {
    for (const v of ["it's", 'a b', '$(id) `id` $HOME', '', 'back\\slash', '*?[x]', 'new\nline', "''"]) {
      for (const q of [shellQuote, shellWord]) {
        const r = spawnSync('sh', ['-c', `printf '%s' ${q(v)}`], { encoding: 'utf8' });
        expect(r.stdout).toBe(v);
      }
    }
  });
});
