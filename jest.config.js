// Three projects, one run: `npm test` runs them all (one JSON results file for CI), and
// `npm run test:unit` / `npm run test:workflows` select one with --selectProjects.
//   unit       pure logic and adapters against in-process emulators: no Temporal server, no global setup
//   workflows  workflow decisions on the Java time-skipping server with stub activities (tests/workflows)
//   e2e        every other test file: a Temporal server, the emulators and the service over HTTP
// A file that starts no Temporal server belongs in UNIT_FILES; one that is not listed runs with e2e.
const transform = { '^.+\\.(t|j)sx?$': ['@swc/jest'] };

const UNIT_FILES = [
  'activityTimeouts',
  'callBudget',
  'bitrix24',
  'bitrix24Batch',
  'config',
  'customerText',
  'dashboardCharts',
  'eagerHeadroom',
  'http',
  'keepAlive',
  'leadBoard',
  'memorySettings',
  'phone',
  'providers',
  'rateLimiter',
  'scenario',
  'securityConfig',
  'sharedLimit',
  'telegramCallbackData',
  'telegramOutbox',
  'timezone',
  'wakeSlots',
  'workingHours',
].map((name) => `<rootDir>/tests/${name}.test.ts`);

/** @type {import('jest').Config} */
module.exports = {
  // Each file that needs Temporal starts its own server; two cores cannot start many at once.
  maxWorkers: 2,
  testTimeout: 60_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      testMatch: UNIT_FILES,
      testTimeout: 60_000,
    },
    {
      displayName: 'workflows',
      testEnvironment: 'node',
      transform,
      testMatch: ['<rootDir>/tests/workflows/**/*.test.ts'],
      globalSetup: '<rootDir>/tests/workflows/globalSetup.ts',
      testTimeout: 60_000,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/tests'],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/tests/workflows/', ...UNIT_FILES],
      globalSetup: '<rootDir>/tests/support/globalSetup.ts',
      testTimeout: 60_000,
    },
  ],
};
