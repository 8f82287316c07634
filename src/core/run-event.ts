import type { RunState } from './run-state.js';
import type { RunStatusMessage } from './run.js';

/**
 * What happens during a run, append-only, keyed `(run_id, seq)`. The
 * conversation and the live event stream are both projections of these.
 */
export const RUN_EVENT_TYPES = [
  'state', // a state transition: { from, to, status_message? }
  'output', // process output: { stream: 'stdout' | 'stderr', text, phase: 'setup' | 'harness' }
  'setup', // a setup step: { command, status: 'started' | 'succeeded' | 'failed', exit_code? }
  'message', // a conversation message: { role: 'user' | 'assistant' | 'system', text }
  'tool_call', // { id, name, input }
  'tool_result', // { id, output, is_error }
  'artifact', // { type, ... }
  'notice', // platform notes to the user: { message, level }
  'usage', // { input_tokens, output_tokens, steps }
] as const;

export type RunEventType = (typeof RUN_EVENT_TYPES)[number];

export interface StateEventData {
  from: RunState | null;
  to: RunState;
  status_message?: RunStatusMessage | null;
}

/** An event to append; the store assigns `seq` and `at` is the producer's time. */
export interface NewRunEvent {
  type: RunEventType;
  at: number;
  data: Record<string, unknown>;
}

export interface RunEvent extends NewRunEvent {
  runId: string;
  seq: number;
}
