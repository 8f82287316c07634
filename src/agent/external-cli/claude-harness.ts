import type { Harness, HarnessInput, HarnessResult } from '../harness.js';
import { capText, runCli, type CliState } from './cli-harness.js';

type Json = Record<string, unknown>;

/** Text of a tool result's content: a string, or text blocks. */
function text(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((block) => (block && typeof block === 'object' && typeof (block as Json).text === 'string' ? (block as Json).text : '')).join('');
  return content === undefined ? '' : JSON.stringify(content);
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/**
 * Claude Code's `--output-format stream-json` lines into the conversation:
 * assistant text and `tool_use` blocks, the user turn's `tool_result` blocks,
 * and the final `result` (success is `is_error`, not `subtype`, which names
 * the kind of ending).
 */
export function mapClaudeEvent(event: Json, state: CliState, input: HarnessInput, names: Map<string, string>): void {
  const message = (event.message ?? {}) as Json;
  const content = Array.isArray(message.content) ? (message.content as Json[]) : [];
  if (event.type === 'assistant') {
    for (const block of content) {
      if (block.type === 'text' && typeof block.text === 'string' && block.text.trim()) {
        input.sink.event('message', { role: 'assistant', text: capText(block.text) });
        state.summary = block.text;
      } else if (block.type === 'tool_use') {
        names.set(String(block.id), String(block.name));
        input.sink.event('tool_call', { id: String(block.id), name: String(block.name), input: block.input ?? {} });
      }
    }
  } else if (event.type === 'user') {
    for (const block of content) {
      if (block.type !== 'tool_result') continue;
      const id = String(block.tool_use_id);
      input.sink.event('tool_result', { id, name: names.get(id) ?? 'tool', output: capText(text(block.content)), is_error: block.is_error === true });
    }
  } else if (event.type === 'result') {
    const usage = (event.usage ?? {}) as Json;
    // Added up: each turn of a run (a follow-up resumes the session) reports its own.
    state.usage = {
      input_tokens: state.usage.input_tokens + num(usage.input_tokens) + num(usage.cache_creation_input_tokens) + num(usage.cache_read_input_tokens),
      output_tokens: state.usage.output_tokens + num(usage.output_tokens),
      steps: state.usage.steps + num(event.num_turns),
    };
    if (typeof event.result === 'string' && event.result.trim()) state.summary = event.result;
    state.finished = true;
    if (event.is_error === true) {
      state.failed = true;
      state.failure = typeof event.result === 'string' && event.result.trim() ? event.result : `Claude Code ended with an error (${String(event.subtype ?? 'unknown')}).`;
    }
  }
}

/**
 * The `claude` harness: the real Claude Code CLI in the sandbox, headless
 * (`-p`, stream-json, permissions bypassed: the jail is the boundary), its
 * Anthropic traffic through the run's model proxy.
 */
export class ClaudeHarness implements Harness {
  readonly type = 'claude' as const;
  readonly modelProxy = 'anthropic' as const;

  run(input: HarnessInput): Promise<HarnessResult> {
    const model = input.modelId?.startsWith('anthropic/') ? input.modelId.slice('anthropic/'.length) : null;
    const names = new Map<string, string>();
    return runCli(
      {
        name: 'claude',
        install: 'npm install -g @anthropic-ai/claude-code',
        argv: (bin, _port, resume) => [
          bin,
          '-p',
          ...(resume ? ['--resume', resume] : []),
          '--output-format',
          'stream-json',
          '--verbose',
          '--dangerously-skip-permissions',
          ...(model ? ['--model', model] : []),
        ],
        // Its config and sessions in the workspace: a follow-up's execution resumes from them, wherever it runs.
        env: (port, token, home) => ({
          CLAUDE_CONFIG_DIR: home,
          ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}/anthropic`,
          ANTHROPIC_API_KEY: token,
          ANTHROPIC_AUTH_TOKEN: '',
          DISABLE_AUTOUPDATER: '1',
          DISABLE_TELEMETRY: '1',
          DISABLE_ERROR_REPORTING: '1',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        }),
        map: (event, state) => mapClaudeEvent(event, state, input, names),
        sessionOf: (event) => (typeof event.session_id === 'string' && event.session_id ? event.session_id : null),
      },
      input,
    );
  }
}
