// Reading files that may be absent (a process's /proc entries, state files): null instead of an exception.
import fs from 'node:fs';

/** The file's text, or null when it cannot be read (absent, gone, not allowed). */
export function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
