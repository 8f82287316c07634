import type { FollowupFeed } from '../agent/harness.js';
import type { ClaimedFollowup } from '../core/worker-protocol.js';

/**
 * The follow-ups of one execution (docs/design.md "Follow-ups and
 * executions"): those of the claim go with the prompt; those the control
 * poll brings while the harness works wait here until the harness takes
 * them at its next step or turn. `through` is the last one the agent was
 * given, which the worker reports (a later one starts the next execution).
 */
export class FollowupInbox implements FollowupFeed {
  private readonly waiting: ClaimedFollowup[] = [];
  private given: number;

  constructor(
    /** The last follow-up the run's agent already had before this execution. */
    after: number,
    private readonly onGiven: (through: number) => void = () => {},
  ) {
    this.given = after;
  }

  /** The last follow-up given to the agent. */
  get through(): number {
    return this.given;
  }

  /** Follow-ups for the agent, in order; ones already given or already waiting are ignored. */
  push(followups: readonly ClaimedFollowup[]): void {
    const last = this.waiting[this.waiting.length - 1]?.seq ?? this.given;
    for (const f of followups) if (f.seq > Math.max(last, this.given) && !this.waiting.some((w) => w.seq === f.seq)) this.waiting.push(f);
    this.waiting.sort((a, b) => a.seq - b.seq);
  }

  take(): string[] {
    if (this.waiting.length === 0) return [];
    const taken = this.waiting.splice(0, this.waiting.length);
    this.given = (taken[taken.length - 1] as ClaimedFollowup).seq;
    this.onGiven(this.given);
    return taken.map((f) => f.message);
  }
}

/**
 * What the agent starts with: in the first execution the run's prompt, then
 * any follow-up sent before it started; in a later one the follow-ups that
 * started it (the conversation so far comes with them, per harness).
 */
export function startingPrompt(prompt: string, execution: number, followups: readonly string[]): string {
  if (execution > 1 && followups.length > 0) return followups.join('\n\n');
  if (followups.length === 0) return prompt;
  return [prompt, ...followups.map((f) => `Follow-up from the user:\n${f}`)].join('\n\n');
}
