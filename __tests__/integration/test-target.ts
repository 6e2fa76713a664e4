// The integration tests' own local target: globalSetup brings one up under its own name, on a free port, with a
// fresh state directory and volume, so `npm test` never touches the target a person uses for the demo and never
// depends on what an earlier run left on one; globalTeardown removes it, volume and all.
//   BTRBK_ENV_FILE                 set to the test target's connection file (what every script reads)
//   BTRBK_LOCAL_TARGET_NAME/_STATE/_PORT/_ENV_FILE   set to the test target's, so the library and the entry points
//                                  the tests spawn all reach it
//   BTRBK_TEST_TARGET_OWNED=1      this run made the target (teardown removes it)
// BTRBK_KEEP_LOCAL_TARGET=1 keeps it after the tests (its state dir is printed); setting BTRBK_LOCAL_TARGET_STATE
// yourself runs the tests on that instance instead, as it is (it is then neither made nor removed).
// (global-setup.mjs and global-teardown.mjs load this file through tsx: jest loads those two with Node's own loader.)
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { ensurePackages } from '../../scripts/lib/core/system-deps.js';
import { OperatorError } from '../../scripts/lib/core/errors.js';
import { down, up, localTargetPaths, type UpResult } from '../../scripts/lib/local-target/local-target.js';
import { releasePaths } from '../../scripts/lib/local-target/paths.js';

/** A TCP port on 127.0.0.1 that nothing listens on now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** globalSetup: make (or reuse, when BTRBK_LOCAL_TARGET_STATE was set) the test run's target and point everything at it. */
export async function setUpTestTarget(): Promise<void> {
  const t0 = Date.now();
  const log = (line: string) => process.stderr.write(`[test-target] ${line}\n`);
  ensurePackages('test', { log });
  if (!process.env.BTRBK_LOCAL_TARGET_STATE) {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'btrbk-test-target-'));
    process.env.BTRBK_LOCAL_TARGET_STATE = stateDir;
    process.env.BTRBK_LOCAL_TARGET_NAME = `btrbk-test-${path.basename(stateDir).replace(/^btrbk-test-target-/, '')}`;
    process.env.BTRBK_LOCAL_TARGET_PORT = String(await freePort());
    process.env.BTRBK_LOCAL_TARGET_ENV_FILE = path.join(stateDir, 'connection.env');
    process.env.BTRBK_TEST_TARGET_OWNED = '1';
  }
  let result: UpResult;
  try {
    // BTRBK_TEST_TARGET_PLAIN_ROOTFS=1 (run-tests.mjs's first lane): the shared target boots the plain rootfs, on
    // which the boot script installs its packages, whatever BTRBK_LOCAL_TARGET_PRELOADED says for the lane's others
    const given = localTargetPaths();
    result = await up({
      onProgress: log,
      paths:
        process.env.BTRBK_TEST_TARGET_PLAIN_ROOTFS === '1'
          ? { ...given, ...releasePaths(given.cacheDir, given.release, false) }
          : given,
    });
  } catch (err) {
    // an OperatorError carries the three-part message and the boot log's tail: show it, not a stack
    process.stderr.write(
      `${err instanceof OperatorError ? err.format() : err instanceof Error ? err.stack : String(err)}\n`,
    );
    throw err;
  }
  const paths = localTargetPaths();
  process.env.BTRBK_ENV_FILE = paths.envFile;
  log(
    `${result.alreadyUp ? 'reusing' : 'up:'} ${paths.name} on 127.0.0.1:${result.port} (${((Date.now() - t0) / 1000).toFixed(1)} s); state ${paths.stateDir}`,
  );
}

/** globalTeardown: remove the test run's own target, volume and state dir too (unless BTRBK_KEEP_LOCAL_TARGET=1). */
export async function tearDownTestTarget(): Promise<void> {
  const log = (line: string) => process.stderr.write(`[test-target] ${line}\n`);
  const paths = localTargetPaths();
  if (process.env.BTRBK_TEST_TARGET_OWNED !== '1') {
    log(`${paths.name} was not made by this run: left as it is`);
    return;
  }
  if (process.env.BTRBK_KEEP_LOCAL_TARGET === '1') {
    log(
      `BTRBK_KEEP_LOCAL_TARGET=1: ${paths.name} keeps running; remove it with BTRBK_LOCAL_TARGET_STATE=${paths.stateDir} BTRBK_LOCAL_TARGET_NAME=${paths.name} npx zx scripts/local-target.mjs down --purge`,
    );
    return;
  }
  const r = await down({ purge: true, onProgress: log });
  fs.rmSync(paths.stateDir, { recursive: true, force: true });
  log(`${paths.name} removed in ${r.seconds.toFixed(1)} s (volume and state dir too)`);
}
