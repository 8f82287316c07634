import type { RunEventType } from '../core/run-event.js';
import type { HarnessConfig, RunStatusMessage, RunUsage } from '../core/run.js';
import type { Sandbox } from '../sandbox/sandbox-backend.js';
import type { HistoryEvent } from './builtin/history.js';

/** What a harness reports while it works: process output and conversation events. */
export interface HarnessSink {
  output(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** A conversation event (`message`, `tool_call`, `tool_result`, `usage`), in order. */
  event(type: RunEventType, data: Record<string, unknown>): void;
}

/** Budgets of an agent harness; the run's max runtime still applies beside the time budget. */
export interface AgentBudgets {
  maxSteps: number;
  /** Input plus output tokens over every step. */
  maxTokens: number;
  maxTimeMs: number;
}

export interface HarnessInput {
  runId: string;
  prompt: string;
  harness: HarnessConfig;
  sandbox: Sandbox;
  /** The run's environment variables (plain env of the environment, run ids, secrets). */
  env: Record<string, string>;
  sink: HarnessSink;
  /** The run's model (`provider/model`), or null for the worker's default. */
  modelId: string | null;
  budgets: AgentBudgets;
  /** The repositories' directories in the workspace: the agent's bearings and its working directory (`workingDir`, src/agent/working-dir.ts). */
  repoDirs: readonly string[];
  /** On an image with no repository: its `WorkingDir`, where the harness starts (src/agent/working-dir.ts). */
  imageWorkingDir?: string | null;
  /** The shell scripts run in: `/bin/bash`, or on an image without bash its `/bin/sh`. */
  shell?: string;
  /** Aborted when the run is stopped (cancel, limits, runtime). */
  signal: AbortSignal;
  /** Hides the run's secret values: for anything a harness sends outside (the model provider). */
  redact: (text: string) => string;
  /**
   * For agent CLIs: the run's model proxy socket as the sandbox sees it, and
   * the token it takes in place of a key (the real key stays with the worker).
   */
  modelProxy: { socketPath: string; token: string } | null;
  /** Follow-ups sent while the harness works (docs/design.md "Follow-ups and executions"): each harness takes them at its next step or turn. */
  followups?: FollowupFeed;
  /** In a later execution of the run: its conversation so far (the built-in agent continues it). */
  history?: readonly HistoryEvent[];
  /** A later execution of the run: an agent CLI resumes its session (kept in the workspace) instead of starting one. */
  continuing?: boolean;
}

/** The follow-ups that arrived since the last take, oldest first (empty: none); each is given once. */
export interface FollowupFeed {
  take(): string[];
}

export interface HarnessResult {
  /** True when the work succeeded (for `command`: exit code 0). */
  ok: boolean;
  summary: string;
  usage?: RunUsage | undefined;
  /** How the run ends when it did not succeed, where the harness knows better than "harness failed". */
  failure?: { state: 'FAILED' | 'ERROR'; message: RunStatusMessage } | undefined;
}

/** The model provider protocols a per-run model proxy speaks. */
export type ModelProxyProtocol = 'anthropic' | 'openai';

/**
 * What drives the work in a run (docs/design.md "Harnesses"). Callers read
 * the capability fields, never the type, to decide what a run needs (as
 * Kysely's dialect adapters expose `supports*` flags).
 */
export interface Harness {
  readonly type: HarnessConfig['type'];
  /**
   * The harness runs a model client inside the sandbox that needs a per-run
   * model proxy speaking this protocol (the key stays with the worker); null
   * when it needs none (the built-in agent calls its model from the worker).
   */
  readonly modelProxy: ModelProxyProtocol | null;
  run(input: HarnessInput): Promise<HarnessResult>;
}
