// jest globalTeardown for the integration project: removes the test run's own local target, see test-target.ts.
import { tsImport } from 'tsx/esm/api';

export default async function globalTeardown() {
  const { tearDownTestTarget } = await tsImport('./test-target.ts', import.meta.url);
  await tearDownTestTarget();
}
