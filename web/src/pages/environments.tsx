import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { Link, useLocation } from 'wouter';
import type { EnvironmentItem, PatchEnvironmentInput } from '../../../src/api/environments.js';
import { client, errorMessage, isNotFound } from '../api.js';
import { Loading, Page, QueryError, TimeAgo } from '../ui/components.js';
import { ConfirmAction } from '../ui/confirm-action.js';
import { EnvironmentForm } from './environments/environment-form.js';
import { EnvironmentConfig, scopeLabel, SnapshotFacts } from './environments/environment-view.js';
import { createBody, formOf, patchBody, type EnvironmentForm as Form } from './environments/form-values.js';
import { RecentRuns } from '../ui/recent-runs.js';
import { repoLine } from './environments/repos.js';

const SHOWN_REPOS = 3;

const environmentPath = (uid: string): string => `/environments/${encodeURIComponent(uid)}`;

/** Every environment the caller can see (the team's and their own), most recently updated first. */
export function EnvironmentsPage(): ReactNode {
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  return (
    <Page
      title="Environments"
      actions={
        <Link href="/environments/new" className="button primary">
          New environment
        </Link>
      }
    >
      {environments.isPending ? (
        <Loading what="Loading the environments" />
      ) : environments.isError ? (
        <QueryError error={environments.error} />
      ) : environments.data.environments.length === 0 ? (
        <p className="muted">
          No environments yet. An environment says where runs execute: repositories, an image, setup commands, secrets. <Link href="/environments/new">Create the first one</Link>.
        </p>
      ) : (
        <EnvironmentTable environments={environments.data.environments} />
      )}
    </Page>
  );
}

