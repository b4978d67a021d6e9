/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  globalSetup: '<rootDir>/tests/support/globalSetup.ts',
  // Each file that needs Temporal starts its own server; two cores cannot start many at once.
  maxWorkers: 2,
  testTimeout: 60_000,
};
