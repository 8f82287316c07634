import { Fragment, type ReactNode } from 'react';
import type { EnvironmentItem, EnvironmentSnapshotItem } from '../../../../src/api/environments.js';
import { TimeAgo } from '../../ui/components.js';
import { bytes } from '../../ui/format.js';
import { LIMITS } from './form-values.js';
import { repoLine } from './repos.js';

export const scopeLabel = (env: EnvironmentItem): string => (env.scope.type === 'Team' ? 'team' : 'personal');

const none = <span className="muted">none</span>;

function Commands({ commands }: { commands: readonly string[] }): ReactNode {
  if (commands.length === 0) return none;
  return (
    <ol>
      {commands.map((c, i) => (
        <li key={i}>
          <code>{c}</code>
        </li>
      ))}
    </ol>
  );
}

/** An environment's configuration, as the API gives it. */
export function EnvironmentConfig({ env }: { env: EnvironmentItem }): ReactNode {
  const c = env.config;
  const vars = Object.entries(c.env);
  const limits = LIMITS.filter(({ key }) => c.limits[key] !== undefined);
  return (
    <>
      {c.description ? <p className="plain">{c.description}</p> : null}
      {env.setup_failed ? (
        <p className="setup-failed" role="status">
          The setup failed in its last run; it stays marked until a run's setup succeeds.
        </p>
      ) : null}
      <dl className="facts">
        <dt>ID</dt>
        <dd>
          <code>{env.uid}</code>
        </dd>
        <dt>Scope</dt>
        <dd>{scopeLabel(env)}</dd>
        <dt>Last updated</dt>
        <dd>
          <TimeAgo iso={env.last_updated} />
        </dd>
        <dt>Repositories</dt>
        <dd>
          {c.repos.length === 0 ? (
            none
          ) : (
            <ul>
              {c.repos.map((r) => (
                <li key={`${r.url}@${r.branch ?? ''}`}>
                  <code>{repoLine(r)}</code>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Docker image</dt>
        <dd>{c.docker_image ? <code>{c.docker_image}</code> : <span className="muted">none (the worker host&apos;s system)</span>}</dd>
        {c.agent_user ? (
          <>
            <dt>Agent user</dt>
            <dd>
              <code>{c.agent_user}</code>
            </dd>
          </>
        ) : null}
        <dt>Setup commands</dt>
        <dd>
          <Commands commands={c.setup_commands} />
        </dd>
        <dt>Maintenance commands</dt>
        <dd>
          <Commands commands={c.maintenance_commands} />
        </dd>
        <dt>Network</dt>
        <dd>{c.network}</dd>
        {c.network === 'allowlist' ? (
          <>
            <dt>Allowed</dt>
            <dd>{[...(c.allow_presets ?? []).map((p) => `preset ${p}`), ...(c.allow_domains ?? [])].join(', ') || none}</dd>
          </>
        ) : null}
        {(c.allow_internal_ranges ?? []).length > 0 ? (
          <>
            <dt>Internal ranges</dt>
            <dd>{(c.allow_internal_ranges ?? []).join(', ')}</dd>
          </>
        ) : null}
        <dt>Secrets</dt>
        <dd>
          {c.secrets.length === 0
            ? none
            : c.secrets.map((s, i) => (
                <Fragment key={s}>
                  {i > 0 ? ', ' : null}
                  <code>{s}</code>
                </Fragment>
              ))}
        </dd>
        <dt>Variables</dt>
        <dd>
          {vars.length === 0 ? (
            none
          ) : (
            <ul>
              {vars.map(([k, v]) => (
                <li key={k}>
                  <code>
                    {k}={v}
                  </code>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Worker</dt>
        <dd>{c.worker_host ? <code>{c.worker_host}</code> : <span className="muted">any</span>}</dd>
        <dt>Limits</dt>
        <dd>
          {limits.length === 0 ? (
            <span className="muted">the team&apos;s defaults</span>
          ) : (
            <ul>
              {limits.map(({ key, label }) => (
                <li key={key}>
                  {label}: {c.limits[key]}
                </li>
              ))}
            </ul>
          )}
        </dd>
      </dl>
    </>
  );
}

/** The latest warm-start snapshot a worker reported (docs/environments.md "Snapshots"). */
export function SnapshotFacts({ snapshot }: { snapshot: EnvironmentSnapshotItem | null }): ReactNode {
  if (!snapshot) return <p className="muted">No worker has reported a snapshot: the next run starts cold and runs the setup commands.</p>;
  return (
    <dl className="facts">
      <dt>Key</dt>
      <dd>
        <code>{snapshot.key}</code>
      </dd>
      <dt>Size</dt>
      <dd>{bytes(snapshot.size_bytes)}</dd>
      <dt>Made</dt>
      <dd>
        <TimeAgo iso={snapshot.created_at} />
      </dd>
      <dt>Hits</dt>
      <dd>{snapshot.hits === 1 ? '1 run restored it' : `${snapshot.hits.toLocaleString()} runs restored it`}</dd>
      <dt>Last used</dt>
      <dd>
        <TimeAgo iso={snapshot.last_used_at} />
      </dd>
    </dl>
  );
}
