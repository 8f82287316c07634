/**
 * The seeded run mix, submitted through the API over the fault window:
 * quick (`echo`), slow (4–15 s of ticks, one a second), chatty (100–400 KB of output),
 * failing (exit 1) and publishing ones (a repository from a local bare repo;
 * they change a file, so the worker pushes `oz/<run id>` back to it).
 *
 * Every run first prints a marker with its run id and a nonce drawn inside
 * the sandbox, one per execution; publishing runs also write it to the file
 * they publish. The checks count executions by their markers.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { makeBareRepo } from '../../test/support/git-fixtures.js';
import type { Api } from './api.js';
import type { Rng } from './random.js';

export const RUN_KINDS = ['quick', 'slow', 'chatty', 'failing', 'publish'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

const WEIGHTS: Record<RunKind, number> = { quick: 0.2, slow: 0.35, chatty: 0.15, failing: 0.1, publish: 0.2 };

export const MARKER_PATTERN = /oz-faults-marker run=(\S+) nonce=([0-9a-f]+)/g;

const MARKER = ['nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d " \\n")', 'echo "oz-faults-marker run=$OZ_RUN_ID nonce=$nonce"'];

export interface RunPlan {
  index: number;
  kind: RunKind;
  script: string;
  /** When to submit, in ms from the start of the window. */
  atMs: number;
  idempotencyKey: string;
}

export interface Submission {
  plan: RunPlan;
  runId: string | null;
  /** Epoch ms of the first try, and of the answer that gave the run id. */
  triedAt: number;
  createdAt: number | null;
  tries: number;
  error: string | null;
}

function pickKind(rng: Rng): RunKind {
  let x = rng.next();
  for (const kind of RUN_KINDS) {
    x -= WEIGHTS[kind];
    if (x < 0) return kind;
  }
  return 'quick';
}

function script(kind: RunKind, index: number, rng: Rng): string {
  switch (kind) {
    case 'quick':
      return [...MARKER, `echo "quick run ${index}"`].join('\n');
    case 'slow':
      return [...MARKER, `for i in $(seq 1 ${rng.int(4, 15)}); do echo "tick $i"; sleep 1; done`].join('\n');
    case 'chatty': {
      const lines = Math.round((rng.int(100, 400) * 1024) / 80);
      return [...MARKER, `yes "chatty run ${index} $OZ_RUN_ID ......................................" | head -n ${lines}`].join('\n');
    }
    case 'failing':
      return [...MARKER, 'echo "failing on purpose" >&2', 'exit 1'].join('\n');
    case 'publish':
      return [...MARKER, `sleep ${rng.int(0, 4)}`, 'cd app', 'echo "run=$OZ_RUN_ID nonce=$nonce" > marker.txt'].join('\n');
  }
}

/** `count` runs at seeded times in [0, windowMs), in submission order. */
export function planRuns(rng: Rng, count: number, windowMs: number, seed: number): RunPlan[] {
  const plans: RunPlan[] = [];
  for (let index = 0; index < count; index++) {
    const kind = pickKind(rng);
    plans.push({ index, kind, script: script(kind, index, rng), atMs: Math.floor(rng.next() * windowMs), idempotencyKey: `oz-faults-${seed}-${index}` });
  }
  return plans.sort((a, b) => a.atMs - b.atMs || a.index - b.index);
}

/**
 * The repository publishing runs use, `<dir>/app.git`, which is also the
 * remote they publish to. Its reflog records every update of every ref, so
 * the checks can count pushes per branch (a force-push leaves an entry too).
 */
export function makeRemote(dir: string): { url: string; bare: string } {
  const url = makeBareRepo(dir, 'app', { 'README.md': '# app\n', 'marker.txt': 'none\n' });
  const bare = join(dir, 'app.git');
  execFileSync('git', ['--git-dir', bare, 'config', 'core.logAllRefUpdates', 'always']);
  return { url, bare };
}

/** The environment of publishing runs: that repository, checked out as `app/`. */
export async function createEnvironment(api: Api, repoUrl: string): Promise<string> {
  const answer = await api.call('POST', '/api/v1/agent/environments', { body: { name: 'faults-app', repos: [{ url: repoUrl }] } });
  if (answer.status !== 201) throw new Error(`creating the environment: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return (answer.body as { uid: string }).uid;
}

/** Submit one run (retried on every server until `deadlineMs`; the Idempotency-Key makes that safe). */
export async function submit(api: Api, plan: RunPlan, environmentId: string, deadlineMs: number): Promise<Submission> {
  const triedAt = Date.now();
  const config = { harness: { type: 'command' }, ...(plan.kind === 'publish' ? { environment_id: environmentId } : {}) };
  try {
    const answer = await api.call('POST', '/api/v1/agent/runs', {
      body: { prompt: plan.script, title: `faults ${plan.kind} ${plan.index}`, config },
      headers: { 'idempotency-key': plan.idempotencyKey },
      deadlineMs,
    });
    if (answer.status !== 200) return { plan, runId: null, triedAt, createdAt: null, tries: answer.tries, error: `HTTP ${answer.status} ${JSON.stringify(answer.body)}` };
    return { plan, runId: (answer.body as { run_id: string }).run_id, triedAt, createdAt: Date.now(), tries: answer.tries, error: null };
  } catch (error) {
    return { plan, runId: null, triedAt, createdAt: null, tries: 0, error: String(error) };
  }
}

/** Submit every plan at its time from `startedAt`; resolves with all submissions once the last answered. */
export async function submitAll(api: Api, plans: readonly RunPlan[], environmentId: string, startedAt: number, onSubmitted: (s: Submission) => void): Promise<Submission[]> {
  const pending: Promise<Submission>[] = [];
  for (const plan of plans) {
    const wait = startedAt + plan.atMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    pending.push(
      submit(api, plan, environmentId, 30_000).then((s) => {
        onSubmitted(s);
        return s;
      }),
    );
  }
  return Promise.all(pending);
}
