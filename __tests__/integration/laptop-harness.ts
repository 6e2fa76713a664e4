// The integration tests' laptop: a laptop container of their own (own name, state dir and disk), backing up to the
// test run's local target (BTRBK_ENV_FILE, see test-target.ts), or to the one `opts.envFile` names (a test's own
// target, e.g. a device's connection file), removed with its disk after the file's tests.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import type { RunResult } from '../../scripts/lib/core/process.js';
import { BACKUP_ROOT } from '../../user-data/host-layout.js';
import {
  laptopDown,
  laptopExec,
  laptopPaths,
  laptopUp,
  type LaptopPaths,
} from '../../scripts/lib/local-target/laptop.js';
import { execInTarget, type LocalTargetPaths } from '../../scripts/lib/local-target/local-target.js';

export interface TestLaptop {
  paths: LaptopPaths;
  /** Runs argv as root inside the laptop, in the project directory. */
  exec: (argv: string[], opts?: { input?: string; timeout?: number }) => RunResult;
  /** Runs `scripts/backup.mjs ARGS` inside the laptop with trixie's node, as a person would (the connection file
   * the laptop holds is LAPTOP_ENV_FILE: install takes it as --env). */
  backup: (args: string[], opts?: { timeout?: number }) => RunResult;
  /** Brings the laptop up again (a fresh OS on the same disk, or on a new one after down({purge: true})). */
  up: () => Promise<void>;
  down: (opts?: { purge?: boolean }) => Promise<void>;
  /** Removes the laptop, its disk and its state dir, and its backups on the run's target (as root there: tests
   * tamper with them, and a tampered backup left behind is a half-received one to every later check-volume). */
  destroy: () => Promise<void>;
}

const log = (line: string) => process.stderr.write(`[test-laptop] ${line}\n`);

/** Which target the laptop reaches: the connection file copied in (default BTRBK_ENV_FILE) and that target's paths
 * (for destroy's clean-up of the laptop's backups there; default the run's target). */
export interface TestLaptopOptions {
  envFile?: string;
  target?: LocalTargetPaths;
}

/** A laptop of this test file's own, up and reaching the run's target (or the one `opts` names). */
export async function startTestLaptop(label: string, opts: TestLaptopOptions = {}): Promise<TestLaptop> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `btrbk-test-laptop-${label}-`));
  const paths = laptopPaths({
    ...process.env,
    BTRBK_LAPTOP_STATE: stateDir,
    BTRBK_LAPTOP_NAME: `lap-${label}-${path.basename(stateDir).split('-').pop()}`,
  });
  const up = async () => {
    try {
      await laptopUp({ paths, envFile: opts.envFile ?? process.env.BTRBK_ENV_FILE, onProgress: log });
    } catch (err) {
      process.stderr.write(`${err instanceof OperatorError ? err.format() : String(err)}\n`);
      throw err;
    }
  };
  await up();
  const exec: TestLaptop['exec'] = (argv, opts = {}) => laptopExec(argv, { paths, timeout: 10 * 60_000, ...opts });
  return {
    paths,
    exec,
    backup: (args, opts = {}) => exec(['node_modules/.bin/zx', 'scripts/backup.mjs', ...args], opts),
    up,
    down: async ({ purge = false } = {}) => {
      await laptopDown({ paths, purge, onProgress: log });
    },
    destroy: async () => {
      await laptopDown({ paths, purge: true, onProgress: log });
      fs.rmSync(stateDir, { recursive: true, force: true });
      const dir = path.posix.join(BACKUP_ROOT, paths.name);
      const r = execInTarget(
        [
          'sh',
          '-c',
          'test ! -e "$1" || { find "$1" -mindepth 1 -maxdepth 1 -exec btrfs subvolume delete -c {} + >/dev/null && rm -rf --one-file-system "$1"; }',
          'sh',
          dir,
        ],
        opts.target ? { paths: opts.target } : {},
      );
      if (r.status !== 0) throw new Error(`could not remove the laptop's backups ${dir} on the target: ${r.stderr}`);
    },
  };
}
