import type { ModelMessage } from 'ai';
import { describe, expect, it } from 'vitest';
import { compactHistory, estimateTokens } from '../../src/agent/builtin/compaction.js';
import { historyMessages, type HistoryEvent } from '../../src/agent/builtin/history.js';

const NO_RESULT = 'no result: the execution ended before this tool call finished';

const user = (text: string): HistoryEvent => ({ type: 'message', data: { role: 'user', text } });
const said = (text: string): HistoryEvent => ({ type: 'message', data: { role: 'assistant', text } });
const call = (id: string, name = 'run', input: unknown = { command: id }): HistoryEvent => ({ type: 'tool_call', data: { id, name, input } });
const result = (id: string, output: string, extra: Record<string, unknown> = {}): HistoryEvent => ({
  type: 'tool_result',
  data: { id, name: 'run', output, is_error: false, ...extra },
});

/** A run of `steps` model steps, each a text, one tool call and its result of `size` characters. */
function run(task: string, steps: number, size: number, prefix = 's'): HistoryEvent[] {
  const events = [user(task)];
  for (let i = 0; i < steps; i++) events.push(said(`step ${prefix}${i}`), call(`${prefix}${i}`), result(`${prefix}${i}`, `${prefix}${i}:` + 'o'.repeat(size)));
  events.push(said(`done ${prefix}`));
  return events;
}

/** Fails unless every tool call is answered, exactly once, by the tool message right after it, and no tool message stands alone. */
function expectValidPairs(messages: readonly ModelMessage[]): void {
  messages.forEach((message, index) => {
    if (message.role === 'tool') expect(messages[index - 1]?.role, `tool message ${index} follows its calls`).toBe('assistant');
    if (message.role !== 'assistant' || typeof message.content === 'string') return;
    const calls = message.content.flatMap((part) => (part.type === 'tool-call' ? [part.toolCallId] : []));
    if (calls.length === 0) return;
    const next = messages[index + 1];
    expect(next?.role, `results of message ${index}`).toBe('tool');
    const results = next?.role === 'tool' ? next.content.flatMap((part) => (part.type === 'tool-result' ? [part.toolCallId] : [])) : [];
    expect(results).toEqual(calls);
  });
}

function text(message: ModelMessage | undefined): string {
  return typeof message?.content === 'string' ? message.content : JSON.stringify(message?.content);
}

