import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { CreateTeamInput, TeamItem } from '../../../../src/api/identity.js';
import { client } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { LIMITS, type LimitName } from './limits.js';
import { numberOrTyped } from './number.js';

// Each ceiling before `limit_ceilings` itself: the first match wins.
const FIELDS = ['name', 'max_concurrent_runs', ...LIMITS.map((l) => `limit_ceilings.${l.name}`), 'limit_ceilings'] as const;

type Ceilings = Record<LimitName, string>;
const NO_CEILINGS = Object.fromEntries(LIMITS.map((l) => [l.name, ''])) as Ceilings;

function requestOf(name: string, maxRuns: string, ceilings: Ceilings): CreateTeamInput {
  const limits: NonNullable<CreateTeamInput['limit_ceilings']> = {};
  for (const { name: limit } of LIMITS) {
    const value = numberOrTyped(ceilings[limit]);
    if (value !== undefined) limits[limit] = value;
  }
  const runs = numberOrTyped(maxRuns);
  return { name: name.trim(), ...(runs !== undefined ? { max_concurrent_runs: runs } : {}), ...(Object.keys(limits).length > 0 ? { limit_ceilings: limits } : {}) };
}

/** A new team (platform admins; `POST /admin/teams`). */
export function CreateTeamForm({ onCreated }: { onCreated: (team: TeamItem) => void }): ReactNode {
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const [maxRuns, setMaxRuns] = useState('');
  const [ceilings, setCeilings] = useState<Ceilings>(NO_CEILINGS);
  const create = useMutation({
    mutationFn: (body: CreateTeamInput) => client.createTeam(body),
    onSuccess: (team) => {
      setName('');
      setMaxRuns('');
      setCeilings(NO_CEILINGS);
      void queryClient.invalidateQueries({ queryKey: ['admin', 'teams'] });
      onCreated(team);
    },
  });
  const errors = useFieldErrors(create.error, FIELDS);
  const ceilingsError = errors.at('limit_ceilings');
  return (
    <form
      className="form"
      noValidate
      aria-labelledby="admin-new-team-h"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate(requestOf(name, maxRuns, ceilings));
      }}
    >
      <FormError message={errors.general} />
      <Field id="team-name" label="Name" error={errors.at('name')}>
        <input id="team-name" name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} {...describedBy('team-name', errors.at('name'))} />
      </Field>
      <Field id="team-max-runs" label="Max concurrent runs (optional)" error={errors.at('max_concurrent_runs')} hint="1–10000; empty: the server's default.">
        <input
          id="team-max-runs"
          name="max_concurrent_runs"
          inputMode="numeric"
          value={maxRuns}
          onChange={(e) => setMaxRuns(e.target.value)}
          {...describedBy('team-max-runs', errors.at('max_concurrent_runs'), true)}
        />
      </Field>
      <fieldset aria-describedby={ceilingsError ? 'team-ceilings-hint team-ceilings-error' : 'team-ceilings-hint'}>
        <legend>Limit ceilings (optional)</legend>
        <p className="hint" id="team-ceilings-hint">
          The most this team's environments and runs may ask for, below the operator's maxima; empty: the operator's.
        </p>
        {ceilingsError ? (
          <p className="field-error" id="team-ceilings-error" role="alert">
            {ceilingsError}
          </p>
        ) : null}
        {LIMITS.map(({ name: limit, label }) => {
          const id = `team-ceiling-${limit}`;
          const error = errors.at(`limit_ceilings.${limit}`);
          return (
            <Field key={limit} id={id} label={label} error={error}>
              <input
                id={id}
                name={limit}
                inputMode={limit === 'cpus' ? 'decimal' : 'numeric'}
                value={ceilings[limit]}
                onChange={(e) => setCeilings((c) => ({ ...c, [limit]: e.target.value }))}
                {...describedBy(id, error)}
              />
            </Field>
          );
        })}
      </fieldset>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create team'}
        </button>
      </div>
    </form>
  );
}
