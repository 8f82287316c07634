/**
 * A claimer in its own process, for the claim race test: opens the store
 * described by argv[2], says "ready", waits for "go" on stdin, then claims
 * (argv[4] runs per claim) until nothing is left, and prints the claimed ids
 * as one JSON line.
 */
import { createInterface } from 'node:readline';
import { openFromSpec, type StoreSpec } from './store-factories.js';

const [specJson, workerId, limitText] = process.argv.slice(2);
if (!specJson || !workerId || !limitText) {
  console.error('usage: claimer-process <spec-json> <worker-id> <limit>');
  process.exit(2);
}
const store = await openFromSpec(JSON.parse(specJson) as StoreSpec);
const lines = createInterface({ input: process.stdin });
process.stdout.write('ready\n');
for await (const line of lines) {
  if (line.trim() === 'go') break;
}
lines.close();
const claimed: string[] = [];
for (;;) {
  const runs = await store.claimRuns({ workerId, limit: Number(limitText), leaseTtlMs: 60_000, at: Date.now() });
  if (runs.length === 0) break;
  for (const run of runs) claimed.push(run.id);
}
await store.close();
process.stdout.write(`${JSON.stringify(claimed)}\n`);
