import { describe, expect, it } from 'vitest';
import { RunFailure } from '../../src/core/run-failure.js';
import { boundedStatus, decideOutcome, harnessOutcome, MAX_STATUS_MESSAGE_CHARS, type StopReason } from '../../src/worker/outcome.js';
import { ProtocolError } from '../../src/worker/protocol-client.js';

const MIB = 1024 * 1024;
const succeeded = { state: 'SUCCEEDED' as const, message: { message: 'done' } };

/** Each row of the outcome table in src/worker/outcome.ts, with no process. */
describe('how an execution ends', () => {
  it('a fenced run writes nothing, whatever else happened', () => {
    expect(decideOutcome({ kind: 'fenced' }, new Error('boom'), succeeded)).toBeNull();
  });

  it('a stale lease (409) thrown by a phase writes nothing', () => {
    expect(decideOutcome(null, new ProtocolError('stale', 409, 'stale_lease'), null)).toBeNull();
  });

  it('a cancel ends CANCELLED with its own message, even when the harness succeeded', () => {
    const message = { message: 'Cancelled by request.', reason: 'cancelled_by_user' };
    expect(decideOutcome({ kind: 'cancel', message }, null, succeeded)).toEqual({ state: 'CANCELLED', message });
  });

  it('the maximum runtime ends FAILED budget_exceeded max_runtime_exceeded', () => {
    expect(decideOutcome({ kind: 'runtime', limitMs: 90_000 }, null, null)).toEqual({
      state: 'FAILED',
      message: { message: 'The run exceeded its maximum runtime of 90 s.', error_code: 'budget_exceeded', reason: 'max_runtime_exceeded' },
    });
  });

  it.each([
    ['memory', 512 * MIB, 'memory limit (512 MiB)'],
    ['disk', 64 * MIB, 'disk limit (64 MiB)'],
    ['output', 256 * MIB, 'output limit (256 MiB)'],
    ['pids', 64, 'process limit (64 processes)'],
  ] as const)('the %s limit ends FAILED budget_exceeded, naming the limit', (limit, value, text) => {
    const stop: StopReason = { kind: 'limit', limit, value };
    expect(decideOutcome(stop, new Error('the process died'), null)).toEqual({
      state: 'FAILED',
      message: { message: `The run exceeded its ${text}.`, error_code: 'budget_exceeded', reason: `${limit}_limit_exceeded` },
    });
  });

  it('events that could not be delivered end ERROR internal_error event_upload_failed, retryable', () => {
    expect(decideOutcome({ kind: 'upload', error: new Error('HTTP 400') }, null, succeeded)).toMatchObject({
      state: 'ERROR',
      message: { error_code: 'internal_error', retryable: true, reason: 'event_upload_failed' },
    });
  });

  it('a RunFailure ends as it says: setup failed', () => {
    expect(decideOutcome(null, RunFailure.setup('Setup command 1 `false` exited with code 1.', 'false'), null)).toEqual({
      state: 'FAILED',
      message: { message: 'Setup command 1 `false` exited with code 1.', error_code: 'environment_setup_failed', retryable: false, reason: 'false' },
    });
  });

  it('a RunFailure ends as it says: the sandbox was lost, or could not start (the platform side, retryable)', () => {
    expect(decideOutcome(null, RunFailure.sandboxLost('its init exited'), null)).toMatchObject({
      state: 'ERROR',
      message: { error_code: 'resource_unavailable', retryable: true, reason: 'sandbox_lost' },
    });
    expect(decideOutcome(null, RunFailure.sandboxStartFailed('no bwrap'), null)).toMatchObject({
      state: 'ERROR',
      message: { error_code: 'resource_unavailable', retryable: true, reason: 'sandbox_start_failed' },
    });
  });

  it('any other error ends ERROR internal_error worker_error, retryable, quoting it', () => {
    expect(decideOutcome(null, new TypeError('x is undefined'), null)).toEqual({
      state: 'ERROR',
      message: { message: 'The worker failed: x is undefined', error_code: 'internal_error', retryable: true, reason: 'worker_error' },
    });
  });

  it('with no stop and no error, the result stands', () => {
    expect(decideOutcome(null, null, succeeded)).toBe(succeeded);
  });

  it('a harness result maps to success, its own failure, or "harness failed"', () => {
    expect(harnessOutcome({ ok: true, summary: 'ok' })).toEqual({ state: 'SUCCEEDED', message: { message: 'ok' } });
    const failure = { state: 'ERROR' as const, message: { message: 'model down', error_code: 'resource_unavailable' as const, reason: 'model_unavailable' } };
    expect(harnessOutcome({ ok: false, summary: 'x', failure })).toEqual(failure);
    expect(harnessOutcome({ ok: false, summary: 'exit 2' })).toEqual({ state: 'FAILED', message: { message: 'exit 2', reason: 'harness_failed' } });
  });

  it('a status message too long for the protocol is cut with a marker, its reason bounded', () => {
    const cut = boundedStatus({ message: 'm'.repeat(50_000), reason: 'r'.repeat(900) });
    expect(cut.message.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_CHARS);
    expect(cut.message).toMatch(/more characters\]$/);
    expect(cut.reason).toHaveLength(500);
  });
});
