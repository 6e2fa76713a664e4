// jest globalSetup for the integration project (jest loads it with Node's own ESM loader, so the TypeScript it
// needs comes through tsx): the test run's own local target, see test-target.ts.
import { tsImport } from 'tsx/esm/api';

export default async function globalSetup() {
  const { setUpTestTarget } = await tsImport('./test-target.ts', import.meta.url);
  await setUpTestTarget();
}
