import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type ReactNode } from 'react';
import { Link, useLocation } from 'wouter';
import type { RunAgentRequestInput } from '../../../src/api/run-requests.js';
import type { RunItem } from '../../../src/api/runs.js';
import { client, errorMessage } from '../api.js';
import { ConfirmAction } from '../ui/confirm-action.js';
import { describedBy, Field, Loading, Page, QueryError, StateBadge, submitOnCtrlEnter, TimeAgo } from '../ui/components.js';
import { duration, isTerminal, safeUrl, shortId } from '../ui/format.js';
import { RunDiff } from './run/diff-view.js';
import { phasesOf, Timeline } from './run/timeline.js';
import { Transcript } from './run/transcript.js';
import { useRunEvents } from './run/use-run-events.js';
import { runDuration } from './runs-list.js';

/** The same request again: the prompt and the config the run was given. */
function rerunRequest(run: RunItem): RunAgentRequestInput {
  const { skill_spec: _skill, ...config } = run.agent_config;
  return { prompt: run.prompt, title: run.title, config };
}

function useNow(active: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const timer = window.setInterval(() => setNow(Date.now()), 1000);
    return () => window.clearInterval(timer);
  }, [active]);
  return now;
}

export function RunPage({ id }: { id: string }): ReactNode {
  const queryClient = useQueryClient();
  const run = useQuery({ queryKey: ['run', id], queryFn: () => client.getRun(id), retry: (n, e) => !(e instanceof Error && 'status' in e && e.status === 404) && n < 1 });
  const refresh = (): void => void queryClient.invalidateQueries({ queryKey: ['run', id] });
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  const environmentName = (uid: string): string => environments.data?.environments.find((e) => e.uid === uid)?.config.name ?? shortId(uid);
  const stream = useRunEvents(id, run.data?.execution ?? null, refresh);
  const live = run.data ? !isTerminal(run.data.state) : false;
  const now = useNow(live);
  if (run.isPending) return <Loading what="Loading the run" />;
  if (run.isError) return <QueryError error={run.error} what="run" />;
  const r = run.data;
  const phases = phasesOf(r.created_at, stream.events);
  const took = runDuration(r, now);
  const pr = r.artifacts?.find((a) => a.artifact_type === 'PULL_REQUEST');
  const prUrl = pr && typeof pr.data.url === 'string' ? safeUrl(pr.data.url) || null : null;
  return (
    <Page title={r.title || `Run ${shortId(r.run_id)}`} actions={<RunActions run={r} onChange={refresh} />}>
      <div className="run-summary">
        <StateBadge state={r.state} />
        {r.status_message?.message ? <span className="status-message">{r.status_message.message}</span> : null}
        <dl className="facts">
          <dt>Run</dt>
          <dd>
            <code>{r.run_id}</code>
          </dd>
          <dt>Created</dt>
          <dd>
            <TimeAgo iso={r.created_at} />
          </dd>
          <dt>Duration</dt>
          <dd>{took === null ? '—' : duration(took)}</dd>
          <dt>Harness</dt>
          <dd>{r.agent_config.harness.type}</dd>
          <dt>Model</dt>
          <dd>{r.agent_config.model_id ?? (r.agent_config.harness.type === 'command' ? 'none (a command)' : "the deployment's default")}</dd>
          <dt>Environment</dt>
          <dd>
            {r.agent_config.environment_id ? (
              <Link href={`/environments/${encodeURIComponent(r.agent_config.environment_id)}`}>{environmentName(r.agent_config.environment_id)}</Link>
            ) : (
              'none'
            )}
          </dd>
          <dt>Source</dt>
          <dd>{r.source ?? '—'}</dd>
          <dt>Usage</dt>
          <dd>
            {r.usage.input_tokens.toLocaleString()} in / {r.usage.output_tokens.toLocaleString()} out tokens, {r.usage.steps} steps
            {Object.keys(r.request_usage ?? {}).length > 0 ? `, ${JSON.stringify(r.request_usage)}` : ' (no prices on a self-hosted server)'}
          </dd>
          {r.worker ? (
            <>
              <dt>Worker</dt>
              <dd>{r.worker.name ?? shortId(r.worker.id)}</dd>
            </>
          ) : null}
          {r.schedule ? (
            <>
              <dt>Schedule</dt>
              <dd>
                <Link href={`/schedules/${encodeURIComponent(r.schedule.schedule_id)}`}>{r.schedule.schedule_name}</Link>
              </dd>
            </>
          ) : null}
        </dl>
      </div>
      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        <Timeline phases={phases} now={now} />
      </section>
      <section aria-labelledby="artifacts-h">
        <h2 id="artifacts-h">Artifacts</h2>
        {!prUrl && r.branches.length === 0 ? <p className="muted">None yet.</p> : null}
        <ul className="artifacts">
          {prUrl ? (
            <li>
              Pull request: <a href={prUrl}>{prUrl}</a>
            </li>
          ) : null}
          {r.branches
            .filter((b, i, all) => all.findIndex((o) => o.repository === b.repository && o.branch === b.branch) === i)
            .map((b) => (
              <li key={`${b.repository}-${b.branch}`}>
                Branch <code>{b.branch}</code> in <code>{b.repository}</code>
              </li>
            ))}
        </ul>
      </section>
      <section aria-labelledby="conversation-h">
        <h2 id="conversation-h">Conversation {live ? <span className="live">live</span> : null}</h2>
        <details className="prompt" open>
          <summary>Prompt</summary>
          <p className="plain">{r.prompt}</p>
        </details>
        {stream.error ? (
          <p className="error" role="alert">
            The live stream stopped: {stream.error}
          </p>
        ) : null}
        <Transcript events={stream.events} />
        <FollowUp run={r} onSent={refresh} />
      </section>
      <section aria-labelledby="diff-h">
        <h2 id="diff-h">Changes</h2>
        <RunDiff runId={r.run_id} version={`${r.execution}-${r.state}`} />
      </section>
      {r.executions.length > 1 ? (
        <section aria-labelledby="executions-h">
          <h2 id="executions-h">Executions</h2>
          <ol className="executions">
            {r.executions.map((e) => (
              <li key={e.number}>
                #{e.number} <StateBadge state={e.state} /> <TimeAgo iso={e.created_at} />
                {e.status_message?.message ? ` — ${e.status_message.message}` : ''}
              </li>
            ))}
          </ol>
        </section>
      ) : null}
    </Page>
  );
}

