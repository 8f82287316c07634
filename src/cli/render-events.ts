import type { RunEventMessage } from '../api/run-events.js';
import { cliStateName, isRunState } from '../core/run-state.js';
import type { Output } from './output.js';

function stateName(value: unknown): string {
  return isRunState(value) ? cliStateName(value) : String(value);
}

/** One event, live: a readable line (pretty/text) or one JSON line (json/ndjson). */
export function renderEvent(out: Output, event: RunEventMessage): void {
  if (out.format === 'json' || out.format === 'ndjson') return out.json(event, true);
  const d = event.data;
  const time = out.format === 'pretty' ? `[${event.at.slice(11, 19)}] ` : '';
  switch (event.type) {
    case 'state': {
      // Event data is open (src/core/run-event.ts): a state event's status_message is {message, …} when present.
      const sm = d.status_message;
      const message = sm !== null && typeof sm === 'object' && 'message' in sm ? sm.message : undefined;
      const from = d.from === null || d.from === undefined ? '' : `${stateName(d.from)} → `;
      return out.line(`${time}state ${from}${stateName(d.to)}${message ? ` (${String(message)})` : ''}`);
    }
    case 'output':
      return out.line(`${time}${String(d.text ?? '').replace(/\n$/, '')}`);
    case 'message':
      return out.line(`${time}${String(d.role ?? 'assistant')}: ${String(d.text ?? '')}`);
    case 'tool_call':
      return out.line(`${time}→ ${String(d.name ?? 'tool')} ${JSON.stringify(d.input ?? {})}`);
    case 'tool_result': {
      const first = String(d.output ?? '').split('\n', 1)[0] ?? '';
      return out.line(`${time}← ${String(d.name ?? 'tool')}${d.is_error ? ' (error)' : ''}: ${first.length > 160 ? `${first.slice(0, 160)}…` : first}`);
    }
    case 'usage':
      return out.line(`${time}usage: ${String(d.input_tokens)} in / ${String(d.output_tokens)} out tokens, ${String(d.steps)} steps`);
    case 'setup':
      return out.line(`${time}setup ${String(d.status ?? '')}: ${String(d.command ?? '')}`);
    case 'notice':
      return out.line(`${time}${String(d.message ?? '')}`);
    default:
      return out.line(`${time}${event.type} ${JSON.stringify(d)}`);
  }
}
