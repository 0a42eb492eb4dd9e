import { defineConfig } from 'vitest/config';

/**
 * Tests that time things, hold sockets open, or outlast a broker outage: they take most of
 * the wall time and are the ones shared cores disturb, so they run as their own project
 * (`npm run test:slow`); `npm test` and CI run both projects.
 */
const SLOW = [
  'test/api/slow-clients.test.ts',
  'test/api/hostile-bodies.test.ts',
  'test/api/swap-load.test.ts',
  'test/agent/serve-swap-load.test.ts',
  'test/agent/drift-e2e.test.ts',
  'test/agent/serve-detector.test.ts',
  'test/fleet/outage.test.ts',
  'test/tour/readme-tour.test.ts',
  'test/fleet/fleet-calibration.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // ORT sessions and SQLite files are heavy: two workers match the 2-core target box.
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: SLOW } },
      { extends: true, test: { name: 'slow', include: SLOW } },
    ],
  },
});
