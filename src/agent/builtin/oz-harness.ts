import { APICallError, generateText, hasToolCall, RetryError, type ModelMessage, type StepResult } from 'ai';
import { compactHistory } from './compaction.js';
import { historyMessages } from './history.js';
import type { RunStatusMessage, RunUsage } from '../../core/run.js';
import type { Harness, HarnessInput, HarnessResult } from '../harness.js';
import { workingDir, workingDirPath } from '../working-dir.js';
import type { ModelProviderSettings } from '../../core/config.js';
import { ModelNotConfiguredError, resolveModel } from './models.js';
import { systemPrompt } from './system-prompt.js';
import { agentTools, type AgentTools } from './tools.js';

export interface OzHarnessSettings {
  providers: ModelProviderSettings;
  /** The model of runs that name none (`OZ_DEFAULT_MODEL`). */
  defaultModel: string | null;
  /** The AI SDK's retries of a failed model call (`OZ_MODEL_MAX_RETRIES`). */
  maxRetries: number;
  /** What a continued conversation is compacted to (estimated tokens); default {@link DEFAULT_CONTEXT_TOKENS}. */
  contextTokens?: number;
}

/** Room for a continued conversation: well under the contexts of the models the catalog offers, leaving space for the step's answer. */
export const DEFAULT_CONTEXT_TOKENS = 100_000;

type Step = StepResult<AgentTools>;

/** Why the loop ended early, set by the stop conditions and the timer. */
type Overrun = 'tokens' | 'time';

/**
 * The built-in `oz` harness: a tool-calling loop on the Vercel AI SDK in the
 * worker, its tools executing in the run's sandbox (docs/design.md "Harnesses and
 * models"). Each step's text, tool calls and tool results are reported as
 * conversation events in order, with the usage so far. It ends when the model
 * calls `finish` (or answers without a tool call), or when a budget (steps,
 * tokens, time) runs out.
 */
export class OzHarness implements Harness {
  readonly type = 'oz' as const;
  readonly modelProxy = null;

  constructor(private readonly settings: OzHarnessSettings) {}

