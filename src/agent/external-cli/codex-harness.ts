import type { Harness, HarnessInput, HarnessResult } from '../harness.js';
import { capText, runCli, type CliState } from './cli-harness.js';

type Json = Record<string, unknown>;

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/**
 * `codex exec --json` lines into the conversation: agent messages, command
 * executions and file changes as calls with their results, token usage per
 * turn, and `turn.failed` / `error` as the run's failure.
 */
export function mapCodexEvent(event: Json, state: CliState, input: HarnessInput, started: Set<string>): void {
  const item = (event.item ?? {}) as Json;
  const id = String(item.id ?? '');
  if (event.type === 'item.started' && (item.type === 'command_execution' || item.type === 'file_change')) {
    started.add(id);
    input.sink.event('tool_call', { id, name: String(item.type), input: item.type === 'command_execution' ? { command: item.command } : { changes: item.changes } });
  } else if (event.type === 'item.completed') {
    if (item.type === 'agent_message' && typeof item.text === 'string') {
      input.sink.event('message', { role: 'assistant', text: capText(item.text) });
      state.summary = item.text;
    } else if (item.type === 'command_execution' || item.type === 'file_change') {
      if (!started.has(id))
        input.sink.event('tool_call', { id, name: String(item.type), input: item.type === 'command_execution' ? { command: item.command } : { changes: item.changes } });
      const output = item.type === 'command_execution' ? String(item.aggregated_output ?? '') : JSON.stringify(item.changes ?? []);
      const failedItem = item.status === 'failed' || (item.type === 'command_execution' && num(item.exit_code) !== 0);
      input.sink.event('tool_result', { id, name: String(item.type), output: capText(output), is_error: failedItem });
    } else if (item.type === 'error' && typeof item.message === 'string') {
      input.sink.event('notice', { level: 'warn', message: `codex: ${item.message}`, reason: 'codex_warning' });
    }
  } else if (event.type === 'turn.completed') {
    const usage = (event.usage ?? {}) as Json;
    state.usage.input_tokens += num(usage.input_tokens);
    state.usage.output_tokens += num(usage.output_tokens);
    state.usage.steps += 1;
    state.finished = true;
  } else if (event.type === 'turn.failed' || event.type === 'error') {
    state.failed = true;
    const error = (event.error ?? {}) as Json;
    state.failure = `Codex failed: ${String(error.message ?? event.message ?? 'unknown error')}`;
  }
}

/**
 * The `codex` harness: the real Codex CLI in the sandbox (`codex exec
 * --json`, its own sandbox and approvals off: the jail is the boundary), with
 * a Responses-API provider pointing at the run's model proxy.
 */
export class CodexHarness implements Harness {
  readonly type = 'codex' as const;
  readonly modelProxy = 'openai' as const;

  run(input: HarnessInput): Promise<HarnessResult> {
    const model = input.modelId?.startsWith('openai/') ? input.modelId.slice('openai/'.length) : null;
    const started = new Set<string>();
    return runCli(
      {
        name: 'codex',
        install: 'npm install -g @openai/codex',
        argv: (bin, port, resume) => [
          bin,
          'exec',
          ...(resume ? ['resume'] : []),
          '--json',
          '--skip-git-repo-check',
          '--dangerously-bypass-approvals-and-sandbox',
          ...(model ? ['--model', model] : []),
          '-c',
          'model_provider="oz"',
          '-c',
          `model_providers.oz={ name = "Oz model proxy", base_url = "http://127.0.0.1:${port}/openai/v1", env_key = "OZ_MODEL_PROXY_KEY", wire_api = "responses" }`,
          ...(resume ? [resume] : []),
          '-',
        ],
        // Its sessions in the workspace: a follow-up's execution resumes from them, wherever it runs.
        env: (_port, token, home) => ({ CODEX_HOME: home, OZ_MODEL_PROXY_KEY: token, OPENAI_API_KEY: '' }),
        map: (event, state) => mapCodexEvent(event, state, input, started),
        sessionOf: (event) => (event.type === 'thread.started' && typeof event.thread_id === 'string' && event.thread_id ? event.thread_id : null),
      },
      input,
    );
  }
}
