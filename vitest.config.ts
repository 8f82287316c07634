import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Rebuilds a stale dist/ (process-level tests run it), then kills servers
    // and workers a failed or timed-out suite left running (by PID).
    globalSetup: ['test/support/fresh-build.ts', 'test/support/process-registry.ts'],
    // Fail a test file that leaves a process it started running, and a test
    // whose scripted model server got a call the script did not foresee.
    setupFiles: ['test/support/leak-check.ts', 'test/support/model-server-check.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Store suites spawn claimer processes and open real databases; keep the
    // two-core machines from oversubscribing.
    maxWorkers: 2,
    // .ci/run asks for a machine-readable report to print "N passed, N failed".
    reporters: process.env.OZ_VITEST_JSON ? ['default', 'json'] : ['default'],
    ...(process.env.OZ_VITEST_JSON ? { outputFile: { json: process.env.OZ_VITEST_JSON } } : {}),
  },
});