describe('a stored conversation as model messages', () => {
  it('groups a step into one assistant message and its results into one tool message', () => {
    const messages: ModelMessage[] = historyMessages([
      user('fix the bug'),
      said('Looking.'),
      call('a', 'read_file', { path: 'x.ts' }),
      call('b', 'run', { command: 'ls' }),
      result('a', 'contents', { name: 'read_file' }),
      result('b', 'boom', { is_error: true }),
      said('Fixed.'),
      call('c', 'finish', { summary: 'ok', success: true }),
      result('c', 'done', { name: 'finish' }),
    ]);
    expect(messages).toEqual([
      { role: 'user', content: 'fix the bug' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Looking.' },
          { type: 'tool-call', toolCallId: 'a', toolName: 'read_file', input: { path: 'x.ts' } },
          { type: 'tool-call', toolCallId: 'b', toolName: 'run', input: { command: 'ls' } },
        ],
      },
      {
        role: 'tool',
        content: [
          { type: 'tool-result', toolCallId: 'a', toolName: 'read_file', output: { type: 'text', value: 'contents' } },
          { type: 'tool-result', toolCallId: 'b', toolName: 'run', output: { type: 'error-text', value: 'boom' } },
        ],
      },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Fixed.' },
          { type: 'tool-call', toolCallId: 'c', toolName: 'finish', input: { summary: 'ok', success: true } },
        ],
      },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'c', toolName: 'finish', output: { type: 'text', value: 'done' } }] },
    ]);
  });

  it('gives a call the execution never answered an error result, in call order', () => {
    const messages = historyMessages([user('task'), call('a'), call('b'), result('b', 'second'), user('go on')]);
    expect(messages).toEqual([
      { role: 'user', content: 'task' },
      {
        role: 'assistant',
        content: [
          { type: 'tool-call', toolCallId: 'a', toolName: 'run', input: { command: 'a' } },
          { type: 'tool-call', toolCallId: 'b', toolName: 'run', input: { command: 'b' } },
        ],
      },
      {
        role: 'tool',
        content: [
          { type: 'tool-result', toolCallId: 'a', toolName: 'run', output: { type: 'error-text', value: NO_RESULT } },
          { type: 'tool-result', toolCallId: 'b', toolName: 'run', output: { type: 'text', value: 'second' } },
        ],
      },
      { role: 'user', content: 'go on' },
    ]);
    // Ending on the call (no follow-up yet) is repaired the same way.
    expect(historyMessages([user('task'), call('z')]).at(-1)).toEqual({
      role: 'tool',
      content: [{ type: 'tool-result', toolCallId: 'z', toolName: 'run', output: { type: 'error-text', value: NO_RESULT } }],
    });
  });

  it('drops results without a call, a second result and results of an earlier turn; a nameless result takes the call name', () => {
    const messages = historyMessages([
      user('task'),
      result('ghost', 'orphan'),
      call('a', 'read_file'),
      { type: 'tool_result', data: { id: 'a', output: 'first', is_error: false } },
      result('a', 'again'),
      said('next'),
      result('a', 'late'),
    ]);
    expect(messages).toEqual([
      { role: 'user', content: 'task' },
      { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'a', toolName: 'read_file', input: { command: 'a' } }] },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'a', toolName: 'read_file', output: { type: 'text', value: 'first' } }] },
      { role: 'assistant', content: [{ type: 'text', text: 'next' }] },
    ]);
    expect(JSON.stringify(messages)).not.toMatch(/orphan|again|late|ghost/);
  });

  it('skips malformed events, system messages and other event types without throwing', () => {
    const events: HistoryEvent[] = [
      { type: 'message', data: { role: 'system', text: 'you are an agent' } },
      user('task'),
      { type: 'message', data: { role: 'user', text: 42 } },
      { type: 'message', data: { role: 'robot', text: 'who' } },
      { type: 'message', data: {} },
      { type: 'usage', data: { input_tokens: 1 } },
      { type: 'tool_call', data: { id: 7, name: 'run', input: {} } },
      { type: 'tool_call', data: { id: 'n', input: {} } },
      call('a'),
      { type: 'tool_result', data: { id: 'a', output: { not: 'text' }, is_error: false } },
      { type: 'tool_result', data: { id: 'a', output: 'x', is_error: 'no' } },
      { type: 'tool_result', data: { id: 7, output: 'x', is_error: false } },
    ];
    let messages: ModelMessage[] = [];
    expect(() => (messages = historyMessages(events))).not.toThrow();
    expect(messages).toEqual([
      { role: 'user', content: 'task' },
      { role: 'assistant', content: [{ type: 'tool-call', toolCallId: 'a', toolName: 'run', input: { command: 'a' } }] },
      { role: 'tool', content: [{ type: 'tool-result', toolCallId: 'a', toolName: 'run', output: { type: 'error-text', value: NO_RESULT } }] },
    ]);
  });

  it('keeps follow-up prompts and replies in the order they happened', () => {
    const messages = historyMessages([user('first'), said('one'), user('second'), said('two'), call('t'), result('t', 'r'), said('three'), user('third')]);
    expect(messages.map((message) => [message.role, text(message)])).toEqual([
      ['user', 'first'],
      ['assistant', JSON.stringify([{ type: 'text', text: 'one' }])],
      ['user', 'second'],
      [
        'assistant',
        JSON.stringify([
          { type: 'text', text: 'two' },
          { type: 'tool-call', toolCallId: 't', toolName: 'run', input: { command: 't' } },
        ]),
      ],
      ['tool', JSON.stringify([{ type: 'tool-result', toolCallId: 't', toolName: 'run', output: { type: 'text', value: 'r' } }])],
      ['assistant', JSON.stringify([{ type: 'text', text: 'three' }])],
      ['user', 'third'],
    ]);
    expectValidPairs(messages);
  });
});

