import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import type { ListTeamsResponse } from '../../../../src/api/identity.js';
import { useSession } from '../../session.js';
import { Loading, TimeAgo } from '../../ui/components.js';
import { CreateTeamForm } from './create-team-form.js';
import { AdminQueryError } from './forbidden.js';
import { ceilingsText } from './limits.js';

/** The teams an admin sees (platform admins: every team; others: their own), and a create form for platform admins. */
export function TeamsSection({ teams, onStatus }: { teams: UseQueryResult<ListTeamsResponse>; onStatus: (message: string) => void }): ReactNode {
  const { isPlatformAdmin } = useSession();
  return (
    <section aria-labelledby="admin-teams-h">
      <h2 id="admin-teams-h">Teams</h2>
      {teams.isPending ? (
        <Loading what="Loading the teams" />
      ) : teams.isError ? (
        <AdminQueryError error={teams.error} needs="Listing teams needs an admin." />
      ) : (
        <div className="table-scroll">
          <table className="list" aria-label="Teams">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">UID</th>
                <th scope="col">Max concurrent runs</th>
                <th scope="col">Limit ceilings</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {teams.data.teams.map((t) => (
                <tr key={t.uid}>
                  <th scope="row">
                    {t.name}
                    {t.platform ? (
                      <>
                        {' '}
                        <span className="badge">platform</span>
                      </>
                    ) : null}
                  </th>
                  <td>
                    <code>{t.uid}</code>
                  </td>
                  <td>{t.max_concurrent_runs}</td>
                  <td>{ceilingsText(t.limit_ceilings) ?? <span className="muted">the operator's</span>}</td>
                  <td>
                    <TimeAgo iso={t.created_at} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {isPlatformAdmin ? (
        <>
          <h3 id="admin-new-team-h">New team</h3>
          <CreateTeamForm onCreated={(t) => onStatus(`Created the team ${t.name}.`)} />
        </>
      ) : (
        <p className="muted">Creating teams and changing their limits needs an admin of the platform team.</p>
      )}
    </section>
  );
}
