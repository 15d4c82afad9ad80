import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once: the process tests run `node dist/server/main.cjs` and `node dist/client/main.cjs`.
    globalSetup: ['test/global-setup.ts'],
    pool: 'forks',
    // Process tests start a server, its worker threads and up to five clients; on a 2-core
    // machine one such test can take ~20 s when other test files run beside it.
    testTimeout: 90_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    coverage: {
      provider: 'v8',
      include: ['server/**/*.ts', 'client/**/*.ts', 'shared/**/*.ts', 'tools/**/*.ts'],
      reporter: ['text-summary', 'text'],
    },
  },
});
