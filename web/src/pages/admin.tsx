import { useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { client } from '../api.js';
import { useSession } from '../session.js';
import { Loading, Page } from '../ui/components.js';
import { adminRetry, isForbidden } from './admin/forbidden.js';
import { TeamsSection } from './admin/teams-section.js';
import { UsersSection } from './admin/users-section.js';
import { WorkerTokensSection } from './admin/worker-tokens-section.js';
import { WorkersSection } from './admin/workers-section.js';

/**
 * Administration (docs/api.md "Admins"): teams, users and their keys for
 * admins; workers and worker tokens for admins of the platform team. The
 * API decides: a 403 on the teams list means the caller is no admin.
 */
export function AdminPage(): ReactNode {
  const { session, isPlatformAdmin } = useSession();
  const teams = useQuery({ queryKey: ['admin', 'teams'], queryFn: () => client.listTeams(), retry: adminRetry });
  const [status, setStatus] = useState('');
  if (teams.isPending) {
    return (
      <Page title="Admin">
        <Loading what="Loading" />
      </Page>
    );
  }
  if (teams.isError && isForbidden(teams.error)) {
    return (
      <Page title="Admin">
        <p>This page needs an admin of your team. Ask one to make you an admin, or to do what you came here for.</p>
      </Page>
    );
  }
  return (
    <Page title="Admin">
      <p className="muted">
        {isPlatformAdmin
          ? `${session.team.name} is the platform team: you administer the whole deployment.`
          : `You administer ${session.team.name}: its users and their keys. Teams, workers and worker tokens belong to the admins of the platform team.`}
      </p>
      <div role="status">{status ? <p>{status}</p> : null}</div>
      <TeamsSection teams={teams} onStatus={setStatus} />
      <UsersSection teams={teams.data?.teams} onStatus={setStatus} />
      <WorkersSection allowed={isPlatformAdmin} />
      <WorkerTokensSection allowed={isPlatformAdmin} onStatus={setStatus} />
    </Page>
  );
}
