// The lock that serializes up and down of one local target across processes: an exclusive file holding its
// owner's pid, taken over when that process is gone.
import fs from 'node:fs';
import process from 'node:process';
import { OperatorError } from '../core/errors.js';
import type { ContainerPaths } from './paths.js';
import { pidAlive, readText, sleep } from './system.js';

/** Serializes up/down across processes with an exclusive lock file holding the owner's pid. */
export async function withLock<T>(
  paths: ContainerPaths,
  fn: () => Promise<T>,
  { waitMs = 15 * 60 * 1000 }: { waitMs?: number } = {},
): Promise<T> {
  fs.mkdirSync(paths.stateDir, { recursive: true, mode: 0o700 });
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      fs.writeFileSync(paths.lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((readText(paths.lockFile) ?? '').trim());
      if (!pidAlive(owner)) {
        fs.rmSync(paths.lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new OperatorError(`the local target is busy (process ${owner} holds ${paths.lockFile})`, {
          next: 'wait for the other up/down to finish, or stop that process',
        });
      }
      await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    if ((readText(paths.lockFile) ?? '').trim() === String(process.pid)) fs.rmSync(paths.lockFile, { force: true });
  }
}
