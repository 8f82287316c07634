import { useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { LimitsItem } from '../../../../src/api/environments.js';
import { NETWORK_POLICIES, type NetworkPolicy } from '../../../../src/core/environment.js';
import { client } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { LIMITS, parseVars, type EnvironmentForm as Form, type LimitKey } from './form-values.js';

/** The API's field names the form has, the limits' own before `limits` (the first that matches shows the error). */
const FIELDS = [
  'name',
  'description',
  'team',
  'devcontainer',
  'repos',
  'github_repos',
  'docker_image',
  'agent_user',
  'setup_commands',
  'maintenance_commands',
  'network',
  'allow_domains',
  'allow_presets',
  'worker_host',
  'secrets',
  'env',
  ...LIMITS.map((l) => `limits.${l.key}`),
  'limits',
] as const;

type TextKey = Exclude<keyof Form, 'limits' | 'team' | 'network'>;

/** "Team default 3600, at most 86400": what applies where the field is empty, from `/me`. */
function limitHint(key: LimitKey, limits: { defaults: LimitsItem; maxima: LimitsItem } | undefined, own?: string): string | undefined {
  const parts = [
    own,
    limits?.defaults[key] !== undefined ? `Team default ${limits.defaults[key]}` : null,
    limits?.maxima[key] !== undefined ? `at most ${limits.maxima[key]}` : null,
  ];
  const text = parts.filter(Boolean).join(', ');
  return text || undefined;
}

/**
 * The environment form, for create and edit. It only collects text; the
 * caller turns it into the request, and the API's error appears at the field
 * it names.
 */
export function EnvironmentForm({
  initial,
  mode,
  error,
  pending,
  onSubmit,
  onCancel,
}: {
  initial: Form;
  mode: 'create' | 'edit';
  error: unknown;
  pending: boolean;
  onSubmit: (form: Form) => void;
  onCancel?: () => void;
}): ReactNode {
  const [form, setForm] = useState<Form>(initial);
  const [varsProblem, setVarsProblem] = useState<string | null>(null);
  const me = useQuery({ queryKey: ['me'], queryFn: () => client.whoami(), retry: false, staleTime: 60_000 });
  const errors = useFieldErrors(error, FIELDS);
  const set =
    (name: TextKey) =>
    (e: { target: { value: string } }): void =>
      setForm((f) => ({ ...f, [name]: e.target.value }));
  const setLimit =
    (key: LimitKey) =>
    (e: { target: { value: string } }): void =>
      setForm((f) => ({ ...f, limits: { ...f.limits, [key]: e.target.value } }));
  const reposError = errors.at('repos') ?? errors.at('github_repos');
  const varsError = varsProblem ?? errors.at('env');
  const limitsError = errors.at('limits');
  const limits = me.data?.limits;

  return (
    <form
      className="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        const problem = parseVars(form.vars).problem;
        setVarsProblem(problem);
        if (problem === null) onSubmit(form);
      }}
    >
      <FormError message={errors.general} />
      <Field id="env-name" label="Name" error={errors.at('name')}>
        <input id="env-name" name="name" required value={form.name} onChange={set('name')} {...describedBy('env-name', errors.at('name'))} />
      </Field>
      <Field id="env-description" label="Description (optional)" error={errors.at('description')} hint="At most 240 characters.">
        <input id="env-description" name="description" value={form.description} onChange={set('description')} {...describedBy('env-description', errors.at('description'), true)} />
      </Field>
      {mode === 'create' ? (
        <fieldset aria-describedby={errors.at('team') ? 'env-team-error' : undefined}>
          <legend>Who can use it</legend>
          <label className="check">
            <input type="radio" name="team" checked={form.team} onChange={() => setForm((f) => ({ ...f, team: true }))} /> The team: every member can use and change it
          </label>
          <label className="check">
            <input type="radio" name="team" checked={!form.team} onChange={() => setForm((f) => ({ ...f, team: false }))} /> Only me (personal)
          </label>
          {errors.at('team') ? (
            <p className="field-error" id="env-team-error" role="alert">
              {errors.at('team')}
            </p>
          ) : null}
        </fieldset>
      ) : null}
      {mode === 'create' ? (
        <Field
          id="env-devcontainer"
          label="From a devcontainer.json (optional)"
          error={errors.at('devcontainer')}
          hint="owner/repo or owner/repo:path/to/devcontainer.json on GitHub, read once now: its image, variables, user and lifecycle commands. The fields filled in below win over the file's."
        >
          <input
            id="env-devcontainer"
            name="devcontainer"
            value={form.devcontainer}
            onChange={set('devcontainer')}
            placeholder="owner/repo"
            {...describedBy('env-devcontainer', errors.at('devcontainer'), true)}
          />
        </Field>
      ) : null}
      <Field
        id="env-repos"
        label="Repositories"
        error={reposError}
        hint="One per line, cloned into /workspace: owner/repo (GitHub), any git URL (https://, ssh://, git://, file://, user@host:path) or an absolute local path; add @branch to pick a branch."
      >
        <textarea
          id="env-repos"
          name="repos"
          rows={3}
          spellCheck={false}
          value={form.repos}
          onChange={set('repos')}
          placeholder="acme/api"
          {...describedBy('env-repos', reposError, true)}
        />
      </Field>
      <Field id="env-image" label="Docker image (optional)" error={errors.at('docker_image')} hint="The OCI image runs execute on, e.g. node:22; none: the worker host's system.">
        <input id="env-image" name="docker_image" spellCheck={false} value={form.image} onChange={set('image')} {...describedBy('env-image', errors.at('docker_image'), true)} />
      </Field>
      <Field
        id="env-agent-user"
        label="Agent user (optional)"
        error={errors.at('agent_user')}
        hint="On the image, whom the agent runs as (name, uid, name:group or uid:gid); none: the image's USER."
      >
        <input
          id="env-agent-user"
          name="agent_user"
          spellCheck={false}
          value={form.agentUser}
          onChange={set('agentUser')}
          {...describedBy('env-agent-user', errors.at('agent_user'), true)}
        />
      </Field>
      <Field
        id="env-setup"
        label="Setup commands"
        error={errors.at('setup_commands')}
        hint="One shell command line per line, run in order after cloning on a cold start; a worker with snapshots keeps their result for the next runs."
      >
        <textarea
          id="env-setup"
          name="setup_commands"
          rows={4}
          spellCheck={false}
          value={form.setup}
          onChange={set('setup')}
          {...describedBy('env-setup', errors.at('setup_commands'), true)}
        />
      </Field>
      <Field
        id="env-maintenance"
        label="Maintenance commands"
        error={errors.at('maintenance_commands')}
        hint="One per line, run in every run once setup's state is in place (after setup, or after a warm start's restore), e.g. npm install."
      >
        <textarea
          id="env-maintenance"
          name="maintenance_commands"
          rows={3}
          spellCheck={false}
          value={form.maintenance}
          onChange={set('maintenance')}
          {...describedBy('env-maintenance', errors.at('maintenance_commands'), true)}
        />
      </Field>
      <Field id="env-network" label="Network" error={errors.at('network')}>
        <select
          id="env-network"
          name="network"
          value={form.network}
          onChange={(e) => setForm((f) => ({ ...f, network: e.target.value as NetworkPolicy }))}
          {...describedBy('env-network', errors.at('network'))}
        >
          {NETWORK_POLICIES.map((n) => (
            <option key={n} value={n}>
              {n === 'off' ? 'Off: no network in the sandbox' : n === 'allowlist' ? 'Allowlist: only the domains below, through the worker’s proxy' : 'On: any public address'}
            </option>
          ))}
        </select>
      </Field>
      {form.network === 'allowlist' ? (
        <>
          <Field
            id="env-allow-domains"
            label="Allowed domains"
            error={errors.at('allow_domains')}
            hint="One per line: example.com, *.example.com (every name under it), either with :port (else 80 and 443)."
          >
            <textarea
              id="env-allow-domains"
              name="allow_domains"
              rows={3}
              spellCheck={false}
              value={form.allowDomains}
              onChange={set('allowDomains')}
              {...describedBy('env-allow-domains', errors.at('allow_domains'), true)}
            />
          </Field>
          <Field
            id="env-allow-presets"
            label="Allowed presets"
            error={errors.at('allow_presets')}
            hint="Named sets of hosts, separated by commas: npm, pypi, crates, go, maven, rubygems, debian, github."
          >
            <input
              id="env-allow-presets"
              name="allow_presets"
              spellCheck={false}
              value={form.allowPresets}
              onChange={set('allowPresets')}
              {...describedBy('env-allow-presets', errors.at('allow_presets'), true)}
            />
          </Field>
        </>
      ) : null}
      <Field id="env-secrets" label="Secrets" error={errors.at('secrets')} hint="Names of the secrets its runs get, separated by commas.">
        <input id="env-secrets" name="secrets" spellCheck={false} value={form.secrets} onChange={set('secrets')} {...describedBy('env-secrets', errors.at('secrets'), true)} />
      </Field>
      <Field id="env-vars" label="Environment variables" error={varsError} hint="One NAME=value per line: plain (not secret) variables for every process of a run.">
        <textarea
          id="env-vars"
          name="env"
          rows={3}
          spellCheck={false}
          value={form.vars}
          onChange={set('vars')}
          placeholder="NODE_ENV=test"
          {...describedBy('env-vars', varsError, true)}
        />
      </Field>
      <Field
        id="env-worker-host"
        label="Worker (optional)"
        error={errors.at('worker_host')}
        hint="The name or label of the workers its runs go to when a run names none; none: any worker."
      >
        <input
          id="env-worker-host"
          name="worker_host"
          spellCheck={false}
          value={form.workerHost}
          onChange={set('workerHost')}
          {...describedBy('env-worker-host', errors.at('worker_host'), true)}
        />
      </Field>
      <fieldset aria-describedby={limitsError ? 'env-limits-error' : undefined}>
        <legend>Limits per run (optional)</legend>
        {limitsError ? (
          <p className="field-error" id="env-limits-error" role="alert">
            {limitsError}
          </p>
        ) : null}
        {LIMITS.map(({ key, label, hint }) => {
          const id = `env-limit-${key}`;
          const fieldError = errors.at(`limits.${key}`);
          const fieldHint = limitHint(key, limits, hint);
          return (
            <Field key={key} id={id} label={label} error={fieldError} {...(fieldHint ? { hint: fieldHint } : {})}>
              <input
                id={id}
                name={`limits.${key}`}
                inputMode={key === 'cpus' ? 'decimal' : 'numeric'}
                value={form.limits[key]}
                onChange={setLimit(key)}
                {...describedBy(id, fieldError, Boolean(fieldHint))}
              />
            </Field>
          );
        })}
      </fieldset>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={pending}>
          {pending ? 'Saving…' : mode === 'create' ? 'Create environment' : 'Save changes'}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel} disabled={pending}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
