import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // ORT sessions and SQLite files are heavy: two workers match the 2-core target box.
    pool: 'forks',
    maxWorkers: 2,
  },
});
