import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { Link } from 'wouter';
import { client } from '../api.js';
import { Loading, QueryError, StateBadge, TimeAgo } from './components.js';
import { isTerminal, shortId } from './format.js';

const LIMIT = 20;
/** While one of the runs is still going, the list is asked again this often. */
const LIVE_POLL_MS = 5000;

/**
 * The latest runs matching one filter of `GET /agent/runs` (an environment's,
 * a schedule's), each linking to its page, and a link to all of them in the
 * runs list.
 */
export function RecentRuns({ queryKey, filter, empty }: { queryKey: readonly unknown[]; filter: Record<string, string>; empty: string }): ReactNode {
  const runs = useQuery({
    queryKey,
    queryFn: () => client.listRuns(new URLSearchParams({ ...filter, limit: String(LIMIT) })),
    refetchInterval: (q) => (q.state.data?.runs.some((r) => !isTerminal(r.state)) ? LIVE_POLL_MS : false),
  });
  if (runs.isPending) return <Loading what="Loading the runs" />;
  if (runs.isError) return <QueryError error={runs.error} />;
  const list = runs.data.runs;
  if (list.length === 0) return <p className="muted">{empty}</p>;
  return (
    <>
      <div className="table-scroll">
        <table className="list">
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {list.map((r) => (
              <tr key={r.run_id}>
                <td>
                  <Link href={`/runs/${encodeURIComponent(r.run_id)}`}>{r.title || `Run ${shortId(r.run_id)}`}</Link>
                </td>
                <td>
                  <StateBadge state={r.state} />
                </td>
                <td>
                  <TimeAgo iso={r.created_at} />
                </td>
                <td>
                  <TimeAgo iso={r.updated_at} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {list.length >= LIMIT || runs.data.page_info.has_next_page ? (
        <p>
          <Link href={`/runs?${new URLSearchParams(filter).toString()}`}>All the runs</Link>
        </p>
      ) : null}
    </>
  );
}
