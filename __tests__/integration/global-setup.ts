// jest globalSetup for the integration project: brings the shared local target up once (a running, healthy
// target is reused as it is) and points every test at its connection file.
//   BTRBK_ENV_FILE                 set to local_connection.env (what every script reads)
//   BTRBK_LOCAL_TARGET_STARTED=1   set when this run started the target (then global-teardown stops it)
// BTRBK_KEEP_LOCAL_TARGET=1 keeps it running after the tests; BTRBK_LOCAL_TARGET_STATE / _PORT / _NAME /
// _ENV_FILE choose another instance (see docs/LOCAL-TARGET.md).
import process from 'node:process';
import { ensurePackages } from '../../scripts/lib/core/system-deps.js';
import { up, localTargetPaths } from '../../scripts/lib/local-target/local-target.js';

export default async function globalSetup() {
  const t0 = Date.now();
  const log = (line) => process.stderr.write(`[local-target] ${line}\n`);
  ensurePackages('test', { log });
  let result;
  try {
    result = await up({ onProgress: log });
  } catch (err) {
    // an OperatorError carries the three-part message and the boot log's tail: show it, not a stack
    process.stderr.write(`${typeof err.format === 'function' ? err.format() : err.stack}\n`);
    throw err;
  }
  const paths = localTargetPaths();
  process.env.BTRBK_ENV_FILE = paths.envFile;
  process.env.BTRBK_LOCAL_TARGET_STARTED = result.alreadyUp ? '' : '1';
  log(`${result.alreadyUp ? 'reusing the running local target' : 'local target up'} on 127.0.0.1:${result.port} (${((Date.now() - t0) / 1000).toFixed(1)} s); env file ${paths.envFile}`);
}
