/**
 * The run state machine (docs/design.md "Run lifecycle").
 *
 *   (new) ─▶ QUEUED ─admit─▶ PENDING ─claim─▶ CLAIMED ─start─▶ INPROGRESS ◀─▶ BLOCKED
 *                │               ▲               │                  │             │
 *                │               └──re-queue─────┘ (sweeper, once)  │             │
 *                │                                                  ▼             ▼
 *                └──cancel──▶ CANCELLED ◀── worker finish ── SUCCEEDED | FAILED | CANCELLED
 *   any non-terminal ─▶ ERROR (platform's fault: worker lost, sandbox failed to start)
 *   any terminal ─follow-up─▶ QUEUED (the run's next execution: docs/design.md "Follow-ups and executions")
 *
 * A terminal run becomes live again only through a follow-up, and one
 * compare-and-set on the run's row moves it, so a run never has two live
 * executions: the second follow-up finds the run QUEUED and joins it.
 *
 * The table below is the single source of truth: the store refuses any
 * transition not listed here, and every transition is one compare-and-set.
 */

export const RUN_STATES = ['QUEUED', 'PENDING', 'CLAIMED', 'INPROGRESS', 'BLOCKED', 'SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'] as const;

export type RunState = (typeof RUN_STATES)[number];

export const TERMINAL_STATES: readonly RunState[] = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/** States in which a worker holds a lease on the run. */
export const LEASED_STATES: readonly RunState[] = ['CLAIMED', 'INPROGRESS', 'BLOCKED'];

/** States that count against a team's concurrency limit once admitted. */
export const ACTIVE_STATES: readonly RunState[] = ['PENDING', 'CLAIMED', 'INPROGRESS', 'BLOCKED'];

/** Who performs a transition. */
export type TransitionActor = 'server' | 'worker' | 'sweeper';

export interface TransitionRule {
  readonly from: RunState;
  readonly to: RunState;
  readonly by: readonly TransitionActor[];
  readonly when: string;
}

const FINISH = 'worker finish (CANCELLED only after the sandbox is dead)';
const PLATFORM_FAILED = "the platform's side failed (worker lost, sandbox failed to start)";
const ANYONE: readonly TransitionActor[] = ['server', 'worker', 'sweeper'];

const TABLE: TransitionRule[] = [
  { from: 'QUEUED', to: 'PENDING', by: ['server'], when: "admitted under the team's concurrency limit" },
  { from: 'QUEUED', to: 'CANCELLED', by: ['server'], when: 'cancel request on a waiting run' },
  { from: 'QUEUED', to: 'ERROR', by: ANYONE, when: PLATFORM_FAILED },

  { from: 'PENDING', to: 'CLAIMED', by: ['worker'], when: 'lease taken by a worker claim' },
  { from: 'PENDING', to: 'CANCELLED', by: ['server'], when: 'cancel request on a waiting run' },
  { from: 'PENDING', to: 'ERROR', by: ANYONE, when: PLATFORM_FAILED },

  { from: 'CLAIMED', to: 'PENDING', by: ['sweeper'], when: 'lease expired before the harness started: re-queued once' },
  { from: 'CLAIMED', to: 'INPROGRESS', by: ['worker'], when: 'sandbox ready, harness started' },
  { from: 'CLAIMED', to: 'SUCCEEDED', by: ['worker'], when: FINISH },
  { from: 'CLAIMED', to: 'FAILED', by: ['worker'], when: FINISH },
  { from: 'CLAIMED', to: 'CANCELLED', by: ['worker', 'sweeper'], when: `${FINISH}; sweeper when a cancel-requested lease expires` },
  { from: 'CLAIMED', to: 'ERROR', by: ANYONE, when: PLATFORM_FAILED },

  { from: 'INPROGRESS', to: 'BLOCKED', by: ['worker'], when: 'the harness waits for input' },
  { from: 'INPROGRESS', to: 'SUCCEEDED', by: ['worker'], when: FINISH },
  { from: 'INPROGRESS', to: 'FAILED', by: ['worker'], when: FINISH },
  { from: 'INPROGRESS', to: 'CANCELLED', by: ['worker', 'sweeper'], when: `${FINISH}; sweeper when a cancel-requested lease expires` },
  { from: 'INPROGRESS', to: 'ERROR', by: ANYONE, when: PLATFORM_FAILED },

  { from: 'BLOCKED', to: 'INPROGRESS', by: ['worker'], when: 'the harness resumes' },
  { from: 'BLOCKED', to: 'SUCCEEDED', by: ['worker'], when: FINISH },
  { from: 'BLOCKED', to: 'FAILED', by: ['worker'], when: FINISH },
  { from: 'BLOCKED', to: 'CANCELLED', by: ['worker', 'server', 'sweeper'], when: `${FINISH}; server when no live lease exists` },
  { from: 'BLOCKED', to: 'ERROR', by: ANYONE, when: PLATFORM_FAILED },

  // A follow-up to an ended run: its next execution (the only way a terminal run becomes live again).
  ...(['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'] as const).map((from): TransitionRule => ({
    from,
    to: 'QUEUED',
    by: ['server'],
    when: "a follow-up to the ended run: the run's next execution",
  })),
];

/** Every legal transition, as data. */
export const TRANSITIONS: readonly TransitionRule[] = Object.freeze(TABLE);

const index = new Map<string, TransitionRule>(TRANSITIONS.map((r) => [`${r.from}>${r.to}`, r]));

/**
 * Is `from → to` a legal transition? With `by`, also whether that actor may perform it.
 */
export function isLegalTransition(from: RunState, to: RunState, by?: TransitionActor): boolean {
  const rule = index.get(`${from}>${to}`);
  if (!rule) return false;
  return by === undefined || rule.by.includes(by);
}

/** Who may move a run `from → to` (empty when nobody may). */
export function actorsOf(from: RunState, to: RunState): readonly TransitionActor[] {
  return index.get(`${from}>${to}`)?.by ?? [];
}

export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.includes(state);
}

export function isRunState(value: unknown): value is RunState {
  return typeof value === 'string' && (RUN_STATES as readonly string[]).includes(value);
}

/** The CLI spelling of a state: `in-progress`, `queued`, … */
export function cliStateName(state: RunState): string {
  return state === 'INPROGRESS' ? 'in-progress' : state.toLowerCase();
}

/** Parse the CLI spelling (`in-progress`, `inprogress`, `QUEUED`) back to a state. */
export function parseCliStateName(text: string): RunState | undefined {
  const normalized = text.trim().toUpperCase().replace(/[-_ ]/g, '');
  return isRunState(normalized) ? normalized : undefined;
}
