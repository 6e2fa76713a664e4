/** Jest runs in native ESM mode (package.json "type": "module"): TypeScript tests are compiled by ts-jest,
 * the zx scripts' libraries (.mjs) are imported as they are.
 *
 * Two projects:
 *  - unit: synth, engine (terraform/tofu validate + test with a mock provider), gate corpus, libraries.
 *  - integration: tests that need root, btrfs and the local target (file names say so). They share one local
 *    target of the run's own that globalSetup starts (and globalTeardown removes), and run serially on it
 *    (--runInBand). `npm test` (scripts/run-tests.mjs) runs them in lanes side by side, `--shard=I/N` each: a
 *    jest run of its own, so a target of its own; the lane sequencer splits the files by the time they take.
 */
const common = {
  // node's, with spawnSync carried out by a small server process: forks from a jest process of 200-500 MB cost
  // about 20 ms of CPU more each (__tests__/support/spawn-proxy-environment.cjs)
  testEnvironment: '<rootDir>/__tests__/support/spawn-proxy-environment.cjs',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFilesAfterEnv: ['<rootDir>/__tests__/setup.ts'],
  // the entry points' compiled copy of the library (scripts/load-library.mjs): the tests import the sources
  modulePathIgnorePatterns: ['<rootDir>/.build/'],
};

export default {
  // jest's 5 s default failed tests that run programs (the payload fetch against its stand-in, the heartbeat,
  // troubleshoot's --json) on a busy 2-core machine (a load of 15: 5 to 13 s); a test that hangs still fails, after
  // 30 s. (A global setting: jest-circus reads it from the top level, not from a project.)
  testTimeout: 30_000,
  reporters: ['default', '<rootDir>/__tests__/support/summary-reporter.cjs'],
  // --shard=I/N splits the integration files into lanes of about equal time (scripts/run-tests.mjs)
  testSequencer: '<rootDir>/__tests__/support/lane-sequencer.cjs',
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/integration/'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/__tests__/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/__tests__/integration/global-setup.mjs',
      globalTeardown: '<rootDir>/__tests__/integration/global-teardown.mjs',
    },
  ],
};
