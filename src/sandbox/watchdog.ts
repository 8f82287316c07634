/**
 * The fence watchdog: a dead man's switch for a worker's sandboxes, in a
 * process (and session) of its own, so that a worker that stops being
 * scheduled (SIGSTOP, a frozen VM, a debugger) cannot keep a sandbox alive
 * past the lease that allowed it to run (docs/sandboxes.md "Fencing").
 *
 * It reads requests from the worker on stdin (src/sandbox/watchdog-protocol.ts)
 * and kills a sandbox's processes when its deadline passes without renewal,
 * and every sandbox it watches, plus what they left on the host, when stdin
 * closes: the worker died, however.
 *
 * Run by the host's node from dist/; imports nothing but Node's built-ins and
 * ./reap.js (built-ins only). Written in Node rather than sh for a monotonic
 * clock, exact deadlines and one shared kill routine with crash recovery.
 */
import { createInterface } from 'node:readline';
import { reap, removeLeftovers, type Leftovers } from './reap.js';
import type { WatchdogEvent, WatchdogRequest } from './watchdog-protocol.js';

interface Armed {
  target: { uid?: number; cgroups: string[]; processes: { pid: number; start: number }[]; groups: number[] };
  leftovers: Leftovers;
  deadline: number | null;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const armed = new Map<string, Armed>();
const owned: string[] = [];
let timer: NodeJS.Timeout | null = null;

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function send(event: WatchdogEvent): void {
  try {
    process.stdout.write(`${JSON.stringify(event)}\n`);
  } catch {
    // The worker is gone; stdin's end does the rest.
  }
}

function schedule(): void {
  if (timer) clearTimeout(timer);
  timer = null;
  let next = Infinity;
  for (const entry of armed.values()) if (entry.deadline !== null) next = Math.min(next, entry.deadline);
  if (next === Infinity) return;
  // Node's timers run on the monotonic clock; a long one fires early and is rescheduled.
  timer = setTimeout(expire, Math.min(MAX_TIMER_MS, Math.max(0, Math.ceil(next - now()))));
}

function expire(): void {
  const at = now();
  for (const [id, entry] of armed) {
    if (entry.deadline === null || entry.deadline > at) continue;
    entry.deadline = null; // Killed once; the worker destroys (and disarms) it when it can.
    send({ ev: 'fenced', id, complete: reap(entry.target) });
  }
  schedule();
}

/** The worker died (or let go): kill everything watched, remove what it left, and exit. */
function lastRites(code: number): never {
  for (const entry of armed.values()) reap(entry.target);
  // A mount the worker started just before it died may land a moment later: try for a while.
  let left = [...armed.values()].map((entry) => entry.leftovers);
  for (let attempt = 0; attempt < 10 && left.length > 0; attempt++) {
    if (attempt > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    left = left.filter((leftovers) => removeLeftovers(leftovers).length > 0);
  }
  removeLeftovers({ dirs: owned });
  process.exit(code);
}

function handle(request: WatchdogRequest): void {
  if (request.op === 'owns') {
    owned.push(...request.dirs);
    return;
  }
  if (request.op === 'arm') {
    const { target } = request;
    armed.set(request.id, {
      target: {
        ...(target.uid === undefined ? {} : { uid: target.uid }),
        cgroups: [...(target.cgroups ?? [])],
        processes: [...(target.processes ?? [])],
        groups: [...(target.groups ?? [])],
      },
      leftovers: request.leftovers,
      deadline: request.deadline,
    });
  } else {
    const entry = armed.get(request.id);
    if (!entry) return;
    if (request.op === 'process') entry.target.processes.push(request.process);
    else if (request.op === 'group') entry.target.groups.push(request.group);
    else if (request.op === 'renew') entry.deadline = request.deadline;
    else armed.delete(request.id);
  }
  // A deadline already past (the request sat in the pipe) is acted on at once.
  expire();
}

// It ends when its worker's pipe closes, not on a signal meant for the worker's terminal or service.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {});
process.stdout.on('error', () => {});
process.on('uncaughtException', (error) => {
  // Fail safe: a watchdog that cannot watch takes its sandboxes down with it.
  send({ ev: 'error', message: error.message });
  lastRites(70);
});

createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', (line) => {
    if (!line.trim()) return;
    let request: WatchdogRequest;
    try {
      request = JSON.parse(line) as WatchdogRequest;
    } catch {
      send({ ev: 'error', message: 'a request is not JSON' });
      return;
    }
    handle(request);
  })
  .on('close', () => lastRites(0));
send({ ev: 'ready', pid: process.pid });
