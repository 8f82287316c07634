import { describe, expect, it } from 'vitest';
import type { WorkerEvent } from '../../src/core/worker-protocol.js';
import { Redactor } from '../../src/secrets/redactor.js';
import { OutputBudget, OutputCollector } from '../../src/worker/output-collector.js';

const SECRET = 'sk-SUPERSECRETVALUE-123456';

function collector(storedMax = 1 << 20): { out: OutputCollector; events: WorkerEvent[]; text: () => string } {
  const events: WorkerEvent[] = [];
  const out = new OutputCollector((e) => events.push(e), new OutputBudget(storedMax, 1 << 30, () => {}), new Redactor([SECRET]));
  const text = (): string =>
    events
      .filter((e) => e.type === 'output')
      .map((e) => String(e.data.text))
      .join('');
  return { out, events, text };
}

/** Output leaves the worker redacted, however it is cut into chunks and events. */
describe('the output collector', () => {
  it('a flush between two chunks of one secret (a conversation event came) does not split it unredacted', () => {
    const { out, text } = collector();
    out.push('stderr', Buffer.from(`token=${SECRET.slice(0, 14)}`));
    out.flush();
    out.push('stderr', Buffer.from(`${SECRET.slice(14)}\n`));
    out.end();
    expect(text()).toBe('token=***\n');
  });

  it('the stored-output cap falling inside a secret releases no prefix of it', () => {
    const { out, text, events } = collector(64);
    out.push('stdout', Buffer.from(`${'x'.repeat(50)}${SECRET}\n`));
    out.end();
    expect(text()).not.toContain(SECRET.slice(0, 8));
    expect(events.some((e) => e.type === 'notice' && e.data.reason === 'output_truncated')).toBe(true);
  });

  it('a multi-byte character split across chunks arrives whole', () => {
    const { out, text } = collector();
    const bytes = Buffer.from('grüße\n');
    out.push('stdout', bytes.subarray(0, 3));
    out.push('stdout', bytes.subarray(3));
    out.end();
    expect(text()).toBe('grüße\n');
  });
});
