// `npm run test:cluster`: the production-shaped cluster's tests (scripts/cluster). Kept out of `npm test`
// (its files end in .cluster.ts, not .test.ts): they build the Temporal server from source the first
// time, start PostgreSQL, and take minutes.
/** @type {import('jest').Config} */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/tests/cluster'],
  testMatch: ['**/*.cluster.ts'],
  transform: { '^.+\\.(t|j)sx?$': ['@swc/jest'] },
  // One cluster at a time: the files share its ports.
  maxWorkers: 1,
  testTimeout: 10 * 60_000,
  verbose: true,
};
