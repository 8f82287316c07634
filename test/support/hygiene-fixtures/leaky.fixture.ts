import { spawn } from 'node:child_process';
import { test } from 'vitest';

// Run only by test/support/leak-check.test.ts: starts a process and never stops it.
test('starts a process and forgets it', () => {
  spawn('sleep', ['300'], { stdio: 'ignore' }).unref();
});
