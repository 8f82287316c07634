import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { NewKeyInput, TeamItem, UserItem } from '../../../../src/api/identity.js';
import { client } from '../../api.js';
import { useSession } from '../../session.js';
import { Loading, TimeAgo } from '../../ui/components.js';
import { KeyForm } from '../api-keys/key-form.js';
import { ShownOnce } from '../../ui/shown-once.js';
import { CreateUserForm } from './create-user-form.js';
import { adminRetry, AdminQueryError } from './forbidden.js';

const COLUMNS = 6;

/** A team's users (platform admins pick the team), a create form, and a key issued for a user (shown once). */
export function UsersSection({ teams, onStatus }: { teams: readonly TeamItem[] | undefined; onStatus: (message: string) => void }): ReactNode {
  const { session, isPlatformAdmin } = useSession();
  const queryClient = useQueryClient();
  const [viewed, setViewed] = useState(session.team.uid);
  const [formTeam, setFormTeam] = useState(session.team.uid);
  const [issuingFor, setIssuingFor] = useState<string | null>(null);
  // Only platform admins choose a team; everyone else lists their own (no `team` sent).
  const team = isPlatformAdmin ? viewed : undefined;
  const users = useQuery({ queryKey: ['admin', 'users', team ?? 'own'], queryFn: () => client.listUsers(team), retry: adminRetry });
  const issue = useMutation({
    mutationFn: ({ user, body }: { user: UserItem; body: NewKeyInput }) => client.createUserApiKey(user.uid, body),
    // The key lives only in this mutation's state: gone from react-query when "Done" resets it.
    gcTime: 0,
    onSuccess: (created, { user }) => {
      setIssuingFor(null);
      onStatus(`Issued the key ${created.name} for ${user.email}.`);
      if (user.uid === session.user.uid) void queryClient.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  const choices = teams ?? [session.team];
  return (
    <section aria-labelledby="admin-users-h">
      <h2 id="admin-users-h">Users</h2>
      {isPlatformAdmin && choices.length > 1 ? (
        <div className="field">
          <label htmlFor="users-team">Team</label>
          <select
            id="users-team"
            value={viewed}
            onChange={(e) => {
              setViewed(e.target.value);
              setFormTeam(e.target.value);
              setIssuingFor(null);
            }}
          >
            {choices.map((t) => (
              <option key={t.uid} value={t.uid}>
                {t.name}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      {issue.data ? (
        <ShownOnce heading={`New key ${issue.data.name} for ${issue.variables.user.email}`} level={3} what="key" secret={issue.data.key} onDone={() => issue.reset()}>
          <p>Give it to them over a private channel: whoever holds it acts as them.</p>
        </ShownOnce>
      ) : null}
      {users.isPending ? (
        <Loading what="Loading the users" />
      ) : users.isError ? (
        <AdminQueryError error={users.error} needs="Listing users needs an admin." />
      ) : users.data.users.length === 0 ? (
        <p className="muted">No users in this team.</p>
      ) : (
        <div className="table-scroll">
          <table className="list" aria-label="Users">
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Display name</th>
                <th scope="col">Role</th>
                <th scope="col">UID</th>
                <th scope="col">Created</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {users.data.users.map((u) => (
                <UserRow
                  key={u.uid}
                  user={u}
                  open={issuingFor === u.uid}
                  // A key is on show: issue the next one after "Done", so it is not lost.
                  blocked={issue.data !== undefined}
                  busy={issue.isPending}
                  error={issue.variables?.user.uid === u.uid ? issue.error : null}
                  onOpen={() => {
                    issue.reset();
                    setIssuingFor(u.uid);
                  }}
                  onClose={() => setIssuingFor(null)}
                  onIssue={(body) => issue.mutate({ user: u, body })}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h3 id="admin-new-user-h">New user</h3>
      <CreateUserForm teams={choices} team={formTeam} onTeam={setFormTeam} onCreated={(u) => onStatus(`Created ${u.role === 'admin' ? 'the admin' : 'the user'} ${u.email}.`)} />
    </section>
  );
}

function UserRow({
  user,
  open,
  blocked,
  busy,
  error,
  onOpen,
  onClose,
  onIssue,
}: {
  user: UserItem;
  open: boolean;
  blocked: boolean;
  busy: boolean;
  error: unknown;
  onOpen: () => void;
  onClose: () => void;
  onIssue: (body: NewKeyInput) => void;
}): ReactNode {
  const formId = `issue-${user.uid}`;
  return (
    <>
      <tr>
        <th scope="row">{user.email}</th>
        <td>{user.display_name ?? <span className="muted">—</span>}</td>
        <td>
          <span className="badge">{user.role}</span>
        </td>
        <td>
          <code>{user.uid}</code>
        </td>
        <td>
          <TimeAgo iso={user.created_at} />
        </td>
        <td>
          <button
            type="button"
            aria-expanded={open}
            aria-controls={formId}
            aria-label={`Issue a key for ${user.email}`}
            disabled={blocked && !open}
            onClick={open ? onClose : onOpen}
          >
            Issue key
          </button>
        </td>
      </tr>
      {open ? (
        <tr id={formId}>
          <td colSpan={COLUMNS}>
            <KeyForm idPrefix={formId} label={`New key for ${user.email}`} submit="Issue key" busy={busy} error={error} onSubmit={onIssue} onCancel={onClose} />
          </td>
        </tr>
      ) : null}
    </>
  );
}