  async run(input: HarnessInput): Promise<HarnessResult> {
    const modelId = input.modelId ?? this.settings.defaultModel;
    if (!modelId) {
      return failed('No model for this run: pass one (--model provider/model, config.model_id) or set OZ_DEFAULT_MODEL on the worker.', 'model_not_configured');
    }
    let model;
    try {
      model = resolveModel(modelId, this.settings.providers, input.env);
    } catch (error) {
      if (error instanceof ModelNotConfiguredError) return failed(error.message, 'model_not_configured');
      throw error;
    }

    const abort = new AbortController();
    const onStop = (): void => abort.abort(input.signal.reason);
    input.signal.addEventListener('abort', onStop, { once: true });
    // Set from the tools' callback: a plain `let` would be narrowed to null here.
    let fatal = null as Error | null;
    let overrun: Overrun | null = null;
    const timer = setTimeout(() => {
      overrun = 'time';
      abort.abort(new Error('time budget'));
    }, input.budgets.maxTimeMs);
    const usage: RunUsage = { input_tokens: 0, output_tokens: 0, steps: 0 };
    const tools = agentTools({
      sandbox: input.sandbox,
      cwd: workingDir(input.repoDirs, input.imageWorkingDir),
      cwdPath: workingDirPath(input.sandbox.workspacePath, input.repoDirs, input.imageWorkingDir),
      env: input.env,
      redact: input.redact,
      fatal: (error) => {
        fatal ??= error;
        abort.abort(error);
      },
    });

    // A later execution continues the conversation so far, compacted to fit the model's context.
    const history = input.history ? compactHistory(historyMessages(input.history), { maxTokens: this.settings.contextTokens ?? DEFAULT_CONTEXT_TOKENS }) : null;
    if (history?.compacted) {
      input.sink.event('notice', {
        level: 'info',
        message: `The conversation so far was compacted to fit the model's context (${history.omitted} earlier messages left out, long outputs cut).`,
        reason: 'conversation_compacted',
      });
    }
    let messages: ModelMessage[] = [...(history?.messages ?? []), { role: 'user', content: input.prompt }];
    // Follow-ups that reach the agent while it works: a user message before its next step, kept in
    // place for the steps after (prepareStep's messages hold the call's own messages and steps only).
    const injected: { at: number; message: ModelMessage }[] = [];
    const withInjected = (base: readonly ModelMessage[]): ModelMessage[] => {
      const out: ModelMessage[] = [];
      for (let i = 0; i <= base.length; i++) {
        for (const inj of injected) if (inj.at === i) out.push(inj.message);
        if (i < base.length) out.push(base[i] as ModelMessage);
      }
      return out;
    };
    const takeFollowups = (): ModelMessage | null => {
      const more = input.followups?.take() ?? [];
      return more.length > 0 ? { role: 'user', content: more.join('\n\n') } : null;
    };

    try {
      let result;
      for (;;) {
        injected.length = 0;
        result = await generateText({
          model,
          system: systemPrompt({ workspace: input.sandbox.workspacePath, repoDirs: input.repoDirs, imageWorkingDir: input.imageWorkingDir ?? null }),
          messages,
          tools,
          maxRetries: this.settings.maxRetries,
          abortSignal: abort.signal,
          prepareStep: ({ messages: base, stepNumber }) => {
            const followup = stepNumber > 0 ? takeFollowups() : null;
            if (followup) injected.push({ at: base.length, message: followup });
            return injected.length > 0 ? { messages: withInjected(base) } : {};
          },
          stopWhen: [
            hasToolCall('finish'),
            () => usage.steps >= input.budgets.maxSteps,
            () => {
              if (usage.input_tokens + usage.output_tokens < input.budgets.maxTokens) return false;
              overrun = 'tokens';
              return true;
            },
          ],
          onStepFinish: (step) => this.report(step, usage, input),
        });
        // Follow-ups that came as the agent finished: it goes on with them, in this execution.
        const next = overrun || usage.steps >= input.budgets.maxSteps ? null : takeFollowups();
        if (!next) break;
        messages = [...withInjected(messages), ...result.response.messages, next];
      }
      const finish = result.steps.flatMap((step) => step.toolCalls).find((call) => call.toolName === 'finish' && !call.invalid);
      if (finish) {
        // Checked against the finish tool's schema by the SDK (an invalid call is not taken).
        const { summary, success } = finish.input as { summary: string; success: boolean };
        return { ok: success, summary, usage, ...(success ? {} : { failure: { state: 'FAILED', message: { message: summary, reason: 'agent_reported_failure' } } }) };
      }
      if (overrun === 'tokens') return budget(`The run used its token budget (${input.budgets.maxTokens} tokens) before the agent finished.`, 'token_budget_exceeded', usage);
      if (result.finishReason === 'tool-calls')
        return budget(`The run used its step budget (${input.budgets.maxSteps} steps) before the agent finished.`, 'step_budget_exceeded', usage);
      // The model answered without calling finish: its last words are the summary.
      return { ok: true, summary: result.text.trim() || 'The agent ended without a summary.', usage };
    } catch (error) {
      if (fatal) throw fatal;
      if (overrun === 'time')
        return budget(`The run used its time budget (${Math.round(input.budgets.maxTimeMs / 1000)} s) before the agent finished.`, 'time_budget_exceeded', usage);
      if (input.signal.aborted) return { ok: false, summary: 'The run was stopped.', usage };
      const failure = modelFailure(error);
      if (failure) return { ok: false, summary: failure.message, usage, failure: { state: 'ERROR', message: failure } };
      throw error;
    } finally {
      clearTimeout(timer);
      input.signal.removeEventListener('abort', onStop);
    }
  }

  /** One step as conversation events, in the order the model produced them, then the usage so far. */
  private report(step: Step, usage: RunUsage, input: HarnessInput): void {
    usage.input_tokens += step.usage.inputTokens ?? 0;
    usage.output_tokens += step.usage.outputTokens ?? 0;
    usage.steps += 1;
    const { sink } = input;
    for (const part of step.content) {
      if (part.type === 'text' && part.text.trim()) sink.event('message', { role: 'assistant', text: part.text });
      else if (part.type === 'tool-call') sink.event('tool_call', { id: part.toolCallId, name: part.toolName, input: part.input ?? {} });
      else if (part.type === 'tool-result') sink.event('tool_result', { id: part.toolCallId, name: part.toolName, output: String(part.output), is_error: false });
      else if (part.type === 'tool-error') sink.event('tool_result', { id: part.toolCallId, name: part.toolName, output: errorText(part.error), is_error: true });
    }
    sink.event('usage', { ...usage });
  }
}

function failed(message: string, reason: string): HarnessResult {
  return { ok: false, summary: message, failure: { state: 'FAILED', message: { message, error_code: 'integration_not_configured', reason } } };
}

function budget(message: string, reason: string, usage: RunUsage): HarnessResult {
  return { ok: false, summary: message, usage, failure: { state: 'FAILED', message: { message, error_code: 'budget_exceeded', reason } } };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** A model provider that kept failing (after the SDK's retries), as the run's status. */
function modelFailure(error: unknown): RunStatusMessage | null {
  const last = RetryError.isInstance(error) ? error.lastError : error;
  if (!APICallError.isInstance(last)) return null;
  const attempts = RetryError.isInstance(error) ? ` after ${error.errors.length} attempts` : '';
  const status = last.statusCode ? `HTTP ${last.statusCode}: ` : '';
  return {
    message: `The model provider failed${attempts}: ${status}${last.message}`,
    error_code: 'resource_unavailable',
    retryable: last.isRetryable,
    reason: 'model_unavailable',
  };
}