describe('compacting a conversation to fit the model', () => {
  it('returns a conversation within budget unchanged', () => {
    const messages = historyMessages(run('task', 3, 100));
    const out = compactHistory(messages, { maxTokens: estimateTokens(messages) });
    expect(out).toEqual({ messages, compacted: false, omitted: 0 });
  });

  it('estimates about a quarter of the JSON length', () => {
    const messages: ModelMessage[] = [{ role: 'user', content: 'x'.repeat(400) }];
    expect(estimateTokens(messages)).toBe(Math.ceil(JSON.stringify(messages).length / 4));
    expect(estimateTokens(messages)).toBeGreaterThan(100);
  });

  it('cuts long old tool outputs and assistant texts before dropping anything, keeping the recent messages whole', () => {
    const events = run('task', 6, 10_000);
    events.splice(1, 0, said('t'.repeat(9_000)));
    const messages = historyMessages(events);
    const before = JSON.stringify(messages);
    const out = compactHistory(messages, { maxTokens: 15_000, keepRecent: 4 });
    expect(out.compacted).toBe(true);
    expect(out.omitted).toBe(0);
    expect(out.messages).toHaveLength(messages.length);
    expect(estimateTokens(out.messages)).toBeLessThanOrEqual(15_000);
    expect(JSON.stringify(messages)).toBe(before);

    const oldResult = out.messages[2];
    expect(oldResult?.role).toBe('tool');
    const value = oldResult?.role === 'tool' && oldResult.content[0]?.type === 'tool-result' ? oldResult.content[0].output : null;
    expect(value?.type).toBe('text');
    const cut = value?.type === 'text' ? value.value : '';
    // 10,003 characters: the first and last 1,000 kept.
    expect(cut).toContain('[… 8003 characters cut]');
    expect(cut.startsWith('s0:' + 'o'.repeat(997))).toBe(true);
    expect(cut.length).toBeLessThan(2_100);
    expect(text(out.messages[1])).toContain('[… 5000 characters cut]');
    // The last four messages are untouched.
    expect(out.messages.slice(-4)).toEqual(messages.slice(-4));
    expect(text(out.messages.at(-2))).toContain('o'.repeat(10_000));
  });

  it('drops the oldest messages behind one note after the task, keeping calls with their results, within budget', () => {
    const messages = historyMessages(run('the original task', 40, 1_000));
    const budget = Math.floor(estimateTokens(messages) / 3);
    const out = compactHistory(messages, { maxTokens: budget });
    expect(out.compacted).toBe(true);
    expect(estimateTokens(out.messages)).toBeLessThanOrEqual(budget);
    expect(out.omitted).toBeGreaterThan(0);
    expect(out.messages[0]).toEqual({ role: 'user', content: 'the original task' });
    expect(out.messages[1]).toEqual({ role: 'user', content: `[Earlier conversation compacted: ${out.omitted} messages omitted to fit the model's context.]` });
    expect(out.messages[2]?.role).toBe('assistant');
    expect(out.messages.length).toBe(messages.length - out.omitted + 1);
    // The kept tail is the end of the original, whole.
    expect(out.messages.slice(2)).toEqual(messages.slice(messages.length - (out.messages.length - 2)));
    expectValidPairs(out.messages);
    // It drops no more than it must: one more kept step would not fit.
    const more = compactHistory(messages, { maxTokens: budget + 2_000 });
    expect(more.omitted).toBeLessThan(out.omitted);
  });

  it('stops at the task, the note and the last exchange when nothing fits', () => {
    const messages = historyMessages([...run('task', 5, 500), user('and the tests too'), said('t'.repeat(50_000))]);
    const out = compactHistory(messages, { maxTokens: 10 });
    expect(out.messages).toHaveLength(4);
    expect(out.omitted).toBe(messages.length - 3);
    expect(out.messages[0]).toEqual({ role: 'user', content: 'task' });
    expect(text(out.messages[1])).toBe(`[Earlier conversation compacted: ${messages.length - 3} messages omitted to fit the model's context.]`);
    expect(out.messages[2]).toEqual({ role: 'user', content: 'and the tests too' });
    expect(out.messages[3]).toEqual(messages.at(-1));

    // A run that ended mid-step keeps its last call and the result.
    const cutOff = historyMessages([...run('task', 5, 500), call('last')]);
    const tail = compactHistory(cutOff, { maxTokens: 10 }).messages;
    expect(tail.map((message) => message.role)).toEqual(['user', 'user', 'assistant', 'tool']);
    expectValidPairs(tail);
  });

  it('always starts with a user message and never puts a tool message after the note, whatever the budget', () => {
    const events = [...run('task', 12, 3_000, 'a'), user('follow-up'), ...run('more', 12, 3_000, 'b').slice(1)];
    events.splice(6, 0, call('parallel'), result('parallel', 'p'.repeat(2_500)));
    const messages = historyMessages(events);
    const total = estimateTokens(messages);
    for (let budget = 50; budget < total; budget += 997) {
      for (const keepRecent of [0, 3, 8]) {
        const out = compactHistory(messages, { maxTokens: budget, keepRecent });
        expect(out.messages[0]).toEqual({ role: 'user', content: 'task' });
        expectValidPairs(out.messages);
        if (out.omitted > 0) {
          expect(text(out.messages[1])).toMatch(/^\[Earlier conversation compacted: \d+ messages omitted/);
          expect(out.messages[2]?.role).not.toBe('tool');
          expect(out.messages.length).toBe(messages.length - out.omitted + 1);
        }
        expect(compactHistory(messages, { maxTokens: budget, keepRecent })).toEqual(out);
      }
    }
  });
});
