import { afterAll, test } from 'vitest';
import { startModelServer } from '../model-server.js';

// Run only by test/support/test-hygiene.test.ts: an unforeseen model call the test never looks at.
const server = await startModelServer({ protocol: 'anthropic', script: [] });
afterAll(() => server.close());

test('makes a call the script did not foresee and asserts nothing', async () => {
  await fetch(`${server.anthropicBaseUrl}/messages`, { method: 'POST', body: JSON.stringify({ model: 'm', messages: [] }) });
});