function RunActions({ run, onChange }: { run: RunItem; onChange: () => void }): ReactNode {
  const [, navigate] = useLocation();
  const cancel = useMutation({ mutationFn: () => client.cancelRun(run.run_id), onSuccess: onChange });
  const rerun = useMutation({ mutationFn: () => client.createRun(rerunRequest(run)), onSuccess: (created) => navigate(`/runs/${encodeURIComponent(created.run_id)}`) });
  const cancellable = !isTerminal(run.state) || run.is_sandbox_running === true;
  const cancelling = Boolean(run.cancel_requested_at) && !isTerminal(run.state);
  return (
    <>
      {cancelling ? (
        <button type="button" className="danger" disabled>
          Cancelling…
        </button>
      ) : cancellable ? (
        <ConfirmAction
          action="Cancel run"
          actionLabel="Cancel run"
          question={isTerminal(run.state) ? 'End the sandbox kept for follow-ups?' : 'Cancel this run?'}
          yes="Yes, cancel it"
          no="Keep it running"
          busy={cancel.isPending}
          onConfirm={() => cancel.mutate()}
        />
      ) : null}
      <button type="button" onClick={() => rerun.mutate()} disabled={rerun.isPending}>
        Re-run
      </button>
      {cancel.error || rerun.error ? (
        <p className="error" role="alert">
          {errorMessage(cancel.error ?? rerun.error)}
        </p>
      ) : null}
    </>
  );
}

function FollowUp({ run, onSent }: { run: RunItem; onSent: () => void }): ReactNode {
  const [message, setMessage] = useState('');
  const send = useMutation({
    mutationFn: (text: string) => client.followUp(run.run_id, text),
    onSuccess: () => {
      setMessage('');
      onSent();
    },
  });
  const error = send.error ? errorMessage(send.error) : undefined;
  return (
    <form
      className="followup"
      onSubmit={(e) => {
        e.preventDefault();
        if (message.trim()) send.mutate(message);
      }}
    >
      <Field id="followup" label={isTerminal(run.state) ? 'Follow up (continues the run in a new execution)' : 'Follow up (reaches the agent at its next step)'} error={error}>
        <textarea
          id="followup"
          name="message"
          rows={3}
          value={message}
          onChange={(e) => setMessage(e.target.value)}
          onKeyDown={submitOnCtrlEnter}
          {...describedBy('followup', error)}
        />
      </Field>
      <button type="submit" disabled={send.isPending || !message.trim()}>
        Send follow-up
      </button>
      {send.data && send.data.execution === run.execution && !(isTerminal(run.state) && send.data.delivery !== 'new_execution') ? (
        <p role="status">
          Sent as follow-up {send.data.followup.seq}:{' '}
          {send.data.delivery === 'running'
            ? 'it reaches the agent at its next step'
            : send.data.delivery === 'with_start'
              ? 'it goes with the run’s start'
              : 'it continues the run in a new execution'}
          .
        </p>
      ) : null}
    </form>
  );
}
