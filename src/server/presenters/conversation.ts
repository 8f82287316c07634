import type { ContentBlock, ConversationMessage, ConversationResponse, ConversationStep } from '../../api/conversation.js';
import { toRfc3339 } from '../../core/clock.js';
import type { RunEvent } from '../../core/run-event.js';
import type { Run } from '../../core/run.js';

/**
 * The Oz ConversationResponse projected from a run's stored events: one root
 * step whose description is the prompt. The prompt is the first user message;
 * model text becomes assistant text blocks; tool calls and setup commands are
 * `action` blocks with their `action_result`; state changes, process output
 * and notices are `event` blocks. Consecutive output chunks of one stream are
 * merged into one block so a transcript stays readable.
 */
export function presentConversation(run: Run, events: readonly RunEvent[]): ConversationResponse {
  const prompt: ConversationMessage = { role: 'user', timestamp: toRfc3339(run.createdAt), message_ids: [`${run.id}:prompt`], content: [{ type: 'text', text: run.prompt }] };
  const messages: ConversationMessage[] = [prompt];
  const push = (role: ConversationMessage['role'], event: RunEvent, block: ContentBlock): void => {
    const id = `${run.id}:${event.seq}`;
    const last = messages[messages.length - 1];
    const lastBlock = last?.content[last.content.length - 1];
    if (event.type === 'output' && last?.role === role && lastBlock?.type === 'event' && lastBlock.name === 'output' && lastBlock.data.stream === event.data.stream) {
      lastBlock.data.text = `${String(lastBlock.data.text)}${String(event.data.text ?? '')}`;
      last.message_ids.push(id);
      return;
    }
    messages.push({ role, timestamp: toRfc3339(event.at), message_ids: [id], content: [{ ...block, message_id: id }] });
  };

  for (const event of events) {
    switch (event.type) {
      case 'message': {
        const role = event.data.role === 'user' ? 'user' : event.data.role === 'system' ? 'system' : 'assistant';
        push(role, event, { type: 'text', text: String(event.data.text ?? '') });
        break;
      }
      case 'tool_call':
        push('assistant', event, {
          type: 'action',
          id: String(event.data.id ?? event.seq),
          category: 'command',
          name: String(event.data.name ?? 'tool'),
          input: event.data.input ?? {},
        });
        break;
      case 'tool_result':
        push('tool', event, {
          type: 'action_result',
          action_id: String(event.data.id ?? ''),
          category: 'command',
          name: String(event.data.name ?? 'tool'),
          state: event.data.is_error ? 'failed' : 'completed',
          output: { text: String(event.data.output ?? '') },
        });
        break;
      case 'setup':
        push(
          'system',
          event,
          event.data.status === 'started'
            ? { type: 'action', id: `setup:${String(event.data.index ?? event.seq)}`, input: { command: event.data.command }, category: 'command', name: 'setup_command' }
            : {
                type: 'action_result',
                action_id: `setup:${String(event.data.index ?? '')}`,
                state: event.data.status === 'succeeded' ? 'completed' : 'failed',
                output: { exit_code: event.data.exit_code ?? null },
                category: 'command',
                name: 'setup_command',
              },
        );
        break;
      default:
        push('system', event, { type: 'event', name: event.type === 'state' ? 'state_changed' : event.type, data: { ...event.data } });
    }
  }
  const step: ConversationStep = {
    id: run.id,
    description: run.prompt,
    started_at: prompt.timestamp,
    completed_at: (messages[messages.length - 1] ?? prompt).timestamp,
    messages,
    steps: [],
    ...(run.statusMessage ? { summary: run.statusMessage.message } : {}),
  };
  return { conversation_id: run.id, steps: [step] };
}
