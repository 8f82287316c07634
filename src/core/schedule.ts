import type { Scope } from './environment.js';

/** What a schedule does when a slot comes while its previous run is still going. */
export const OVERLAP_POLICIES = ['allow', 'skip', 'queue', 'cancel_previous'] as const;
export type OverlapPolicy = (typeof OVERLAP_POLICIES)[number];

/** A cron expression plus a run template (docs/design.md "Concepts"). */
export interface Schedule {
  id: string;
  teamId: string;
  scope: Scope;
  creatorId: string;
  updatedBy: string;
  name: string;
  cron: string;
  /** IANA time zone the cron is read in; UTC by default, as Oz. */
  timezone: string;
  overlapPolicy: OverlapPolicy;
  enabled: boolean;
  prompt: string;
  /** The spec's `agent_config` (AmbientAgentConfig), as given. */
  agentConfig: Record<string, unknown>;
  /** The next slot (epoch ms) to fire; null while paused. */
  nextFireAt: number | null;
  /** A slot that came while a run was going, under `queue` (at most one waits). */
  queuedSlot: number | null;
  lastFiredAt: number | null;
  lastRunId: string | null;
  lastSpawnError: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What the API sets: the run template and the timing. */
export type ScheduleTemplate = Pick<Schedule, 'name' | 'cron' | 'timezone' | 'overlapPolicy' | 'enabled' | 'prompt' | 'agentConfig' | 'nextFireAt'>;

export type NewSchedule = ScheduleTemplate & Pick<Schedule, 'teamId' | 'scope' | 'creatorId'>;

/** A full replace of the template and timing. */
export type ScheduleUpdate = ScheduleTemplate & Pick<Schedule, 'updatedBy'>;

/** What became of one slot. */
export type FireOutcome = 'pending' | 'spawned' | 'skipped' | 'queued' | 'failed';
