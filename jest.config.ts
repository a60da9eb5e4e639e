/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

/**
 * Coverage of lib/, and the floor below, on runs of the whole suite: `npm test`, `npx jest`, CI's
 * `npm test -- --json --outputFile=…`. A run that picks tests (a path or pattern, `-t`, `--onlyChanged`,
 * `--watch`, …) covers part of lib/ by construction, so it skips coverage; `--coverage` or
 * `--coverage=false` on the command line decides either way. `npx jest --coverageReporters=text` lists
 * every file.
 */
const PICKS_TESTS =
  /^(-t|--testNamePattern|--testPathPatterns?|--findRelatedTests|-o|--onlyChanged|--changedSince|--lastCommit|--shard|--watch|--watchAll)(=|$)/;
const wholeSuite = process.argv.slice(2).every((arg) => arg.startsWith('-') && !PICKS_TESTS.test(arg));

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // middy 6 and jose 6 ship ESM only: let ts-jest turn them into CommonJS like the project's own code.
  transform: { '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { allowJs: true } }] },
  transformIgnorePatterns: ['/node_modules/(?!(@middy|jose)/)'],
  setupFiles: ['<rootDir>/test/support/setup.ts'],
  testTimeout: 30_000,
  maxWorkers: 2,
  collectCoverage: wholeSuite,
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageReporters: ['text-summary'],
  // One global floor over all of lib/. No per-file entries: Jest takes the files a path or glob entry
  // matches out of the global figure, which would then no longer be lib/'s.
  coverageThreshold: { global: { branches: 90, statements: 95, functions: 95, lines: 95 } },
};

export default config;
