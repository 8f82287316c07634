import { afterAll, afterEach } from 'vitest';
import { takeModelServerFailures } from './model-server.js';

/**
 * vitest setupFiles entry: a test fails when a scripted model server it uses
 * got a call the script did not foresee (or crashed), even where the test
 * forgot to look at `failures` — an agent that quietly made an extra or
 * malformed model call is a bug the test would otherwise pass over.
 */
function check(): void {
  const failures = takeModelServerFailures();
  if (failures.length > 0) throw new Error(`the scripted model server got calls its script did not foresee:\n${failures.map((f) => `  ${f}`).join('\n')}`);
}

afterEach(check);
afterAll(check);
