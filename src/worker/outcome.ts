import { isRunFailure } from '../core/run-failure.js';
import type { RunStatusMessage } from '../core/run.js';
import type { FinishState } from '../core/worker-protocol.js';
import type { HarnessResult } from '../agent/harness.js';
import type { LimitKind } from '../sandbox/sandbox-backend.js';
import { ProtocolError } from './protocol-client.js';
import { MIB } from '../core/units.js';

export type RunLimit = LimitKind | 'output';

/** Why the worker stopped a run before it ended by itself. */
export type StopReason =
  | { kind: 'cancel'; message: RunStatusMessage }
  | { kind: 'runtime'; limitMs: number }
  | { kind: 'limit'; limit: RunLimit; value: number }
  /** The run's events could not be delivered. */
  | { kind: 'upload'; error: Error }
  /** The lease is gone (or could not be renewed in time): the run is not ours any more. */
  | { kind: 'fenced' };

export interface Outcome {
  state: FinishState;
  message?: RunStatusMessage;
}

/**
 * The one mapping from how an execution went to how the run ends (cf.
 * Temporal's activity `run()`): the stop reason wins (the run was stopped,
 * whatever its processes made of it), then a thrown error, then the result.
 * `null` means "write nothing": the run was fenced off and belongs to the
 * sweeper (or another worker) now.
 *
 * | stop / error / result                  | state     | error_code           | reason                      |
 * |----------------------------------------|-----------|----------------------|-----------------------------|
 * | fenced, or a stale lease (409)         | —         | —                    | —                           |
 * | cancel                                 | CANCELLED | —                    | the request's               |
 * | runtime                                | FAILED    | budget_exceeded      | max_runtime_exceeded        |
 * | limit (memory, pids, disk, output)     | FAILED    | budget_exceeded      | `<limit>_limit_exceeded`    |
 * | upload failed                          | ERROR     | internal_error       | event_upload_failed         |
 * | RunFailure                             | its state | its code             | its reason                  |
 * | any other error                        | ERROR     | internal_error       | worker_error                |
 * | result                                 | as given  |                      |                             |
 */
export function decideOutcome(stop: StopReason | null, error: unknown, result: Outcome | null): Outcome | null {
  if (stop) return stopOutcome(stop);
  if (error !== undefined && error !== null) {
    if (error instanceof ProtocolError && error.stale) return null;
    if (isRunFailure(error)) return { state: error.state, message: error.status };
    const text = error instanceof Error ? error.message : String(error);
    return { state: 'ERROR', message: { message: `The worker failed: ${text}`, error_code: 'internal_error', retryable: true, reason: 'worker_error' } };
  }
  return result;
}

function stopOutcome(stop: StopReason): Outcome | null {
  switch (stop.kind) {
    case 'fenced':
      return null;
    case 'cancel':
      return { state: 'CANCELLED', message: stop.message };
    case 'runtime':
      return {
        state: 'FAILED',
        message: { message: `The run exceeded its maximum runtime of ${Math.round(stop.limitMs / 1000)} s.`, error_code: 'budget_exceeded', reason: 'max_runtime_exceeded' },
      };
    case 'limit': {
      const amount = stop.limit === 'pids' ? `${stop.value} processes` : `${Math.round(stop.value / MIB)} MiB`;
      const what = { memory: 'memory', pids: 'process', disk: 'disk', output: 'output' }[stop.limit];
      return {
        state: 'FAILED',
        message: { message: `The run exceeded its ${what} limit (${amount}).`, error_code: 'budget_exceeded', reason: `${stop.limit}_limit_exceeded` },
      };
    }
    case 'upload':
      return {
        state: 'ERROR',
        message: {
          message: `The run's events could not be delivered to the server: ${stop.error.message}`,
          error_code: 'internal_error',
          retryable: true,
          reason: 'event_upload_failed',
        },
      };
  }
}

/** A harness's result as the run's end: success, the harness's own failure, or "harness failed". */
export function harnessOutcome(result: HarnessResult): Outcome {
  if (result.ok) return { state: 'SUCCEEDED', message: { message: result.summary } };
  if (result.failure) return { state: result.failure.state, message: result.failure.message };
  return { state: 'FAILED', message: { message: result.summary, reason: 'harness_failed' } };
}

/** The protocol's bound on a status message; longer ones are cut (they were redacted before). */
export const MAX_STATUS_MESSAGE_CHARS = 10_000;

/** A status message that the server accepts: text within the protocol's bounds, cut with a marker. */
export function boundedStatus(message: RunStatusMessage): RunStatusMessage {
  const cut = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 40)}\n[… ${text.length - max + 40} more characters]` : text);
  return { ...message, message: cut(message.message, MAX_STATUS_MESSAGE_CHARS), ...(message.reason !== undefined ? { reason: message.reason.slice(0, 500) } : {}) };
}
