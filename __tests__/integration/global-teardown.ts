// jest globalTeardown for the integration project: stops the local target if this run started it (a target that
// was already running stays up), never deleting the volume. BTRBK_KEEP_LOCAL_TARGET=1 keeps it up in any case.
import process from 'node:process';
import { down } from '../../scripts/lib/local-target/local-target.js';

export default async function globalTeardown() {
  const log = (line) => process.stderr.write(`[local-target] ${line}\n`);
  if (process.env.BTRBK_KEEP_LOCAL_TARGET === '1') {
    log('BTRBK_KEEP_LOCAL_TARGET=1: leaving the local target running');
    return;
  }
  if (process.env.BTRBK_LOCAL_TARGET_STARTED !== '1') {
    log('the local target was running before the tests: leaving it running');
    return;
  }
  const r = await down({ onProgress: log });
  log(`local target down in ${r.seconds.toFixed(1)} s (volume kept)`);
}
