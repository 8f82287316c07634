import { defineConfig } from 'vitest/config';

// The suite's hygiene checks alone, on fixtures that break them (test/support/test-hygiene.test.ts).
export default defineConfig({
  test: {
    root: new URL('.', import.meta.url).pathname,
    include: ['*.fixture.ts'],
    setupFiles: ['../leak-check.ts', '../model-server-check.ts'],
  },
});
