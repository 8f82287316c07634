import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { Link, useLocation } from 'wouter';
import type { ScheduleItem, UpdateScheduleInput } from '../../../src/api/schedules.js';
import { client, errorMessage, isNotFound } from '../api.js';
import { Loading, Page, QueryError } from '../ui/components.js';
import { ConfirmAction } from '../ui/confirm-action.js';
import { RecentRuns } from '../ui/recent-runs.js';
import { createBody, formOf, replaceBody, type ScheduleForm as Form } from './schedules/form-values.js';
import { ScheduleForm } from './schedules/schedule-form.js';
import { EnabledBadge, LastRun, NextRuns, ScheduleFacts, scheduleScope } from './schedules/schedule-view.js';

/** Often enough that "next run" moves on after a slot fires. */
const REFRESH_MS = 30_000;

const schedulePath = (id: string): string => `/schedules/${encodeURIComponent(id)}`;

/** Every schedule the caller can see, by name: when each fires next and how its last run went. */
export function SchedulesPage(): ReactNode {
  const schedules = useQuery({ queryKey: ['schedules'], queryFn: () => client.listSchedules(), refetchInterval: REFRESH_MS });
  return (
    <Page
      title="Schedules"
      actions={
        <Link href="/schedules/new" className="button primary">
          New schedule
        </Link>
      }
    >
      {schedules.isPending ? (
        <Loading what="Loading the schedules" />
      ) : schedules.isError ? (
        <QueryError error={schedules.error} />
      ) : schedules.data.schedules.length === 0 ? (
        <p className="muted">
          No schedules yet. A schedule starts a run from a prompt on a cron expression. <Link href="/schedules/new">Create the first one</Link>.
        </p>
      ) : (
        <ScheduleTable schedules={schedules.data.schedules} />
      )}
    </Page>
  );
}

