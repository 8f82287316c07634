import { answersTo, waitingForWorkerMessage, WAITING_FOR_WORKER, WORKER_FORGET_AFTER_MS, WORKER_SEEN_WINDOW_MS, type SeenWorker } from '../core/worker-pool.js';
import type { RunStatusMessage } from '../core/run.js';
import type { RoutedWaitingRun } from '../store/worker-repository.js';
import type { ServerDeps } from './deps.js';

/**
 * Worker pools on the server's side (docs/api.md "Worker pools"): what a
 * routed run that nobody can take says it waits for. Admission passes over
 * a QUEUED run routed to a name no worker seen lately answers to; the claim
 * gives a run only to a worker that answers to it. This module keeps the
 * run's status message saying so, and takes it away once a worker that can
 * take the run is there.
 */

/** The status message a waiting routed run should have: the waiting message, or none once a present worker can take it. */
function wanted(run: RoutedWaitingRun, present: readonly SeenWorker[]): RunStatusMessage | null {
  if (present.some((worker) => answersTo(worker, run.workerHost))) return null;
  return waitingForWorkerMessage(run.workerHost, present.length);
}

const isWaitingMessage = (message: RunStatusMessage | null): boolean => message?.reason === WAITING_FOR_WORKER;

/**
 * One pass over the routed runs still waiting (QUEUED, PENDING): set the
 * waiting message where no worker seen in the last `WORKER_SEEN_WINDOW_MS`
 * answers to the run's `worker_host`, clear it where one does. Every write is
 * a compare-and-set on the state and the message the run was read with, so
 * any number of servers may run this at once: one of them writes, the others
 * miss and leave it. When the message first appears, the run also gets a
 * `notice` event, so `--follow` says why nothing happens.
 */
export async function updateWaitingMessages(deps: ServerDeps, runs?: readonly RoutedWaitingRun[]): Promise<void> {
  const now = deps.clock.now();
  const waiting = runs ?? (await deps.store.workers.waitingRuns());
  if (waiting.length === 0) return;
  const present = await deps.store.workers.seenSince(now - WORKER_SEEN_WINDOW_MS);
  for (const run of waiting) {
    const message = wanted(run, present);
    // Another status message (none today) is not ours to replace or clear.
    if (run.statusMessage !== null && !isWaitingMessage(run.statusMessage)) continue;
    if (message === null ? run.statusMessage === null : run.statusMessageText === JSON.stringify(message)) continue;
    if (!(await deps.store.workers.setWaitingMessage(run, message, now))) continue;
    if (message !== null && run.statusMessage === null) {
      await deps.store.appendRunEvents(run.id, [{ type: 'notice', at: now, data: { level: 'info', message: message.message, reason: WAITING_FOR_WORKER } }]);
    }
    deps.hub.publish(run.id);
  }
}

/** The waiting message of one run just created (the API answers at once with what it waits for), when it waits for a worker. */
export async function explainWait(deps: ServerDeps, runId: string): Promise<void> {
  await updateWaitingMessages(deps, await deps.store.workers.waitingRuns({ runId }));
}

/** Forget workers not seen for a day (their rows only: runs keep the worker's id and name). */
export async function forgetGoneWorkers(deps: ServerDeps): Promise<void> {
  const forgotten = await deps.store.workers.forget(deps.clock.now() - WORKER_FORGET_AFTER_MS);
  if (forgotten > 0) deps.logger.info({ workers: forgotten }, 'forgot workers not seen for a day');
}
