import { OzError, type PlatformErrorCode } from './errors.js';
import type { RunStatusMessage } from './run.js';

/** Who is at fault decides the state: FAILED is the user's side, ERROR the platform's. */
export type FailureState = 'FAILED' | 'ERROR';

export interface RunFailureInit {
  state: FailureState;
  code: PlatformErrorCode;
  /** Precision beyond the catalog code: `sandbox_lost`, `repository_fetch_failed`, the setup command… */
  reason: string;
  /** For the run's user. */
  message: string;
  /** Default: the code's own (OzError's table). */
  retryable?: boolean;
  cause?: unknown;
}

/**
 * The one way a run's execution fails on purpose (cf. Temporal's
 * ApplicationFailure): provisioning, sandbox backends and harnesses throw
 * it with the state, catalog code, reason and retryability the run should
 * end with; the worker maps it to the run's outcome in one place and never
 * reads its message to decide anything.
 */
export class RunFailure extends Error {
  readonly state: FailureState;
  readonly code: PlatformErrorCode;
  readonly reason: string;
  readonly retryable: boolean;

  constructor(init: RunFailureInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'RunFailure';
    this.state = init.state;
    this.code = init.code;
    this.reason = init.reason;
    this.retryable = init.retryable ?? new OzError(init.code, '').retryable;
  }

  /** The run's `status_message`. */
  get status(): RunStatusMessage {
    return { message: this.message, error_code: this.code, retryable: this.retryable, reason: this.reason };
  }

  /** A setup step (clone, setup command) failed: the environment's fault, the user's side. */
  static setup(message: string, reason: string): RunFailure {
    return new RunFailure({ state: 'FAILED', code: 'environment_setup_failed', reason, message, retryable: false });
  }

  /** The sandbox died under the run (not by a limit or a stop): the platform's side, worth retrying. */
  static sandboxLost(detail: string, cause?: unknown): RunFailure {
    return new RunFailure({ state: 'ERROR', code: 'resource_unavailable', reason: 'sandbox_lost', message: `The sandbox ended unexpectedly: ${detail}`, retryable: true, cause });
  }

  /** The sandbox could not be started. */
  static sandboxStartFailed(detail: string, cause?: unknown): RunFailure {
    return new RunFailure({
      state: 'ERROR',
      code: 'resource_unavailable',
      reason: 'sandbox_start_failed',
      message: `The sandbox could not start: ${detail}`,
      retryable: true,
      cause,
    });
  }
}

export function isRunFailure(error: unknown): error is RunFailure {
  return error instanceof RunFailure;
}
