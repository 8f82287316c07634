import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { CreateUserInput, TeamItem, UserItem } from '../../../../src/api/identity.js';
import { client } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';

const FIELDS = ['team', 'email', 'display_name', 'role'] as const;

/** A new user (`POST /admin/users`): admins in their own team, platform admins in any. */
export function CreateUserForm({
  teams,
  team,
  onTeam,
  onCreated,
}: {
  /** The teams to choose from (an admin of another team: only their own). */
  teams: readonly Pick<TeamItem, 'uid' | 'name'>[];
  team: string;
  onTeam: (uid: string) => void;
  onCreated: (user: UserItem) => void;
}): ReactNode {
  const queryClient = useQueryClient();
  const [email, setEmail] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [role, setRole] = useState<'member' | 'admin'>('member');
  const create = useMutation({
    mutationFn: (body: CreateUserInput) => client.createUser(body),
    onSuccess: (user) => {
      setEmail('');
      setDisplayName('');
      setRole('member');
      void queryClient.invalidateQueries({ queryKey: ['admin', 'users'] });
      onCreated(user);
    },
  });
  const errors = useFieldErrors(create.error, FIELDS);
  return (
    <form
      className="form"
      noValidate
      aria-labelledby="admin-new-user-h"
      onSubmit={(e) => {
        e.preventDefault();
        const name = displayName.trim();
        create.mutate({ team, email: email.trim(), role, ...(name ? { display_name: name } : {}) });
      }}
    >
      <FormError message={errors.general} />
      <Field id="user-team" label="Team" error={errors.at('team')}>
        <select id="user-team" name="team" value={team} onChange={(e) => onTeam(e.target.value)} disabled={teams.length < 2} {...describedBy('user-team', errors.at('team'))}>
          {teams.map((t) => (
            <option key={t.uid} value={t.uid}>
              {t.name}
            </option>
          ))}
        </select>
      </Field>
      <Field id="user-email" label="Email" error={errors.at('email')}>
        <input
          id="user-email"
          name="email"
          type="email"
          autoComplete="off"
          spellCheck={false}
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          {...describedBy('user-email', errors.at('email'))}
        />
      </Field>
      <Field id="user-display-name" label="Display name (optional)" error={errors.at('display_name')}>
        <input
          id="user-display-name"
          name="display_name"
          autoComplete="off"
          value={displayName}
          onChange={(e) => setDisplayName(e.target.value)}
          {...describedBy('user-display-name', errors.at('display_name'))}
        />
      </Field>
      <Field id="user-role" label="Role" error={errors.at('role')} hint="An admin manages the team's users and can issue their keys (and so act as them).">
        <select
          id="user-role"
          name="role"
          value={role}
          onChange={(e) => setRole(e.target.value === 'admin' ? 'admin' : 'member')}
          {...describedBy('user-role', errors.at('role'), true)}
        >
          <option value="member">Member</option>
          <option value="admin">Admin</option>
        </select>
      </Field>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create user'}
        </button>
      </div>
    </form>
  );
}
