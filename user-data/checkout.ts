// Where the checkout is, for a module that reads files of it (user-data/*.sh, the connection files): the nearest
// directory above the module that holds package.json. A module runs from its source (scripts/lib/core/x.ts) or from
// its compiled copy (.build/scripts/lib/core/x.js, scripts/load-library.mjs), one level deeper: .build/ holds no
// package.json, so both find the same directory.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout that holds the module at `moduleUrl` (its import.meta.url). */
export function checkoutRoot(moduleUrl: string): string {
  const start = path.dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${start}`);
  }
}
