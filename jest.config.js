/** Two tiers: fast unit specs beside the code, and e2e specs that run the whole app against real servers. */
const tsJest = ['ts-jest', { tsconfig: 'tsconfig.json' }];

module.exports = {
  // A guard against a hang, not a speed target: an e2e app start on a loaded two-core machine can pass
  // jest's 5 s default. (A global option: jest ignores it inside a project.)
  testTimeout: 60_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      roots: ['<rootDir>/src'],
      testMatch: ['**/*.spec.ts'],
      transform: { '^.+\\.ts$': tsJest },
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.e2e-spec.ts'],
      transform: { '^.+\\.ts$': tsJest },
      // Each file starts whole apps and servers; on a loaded machine Jest's 5 s default is too tight for that.
      testTimeout: 30_000,
      globalSetup: '<rootDir>/test/harness/global-setup.ts',
      globalTeardown: '<rootDir>/test/harness/global-teardown.ts',
    },
  ],
};