function EnvironmentTable({ environments }: { environments: readonly EnvironmentItem[] }): ReactNode {
  return (
    <div className="table-scroll">
      <table className="list">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Scope</th>
            <th scope="col">Repositories</th>
            <th scope="col">Image</th>
            <th scope="col">Last updated</th>
          </tr>
        </thead>
        <tbody>
          {environments.map((env) => {
            const repos = env.config.repos;
            return (
              <tr key={env.uid}>
                <td>
                  <Link href={environmentPath(env.uid)}>{env.config.name}</Link>
                  {env.setup_failed ? <span className="setup-failed"> (setup failed)</span> : null}
                  {env.config.description ? <div className="muted">{env.config.description}</div> : null}
                </td>
                <td>{scopeLabel(env)}</td>
                <td>
                  {repos.length === 0 ? <span className="muted">none</span> : null}
                  {repos.slice(0, SHOWN_REPOS).map((r) => (
                    <div key={`${r.url}@${r.branch ?? ''}`}>
                      <code>{repoLine(r)}</code>
                    </div>
                  ))}
                  {repos.length > SHOWN_REPOS ? <div className="muted">and {repos.length - SHOWN_REPOS} more</div> : null}
                </td>
                <td>{env.config.docker_image ? <code>{env.config.docker_image}</code> : <span className="muted">host system</span>}</td>
                <td>
                  <TimeAgo iso={env.last_updated} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function NewEnvironmentPage(): ReactNode {
  const [, navigate] = useLocation();
  const queryClient = useQueryClient();
  const [initial] = useState(() => formOf());
  const create = useMutation({
    mutationFn: (form: Form) => client.createEnvironment(createBody(form)),
    onSuccess: (env) => {
      queryClient.setQueryData(['environment', env.uid], env);
      void queryClient.invalidateQueries({ queryKey: ['environments'] });
      navigate(environmentPath(env.uid));
    },
  });
  return (
    <Page title="New environment">
      <EnvironmentForm
        initial={initial}
        mode="create"
        error={create.error}
        pending={create.isPending}
        onSubmit={(form) => create.mutate(form)}
        onCancel={() => navigate('/environments')}
      />
    </Page>
  );
}

export function EnvironmentPage({ id }: { id: string }): ReactNode {
  // Keyed by the id: another environment starts out of edit mode, with no leftover errors.
  return <EnvironmentDetails key={id} id={id} />;
}

function EnvironmentDetails({ id }: { id: string }): ReactNode {
  const [, navigate] = useLocation();
  const queryClient = useQueryClient();
  const env = useQuery({ queryKey: ['environment', id], queryFn: () => client.getEnvironment(id), retry: (n, e) => !isNotFound(e) && n < 1 });
  const schedules = useQuery({ queryKey: ['schedules'], queryFn: () => client.listSchedules() });
  /** The form as it was when editing began (what the PATCH is measured against); null: not editing. */
  const [editFrom, setEditFrom] = useState<Form | null>(null);
  const changed = (): void => {
    void queryClient.invalidateQueries({ queryKey: ['environments'] });
    // A schedule shows its environment's config.
    void queryClient.invalidateQueries({ queryKey: ['schedules'] });
  };
  const update = useMutation({
    mutationFn: (body: PatchEnvironmentInput) => client.updateEnvironment(id, body),
    onSuccess: (updated) => {
      queryClient.setQueryData(['environment', id], updated);
      changed();
      setEditFrom(null);
    },
  });
  const remove = useMutation({
    mutationFn: () => client.deleteEnvironment(id),
    onSuccess: () => {
      queryClient.removeQueries({ queryKey: ['environment', id] });
      changed();
      navigate('/environments');
    },
  });

  if (env.isPending) return <Loading what="Loading the environment" />;
  if (env.isError) return <QueryError error={env.error} what="environment" />;
  const e = env.data;
  const usedBy = (schedules.data?.schedules ?? []).filter((s) => s.agent_config.environment_id === e.uid);

  if (editFrom) {
    return (
      <Page title={`Edit ${e.config.name}`}>
        <EnvironmentForm
          initial={editFrom}
          mode="edit"
          error={update.error}
          pending={update.isPending}
          onSubmit={(form) => {
            const body = patchBody(form, editFrom);
            if (Object.keys(body).length === 0) setEditFrom(null);
            else update.mutate(body);
          }}
          onCancel={() => {
            update.reset();
            setEditFrom(null);
          }}
        />
      </Page>
    );
  }

  return (
    <Page
      title={e.config.name}
      actions={
        <>
          <Link href={`/runs/new?environment=${encodeURIComponent(e.uid)}`} className="button primary">
            New run in this environment
          </Link>
          <button type="button" onClick={() => setEditFrom(formOf(e))}>
            Edit
          </button>
          <ConfirmAction
            action="Delete"
            actionLabel={`Delete environment ${e.config.name}`}
            question="Delete this environment?"
            yes="Yes, delete it"
            no="Keep it"
            busy={remove.isPending}
            onConfirm={() => remove.mutate()}
          >
            {usedBy.length > 0 ? `${usedBy.length === 1 ? 'A schedule uses it: its runs' : `${usedBy.length} schedules use it: their runs`} will fail to start.` : null}
            {e.snapshot ? ' Its snapshot goes with it.' : null}
          </ConfirmAction>
        </>
      }
    >
      {remove.error ? (
        <p className="error" role="alert">
          {errorMessage(remove.error)}
        </p>
      ) : null}
      <EnvironmentConfig env={e} />
      <section aria-labelledby="snapshot-h">
        <h2 id="snapshot-h">Snapshot</h2>
        <SnapshotFacts snapshot={e.snapshot} />
      </section>
      {usedBy.length > 0 ? (
        <section aria-labelledby="schedules-h">
          <h2 id="schedules-h">Schedules</h2>
          <ul>
            {usedBy.map((s) => (
              <li key={s.id}>
                <Link href={`/schedules/${encodeURIComponent(s.id)}`}>{s.name}</Link> <span className="muted">{s.cron_description}</span>
                {s.enabled ? null : (
                  <>
                    {' '}
                    <span className="badge">paused</span>
                  </>
                )}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      <section aria-labelledby="runs-h">
        <h2 id="runs-h">Recent runs</h2>
        <RecentRuns queryKey={['environment', e.uid, 'runs']} filter={{ environment_id: e.uid }} empty="No runs in this environment yet." />
      </section>
    </Page>
  );
}
