import type { AssistantModelMessage, ModelMessage, ToolModelMessage } from 'ai';

/** The longest tool output and assistant text kept in the older messages. */
const MAX_TOOL_OUTPUT = 2_000;
const MAX_ASSISTANT_TEXT = 4_000;
const DEFAULT_KEEP_RECENT = 8;

export interface CompactionOptions {
  /** The budget, in `estimateTokens` units. */
  maxTokens: number;
  /** How many of the last messages keep their tool outputs and texts whole. */
  keepRecent?: number;
}

export interface Compacted {
  messages: ModelMessage[];
  /** Whether anything was cut or dropped. */
  compacted: boolean;
  /** How many of the given messages were dropped. */
  omitted: number;
}

/**
 * About how many tokens messages cost the model: an estimate (a quarter of
 * their JSON length), not a tokenizer's count, good enough to decide whether a
 * follow-up's history must be compacted and cheap enough to call per message.
 */
export function estimateTokens(messages: readonly ModelMessage[]): number {
  return Math.ceil(JSON.stringify(messages).length / 4);
}

/**
 * A conversation made to fit the model's context, deterministically (no model
 * call, so a follow-up costs nothing extra and the same history always gives
 * the same prompt). Within `maxTokens` it is returned as is. Otherwise the old
 * messages (all but the last `keepRecent`) lose the middle of long tool outputs
 * (a command's errors are at its end) and the end of long assistant texts; if that is not enough, the oldest
 * messages are dropped, except the first user message (the task), and replaced
 * by one note saying so. The kept tail never starts with a tool message, so a
 * tool call and its results stay together. Dropping stops at the last
 * user/assistant exchange: the result may then still be over budget.
 */
export function compactHistory(messages: readonly ModelMessage[], options: CompactionOptions): Compacted {
  if (estimateTokens(messages) <= options.maxTokens) return { messages: [...messages], compacted: false, omitted: 0 };
  const keepRecent = Math.max(0, options.keepRecent ?? DEFAULT_KEEP_RECENT);
  const old = messages.length - keepRecent;
  const cut = messages.map((message, index) => (index < old ? shorten(message) : message));
  const shortened = cut.some((message, index) => message !== messages[index]);
  // Sizes per message, summed as JSON.stringify would join them: the same numbers as estimateTokens, without re-serializing per try.
  const sizes = cut.map((message) => JSON.stringify(message).length);
  const fits = (chars: number): boolean => Math.ceil(chars / 4) <= options.maxTokens;
  if (fits(arrayLength(sizes))) return { messages: cut, compacted: shortened, omitted: 0 };

  const first = cut.findIndex((message) => message.role === 'user');
  const head = first >= 0 ? [cut[first]!] : [];
  const headSizes = first >= 0 ? [sizes[first]!] : [];
  const last = lastStart(cut, first);
  let best: Compacted | null = null;
  for (let start = first + 1; start <= last; start++) {
    if (cut[start]?.role === 'tool') continue;
    const omitted = start - head.length;
    if (omitted === 0) continue;
    const note = marker(omitted);
    const kept = [...headSizes, JSON.stringify(note).length, ...sizes.slice(start)];
    best = { messages: [...head, note, ...cut.slice(start)], compacted: true, omitted };
    if (fits(arrayLength(kept))) return best;
  }
  return best ?? { messages: cut, compacted: shortened, omitted: 0 };
}

/** The note in place of the dropped messages, right after the task. */
function marker(omitted: number): ModelMessage {
  return { role: 'user', content: `[Earlier conversation compacted: ${omitted} messages omitted to fit the model's context.]` };
}

/**
 * Where the shortest kept tail starts: the last assistant message, with the
 * user message right before it (their exchange); without an assistant message
 * after the task, the last message. Never a tool message, never the task.
 */
function lastStart(messages: readonly ModelMessage[], first: number): number {
  let assistant = -1;
  for (let i = messages.length - 1; i > first; i--) {
    if (messages[i]!.role === 'assistant') {
      assistant = i;
      break;
    }
  }
  if (assistant < 0) {
    for (let i = messages.length - 1; i > first; i--) if (messages[i]!.role !== 'tool') return i;
    return messages.length;
  }
  return assistant - 1 > first && messages[assistant - 1]!.role === 'user' ? assistant - 1 : assistant;
}

/** The JSON length of an array of elements of these JSON lengths. */
function arrayLength(sizes: readonly number[]): number {
  return sizes.reduce((sum, size) => sum + size, 2) + Math.max(0, sizes.length - 1);
}

/** A message with its long tool outputs and assistant texts cut (the same object when nothing is). */
function shorten(message: ModelMessage): ModelMessage {
  if (message.role === 'tool') return shortenTool(message);
  if (message.role === 'assistant') return shortenAssistant(message);
  return message;
}

function shortenTool(message: ToolModelMessage): ToolModelMessage {
  let changed = false;
  const content = message.content.map((part) => {
    if (part.type !== 'tool-result' || (part.output.type !== 'text' && part.output.type !== 'error-text')) return part;
    const value = cutMiddle(part.output.value, MAX_TOOL_OUTPUT);
    if (value === part.output.value) return part;
    changed = true;
    return { ...part, output: { ...part.output, value } };
  });
  return changed ? { ...message, content } : message;
}

function shortenAssistant(message: AssistantModelMessage): AssistantModelMessage {
  if (typeof message.content === 'string') {
    const content = cutText(message.content, MAX_ASSISTANT_TEXT);
    return content === message.content ? message : { ...message, content };
  }
  let changed = false;
  const content = message.content.map((part) => {
    if (part.type !== 'text') return part;
    const text = cutText(part.text, MAX_ASSISTANT_TEXT);
    if (text === part.text) return part;
    changed = true;
    return { ...part, text };
  });
  return changed ? { ...message, content } : message;
}

function cutText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n[… ${text.length - max} characters cut]`;
}

/** The first and last `max / 2` characters, with the marker between. */
function cutMiddle(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)}\n[… ${text.length - 2 * half} characters cut]\n${text.slice(-half)}`;
}
