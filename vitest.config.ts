import os from 'node:os';
import { defineConfig } from 'vitest/config';

/**
 * Four projects, all run by `npm test` (or one alone: `npx vitest run --project unit`):
 * - unit: no Redis, no hub; files run side by side, one per core and at least two (vitest's own
 *   default is cores - 1: one at a time on a 2-core machine).
 * - unit-alone: unit files that measure the event loop's gaps (a file beside them on a busy
 *   2-core machine stalls it past their bound), run one at a time after the others.
 * - integration: each file starts a private hub (API, workers, Redis keys under its own prefix);
 *   on a 2-core machine they run one file at a time, after the unit files.
 * - slow: the compiled build (npm ci + build into a temporary folder) and the browser tests
 *   (Chromium), one at a time, last.
 * The chaos run is not a vitest file: `npm run chaos` (CI runs it after `npm test`).
 */
const SLOW = ['test/integration/compiled.test.ts', 'test/browser/**/*.test.ts'];
const UNIT_ALONE = ['test/unit/format-vectors.test.ts'];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          exclude: UNIT_ALONE,
          maxWorkers: Math.max(2, os.availableParallelism()),
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'unit-alone',
          include: UNIT_ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: SLOW,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
      {
        extends: true,
        test: {
          name: 'slow',
          include: SLOW,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
