import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { client } from '../../api.js';
import { Loading, TimeAgo } from '../../ui/components.js';
import { adminRetry, AdminQueryError } from './forbidden.js';

const NEEDS = 'Workers serve every team: only admins of the platform team see them.';

/** The workers seen in the last day (`GET /admin/workers`; platform admins). */
export function WorkersSection({ allowed }: { allowed: boolean }): ReactNode {
  return (
    <section aria-labelledby="admin-workers-h">
      <h2 id="admin-workers-h">Workers</h2>
      {allowed ? <WorkersTable /> : <p className="muted">{NEEDS}</p>}
    </section>
  );
}

function WorkersTable(): ReactNode {
  const workers = useQuery({ queryKey: ['admin', 'workers'], queryFn: () => client.listWorkers(), retry: adminRetry, refetchInterval: 30_000 });
  if (workers.isPending) return <Loading what="Loading the workers" />;
  if (workers.isError) return <AdminQueryError error={workers.error} needs={NEEDS} />;
  if (workers.data.workers.length === 0) return <p className="muted">No worker has been seen in the last day.</p>;
  return (
    <div className="table-scroll">
      <table className="list" aria-label="Workers seen in the last day">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Labels</th>
            <th scope="col">Backend</th>
            <th scope="col">Capacity</th>
            <th scope="col">Running runs</th>
            <th scope="col">Version</th>
            <th scope="col">Token</th>
            <th scope="col">Last seen</th>
            <th scope="col">Online</th>
          </tr>
        </thead>
        <tbody>
          {workers.data.workers.map((w) => (
            <tr key={w.id}>
              <th scope="row" title={w.id}>
                {w.name}
              </th>
              <td>
                {w.labels.length === 0 ? (
                  <span className="muted">—</span>
                ) : (
                  w.labels.map((l) => (
                    <span key={l}>
                      <span className="badge">{l}</span>{' '}
                    </span>
                  ))
                )}
              </td>
              <td>{w.backend}</td>
              <td>{w.capacity}</td>
              <td>{w.running_runs}</td>
              <td>{w.version}</td>
              <td>{w.token_name ?? <span className="muted">embedded</span>}</td>
              <td>
                <TimeAgo iso={w.last_seen_at} />
              </td>
              <td>
                <span className="badge">{w.online ? 'online' : 'offline'}</span>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
