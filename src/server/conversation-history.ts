import type { HistoryResponse } from '../core/worker-protocol.js';
import type { Run } from '../core/run.js';
import type { ServerDeps } from './deps.js';

/** The most of a run's earlier conversation a worker is sent (its JSON); older events go first. */
const MAX_HISTORY_BYTES = 2 * 1024 * 1024;
const CONVERSATION_TYPES = new Set(['message', 'tool_call', 'tool_result']);

/**
 * What a later execution's agent continues from (docs/design.md "Follow-ups
 * and executions"): the run's prompt, then its conversation events so far
 * (model messages, tool calls and results, the follow-ups it was given). The
 * follow-ups this execution delivers itself are left out: they come as its
 * prompt. The newest events are kept within the bound; the prompt always.
 */
export async function conversationHistory(deps: ServerDeps, run: Run): Promise<HistoryResponse> {
  const events: HistoryResponse['events'] = [];
  for (let after = 0; ;) {
    const page = await deps.store.listRunEvents(run.id, after, 1000);
    for (const event of page) {
      if (!CONVERSATION_TYPES.has(event.type)) continue;
      const followup = event.data.followup;
      if (event.type === 'message' && typeof followup === 'number' && followup > run.followupsThrough) continue;
      events.push({ type: event.type, data: event.data });
    }
    const last = page[page.length - 1];
    if (!last || page.length < 1000) break;
    after = last.seq;
  }
  let bytes = 0;
  let start = events.length;
  while (start > 0) {
    const size = JSON.stringify(events[start - 1]).length;
    if (bytes + size > MAX_HISTORY_BYTES) break;
    bytes += size;
    start -= 1;
  }
  return { events: [{ type: 'message', data: { role: 'user', text: run.prompt } }, ...events.slice(start)], truncated: start > 0 };
}
