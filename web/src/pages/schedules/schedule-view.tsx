import type { ReactNode } from 'react';
import { Link } from 'wouter';
import type { ScheduleItem } from '../../../../src/api/schedules.js';
import { StateBadge, TimeAgo } from '../../ui/components.js';
import { inZone, upcoming } from './cron.js';
import { OVERLAP_LABELS } from './form-values.js';

const muted = (text: string): ReactNode => <span className="muted">{text}</span>;

export const scheduleScope = (s: ScheduleItem): string => (s.scope.type === 'Team' ? 'team' : 'personal');

export function EnabledBadge({ enabled }: { enabled: boolean }): ReactNode {
  return <span className="badge">{enabled ? 'enabled' : 'paused'}</span>;
}

/** A time as "in 3 hours" and as the schedule's time zone reads it. */
export function SlotTime({ iso, timezone }: { iso: string; timezone: string }): ReactNode {
  return (
    <>
      <TimeAgo iso={iso} /> <span className="muted">({inZone(iso, timezone)})</span>
    </>
  );
}

/**
 * The next slots: the server's `history.next_run`, then (count > 1) the ones
 * after it as croner reads the expression, as the server does.
 */
export function NextRuns({ schedule, count }: { schedule: ScheduleItem; count: number }): ReactNode {
  const next = schedule.history.next_run;
  if (!schedule.enabled) return muted('none while paused');
  if (!next) return muted('none');
  if (count <= 1) return <SlotTime iso={next} timezone={schedule.timezone} />;
  const later = upcoming(schedule.cron_schedule, schedule.timezone, count - 1, new Date(next));
  return (
    <ol>
      {[next, ...later.map((d) => d.toISOString())].map((iso) => (
        <li key={iso}>
          <SlotTime iso={iso} timezone={schedule.timezone} />
        </li>
      ))}
    </ol>
  );
}

export function LastRun({ schedule }: { schedule: ScheduleItem }): ReactNode {
  const last = schedule.last_run;
  if (!last) return schedule.history.last_ran ? <TimeAgo iso={schedule.history.last_ran} /> : muted('never');
  return (
    <>
      <Link href={`/runs/${encodeURIComponent(last.run_id)}`}>
        <StateBadge state={last.state} />
      </Link>{' '}
      <TimeAgo iso={schedule.history.last_ran} />
    </>
  );
}

/** A schedule's timing and template, as the API gives them. */
export function ScheduleFacts({ schedule: s }: { schedule: ScheduleItem }): ReactNode {
  const ac = s.agent_config;
  const envId = ac.environment_id;
  const budgets = [
    ac.max_steps !== undefined ? `${ac.max_steps.toLocaleString()} steps` : null,
    ac.max_tokens !== undefined ? `${ac.max_tokens.toLocaleString()} tokens` : null,
    ac.max_runtime_seconds !== undefined ? `${ac.max_runtime_seconds.toLocaleString()} s runtime` : null,
    ac.idle_timeout_minutes !== undefined ? `sandbox kept ${ac.idle_timeout_minutes} min for follow-ups` : null,
  ].filter((b): b is string => b !== null);
  const authSecrets = Object.entries(ac.harness_auth_secrets ?? {});
  return (
    <dl className="facts">
      <dt>ID</dt>
      <dd>
        <code>{s.id}</code>
      </dd>
      <dt>State</dt>
      <dd>
        <EnabledBadge enabled={s.enabled} />
      </dd>
      <dt>Cron</dt>
      <dd>
        <code>{s.cron_schedule}</code> — {s.cron_description}
      </dd>
      <dt>Time zone</dt>
      <dd>{s.timezone}</dd>
      <dt>Next runs</dt>
      <dd>
        <NextRuns schedule={s} count={3} />
      </dd>
      <dt>Overlap</dt>
      <dd>{OVERLAP_LABELS[s.overlap_policy]}</dd>
      <dt>Last run</dt>
      <dd>
        <LastRun schedule={s} />
      </dd>
      {s.last_spawn_error ? (
        <>
          <dt>Last spawn error</dt>
          <dd className="error">{s.last_spawn_error}</dd>
        </>
      ) : null}
      <dt>Environment</dt>
      <dd>
        {!envId ? (
          muted('none (an empty workspace)')
        ) : s.environment ? (
          <Link href={`/environments/${encodeURIComponent(envId)}`}>{s.environment.name}</Link>
        ) : (
          <>
            <code>{envId}</code> {muted('(deleted, or not visible to you)')}
          </>
        )}
      </dd>
      <dt>Harness</dt>
      <dd>
        {ac.harness?.type ?? 'oz'}
        {ac.harness?.command ? (
          <>
            : <code>{ac.harness.command}</code>
          </>
        ) : null}
        {authSecrets.map(([field, name]) => (
          <div key={field} className="muted">
            {field.replace(/_auth_secret_name$/, '')} key: <code>{name}</code>
          </div>
        ))}
      </dd>
      <dt>Model</dt>
      <dd>{ac.model_id ?? muted('default')}</dd>
      <dt>Secrets</dt>
      <dd>{ac.secrets && ac.secrets.length > 0 ? <code>{ac.secrets.join(', ')}</code> : muted("all the environment's")}</dd>
      <dt>Budgets</dt>
      <dd>{budgets.length > 0 ? budgets.join(', ') : muted("the team's defaults")}</dd>
      <dt>Worker</dt>
      <dd>{ac.worker_host ? <code>{ac.worker_host}</code> : muted("the environment's, else any")}</dd>
      <dt>Start</dt>
      <dd>{ac.snapshot === false ? 'cold: every run runs the setup commands' : "warm from the environment's snapshot when one matches"}</dd>
      <dt>Scope</dt>
      <dd>{scheduleScope(s)}</dd>
      <dt>Created</dt>
      <dd>
        <TimeAgo iso={s.created_at} />
      </dd>
      <dt>Updated</dt>
      <dd>
        <TimeAgo iso={s.updated_at} />
      </dd>
    </dl>
  );
}
