import type { RunState } from './run-state.js';
import type { RunStatusMessage, RunUsage } from './run.js';

/**
 * One attempt of work on a run (docs/design.md "Follow-ups and executions"):
 * the run's creation starts execution 1, and each follow-up to an ended run
 * starts the next. The run's state is its latest execution's; an ended
 * execution keeps its own outcome.
 */
export interface RunExecution {
  runId: string;
  number: number;
  state: RunState;
  createdAt: number;
  workerId: string | null;
  workerName: string | null;
  claimedAt: number | null;
  startedAt: number | null;
  endedAt: number | null;
  statusMessage: RunStatusMessage | null;
  usage: RunUsage | null;
}

/** A message sent to a run after its creation, numbered 1.. per run. */
export interface RunFollowup {
  runId: string;
  seq: number;
  message: string;
  creatorId: string | null;
  /** The execution that was live (or that it started) when it was sent. */
  execution: number;
  createdAt: number;
}

/** The longest follow-up message (characters), as a prompt. */
export const MAX_FOLLOWUP_CHARS = 200_000;

/** How many follow-ups one run takes in all. */
export const MAX_FOLLOWUPS_PER_RUN = 1000;

/** Usage of the executions so far plus one more. */
export function addUsage(a: RunUsage | null, b: RunUsage | null | undefined): RunUsage | undefined {
  if (!b) return a ?? undefined;
  if (!a) return b;
  return { input_tokens: a.input_tokens + b.input_tokens, output_tokens: a.output_tokens + b.output_tokens, steps: a.steps + b.steps };
}