function ScheduleTable({ schedules }: { schedules: readonly ScheduleItem[] }): ReactNode {
  return (
    <div className="table-scroll">
      <table className="list">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Schedule</th>
            <th scope="col">Next run</th>
            <th scope="col">State</th>
            <th scope="col">Last run</th>
          </tr>
        </thead>
        <tbody>
          {schedules.map((s) => (
            <tr key={s.id}>
              <td>
                <Link href={schedulePath(s.id)}>{s.name}</Link>
                {s.scope.type === 'User' ? <span className="muted"> ({scheduleScope(s)})</span> : null}
              </td>
              <td>
                <code>{s.cron_schedule}</code>
                <div className="muted">
                  {s.cron_description} ({s.timezone})
                </div>
              </td>
              <td>
                <NextRuns schedule={s} count={1} />
              </td>
              <td>
                <EnabledBadge enabled={s.enabled} />
              </td>
              <td>
                <LastRun schedule={s} />
                {s.last_spawn_error ? <div className="error">Could not start a run: {s.last_spawn_error}</div> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function NewSchedulePage(): ReactNode {
  const [, navigate] = useLocation();
  const queryClient = useQueryClient();
  const [initial] = useState(() => formOf());
  const create = useMutation({
    mutationFn: (form: Form) => client.createSchedule(createBody(form)),
    onSuccess: (schedule) => {
      queryClient.setQueryData(['schedule', schedule.id], schedule);
      void queryClient.invalidateQueries({ queryKey: ['schedules'] });
      navigate(schedulePath(schedule.id));
    },
  });
  return (
    <Page title="New schedule">
      <ScheduleForm
        initial={initial}
        mode="create"
        error={create.error}
        pending={create.isPending}
        onSubmit={(form) => create.mutate(form)}
        onCancel={() => navigate('/schedules')}
      />
    </Page>
  );
}

export function SchedulePage({ id }: { id: string }): ReactNode {
  // Keyed by the id: another schedule starts out of edit mode, with no leftover errors.
  return <ScheduleDetails key={id} id={id} />;
}

function ScheduleDetails({ id }: { id: string }): ReactNode {
  const [, navigate] = useLocation();
  const queryClient = useQueryClient();
  const schedule = useQuery({
    queryKey: ['schedule', id],
    queryFn: () => client.getSchedule(id),
    retry: (n, e) => !isNotFound(e) && n < 1,
    refetchInterval: REFRESH_MS,
  });
  const [editing, setEditing] = useState<Form | null>(null);
  const stored = (item: ScheduleItem): void => {
    queryClient.setQueryData(['schedule', id], item);
    void queryClient.invalidateQueries({ queryKey: ['schedules'] });
  };
  const replace = useMutation({
    mutationFn: (body: UpdateScheduleInput) => client.replaceSchedule(id, body),
    onSuccess: (item) => {
      stored(item);
      setEditing(null);
    },
  });
  const toggle = useMutation({ mutationFn: (action: 'pause' | 'resume') => client.scheduleAction(id, action), onSuccess: stored });
  const runNow = useMutation({
    mutationFn: () => client.scheduleAction(id, 'run-now'),
    onSuccess: (run) => {
      void queryClient.invalidateQueries({ queryKey: ['schedule', id] });
      void queryClient.invalidateQueries({ queryKey: ['schedules'] });
      navigate(`/runs/${encodeURIComponent(run.run_id)}`);
    },
  });
  const remove = useMutation({
    mutationFn: () => client.deleteSchedule(id),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: ['schedule', id] });
      void queryClient.invalidateQueries({ queryKey: ['schedules'] });
      navigate('/schedules');
    },
  });

  if (schedule.isPending) return <Loading what="Loading the schedule" />;
  if (schedule.isError) return <QueryError error={schedule.error} what="schedule" />;
  const s = schedule.data;

  if (editing) {
    return (
      <Page title={`Edit ${s.name}`}>
        <ScheduleForm
          initial={editing}
          mode="edit"
          error={replace.error}
          pending={replace.isPending}
          environmentName={s.environment?.name}
          onSubmit={(form) => replace.mutate(replaceBody(form, s))}
          onCancel={() => {
            replace.reset();
            setEditing(null);
          }}
        />
      </Page>
    );
  }

  const actionError = runNow.error ?? toggle.error ?? remove.error;
  return (
    <Page
      title={s.name}
      actions={
        <>
          <button type="button" className="primary" onClick={() => runNow.mutate()} disabled={runNow.isPending}>
            {runNow.isPending ? 'Starting…' : 'Run now'}
          </button>
          <button type="button" onClick={() => toggle.mutate(s.enabled ? 'pause' : 'resume')} disabled={toggle.isPending}>
            {s.enabled ? 'Pause' : 'Resume'}
          </button>
          <button
            type="button"
            onClick={() => {
              toggle.reset();
              runNow.reset();
              setEditing(formOf(s));
            }}
          >
            Edit
          </button>
          <ConfirmAction
            action="Delete"
            actionLabel={`Delete schedule ${s.name}`}
            question="Delete this schedule?"
            yes="Yes, delete it"
            no="Keep it"
            busy={remove.isPending}
            onConfirm={() => remove.mutate()}
          >
            Its runs are kept.
          </ConfirmAction>
        </>
      }
    >
      {actionError ? (
        <p className="error" role="alert">
          {errorMessage(actionError)}
        </p>
      ) : null}
      <ScheduleFacts schedule={s} />
      <section aria-labelledby="prompt-h">
        <h2 id="prompt-h">Prompt</h2>
        <p className="plain">{s.prompt}</p>
      </section>
      <section aria-labelledby="runs-h">
        <h2 id="runs-h">Recent runs</h2>
        <RecentRuns queryKey={['schedule', s.id, 'runs']} filter={{ schedule_id: s.id }} empty="No runs yet: the first starts at the next slot, or with Run now." />
      </section>
    </Page>
  );
}
