import type { ModelMessage, TextPart, ToolCallPart, ToolResultPart } from 'ai';

/** One stored conversation event of a run (`message`, `tool_call`, `tool_result`; other types are ignored). */
export interface HistoryEvent {
  type: string;
  data: Record<string, unknown>;
}

/** The result given to a tool call the stored conversation has no result for. */
const NO_RESULT = 'no result: the execution ended before this tool call finished';

/**
 * A run's stored conversation as the AI SDK's messages, so a follow-up
 * execution continues where the last one stopped. Providers reject a tool call
 * without exactly one result, so the sequence is repaired rather than replayed:
 * an assistant turn (its texts and tool calls) becomes one assistant message and
 * the results that follow one tool message, in call order; a call left without
 * a result (the execution ended mid-step) gets an error result; a result with no
 * call before it in its turn, a second result and malformed events are dropped.
 * System messages are left out (each execution has its own system prompt).
 */
export function historyMessages(events: readonly HistoryEvent[]): ModelMessage[] {
  const messages: ModelMessage[] = [];
  const seenCalls = new Set<string>();
  let parts: Array<TextPart | ToolCallPart> = [];
  let calls: ToolCallPart[] = [];
  let results = new Map<string, ToolResultPart>();

  /** Ends the assistant turn in progress: its message, then one result per call. */
  const flush = (): void => {
    if (parts.length > 0) messages.push({ role: 'assistant', content: parts });
    if (calls.length > 0) {
      messages.push({
        role: 'tool',
        content: calls.map((call) => results.get(call.toolCallId) ?? toolResult(call, { type: 'error-text', value: NO_RESULT })),
      });
    }
    parts = [];
    calls = [];
    results = new Map();
  };

  for (const { type, data } of events) {
    if (type === 'message') {
      const { role, text } = data;
      if (typeof text !== 'string' || !text.trim()) continue;
      if (role === 'user') {
        flush();
        messages.push({ role: 'user', content: text });
      } else if (role === 'assistant') {
        // Text after results starts the model's next step.
        if (results.size > 0) flush();
        parts.push({ type: 'text', text });
      }
    } else if (type === 'tool_call') {
      const { id, name, input } = data;
      if (typeof id !== 'string' || !id || typeof name !== 'string' || !name || seenCalls.has(id)) continue;
      if (results.size > 0) flush();
      seenCalls.add(id);
      const call: ToolCallPart = { type: 'tool-call', toolCallId: id, toolName: name, input: input ?? {} };
      parts.push(call);
      calls.push(call);
    } else if (type === 'tool_result') {
      const { id, output, is_error: isError } = data;
      if (typeof id !== 'string' || typeof output !== 'string' || typeof isError !== 'boolean') continue;
      const call = calls.find((candidate) => candidate.toolCallId === id);
      if (!call || results.has(id)) continue;
      // The call's name, whatever the result says: providers pair them by id and name.
      results.set(id, toolResult(call, { type: isError ? 'error-text' : 'text', value: output }));
    }
  }
  flush();
  return messages;
}

function toolResult(call: ToolCallPart, output: ToolResultPart['output']): ToolResultPart {
  return { type: 'tool-result', toolCallId: call.toolCallId, toolName: call.toolName, output };
}
