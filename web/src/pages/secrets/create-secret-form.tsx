import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { CreateSecretInput, SecretItem } from '../../../../src/api/secrets.js';
import { BASE_URL_TYPES, SECRET_TYPES, type SecretType } from '../../../../src/core/secret.js';
import { client } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { useTakeOnce } from './take-once.js';

const FIELDS = ['name', 'team', 'type', 'value', 'description', 'base_url', 'setup_only'] as const;

/** What each type becomes in a run (docs/secrets.md). */
export const TYPE_HINTS: Record<SecretType, string> = {
  'raw-value': 'Becomes a variable of its own name.',
  'anthropic-api-key': 'Becomes ANTHROPIC_API_KEY.',
  'openai-api-key': 'Becomes OPENAI_API_KEY.',
  'github-token': 'Becomes GITHUB_TOKEN.',
  'claude-api-key': "The Claude Code harness's key: held by the model proxy, never a variable in the sandbox.",
  'codex-api-key': "The Codex harness's key: held by the model proxy, never a variable in the sandbox; may name an OpenAI-compatible base URL.",
  'registry-auth': 'Credentials for pulling an environment’s image: the value is registry/username:password (e.g. ghcr.io/octocat:TOKEN); never a variable in the sandbox.',
};

type Form = { name: string; scope: 'team' | 'personal'; type: SecretType; value: string; description: string; baseUrl: string; setupOnly: boolean };
const EMPTY: Form = { name: '', scope: 'team', type: 'raw-value', value: '', description: '', baseUrl: '', setupOnly: false };

/** Create a secret. The value is cleared from the form as soon as it is sent and never shown. */
export function CreateSecretForm({ onCreated }: { onCreated: (secret: SecretItem) => void }): ReactNode {
  const queryClient = useQueryClient();
  const [form, setForm] = useState<Form>(EMPTY);
  const value = useTakeOnce();
  const create = useMutation({
    mutationFn: (meta: Omit<CreateSecretInput, 'value'>) => client.createSecret({ ...meta, value: value.take() }),
    onSuccess: (secret) => {
      setForm(EMPTY);
      void queryClient.invalidateQueries({ queryKey: ['secrets'] });
      onCreated(secret);
    },
  });
  const errors = useFieldErrors(create.error, FIELDS);
  const set =
    (name: 'name' | 'description' | 'baseUrl' | 'value') =>
    (e: { target: { value: string } }): void =>
      setForm((f) => ({ ...f, [name]: e.target.value }));
  const takesBaseUrl = BASE_URL_TYPES.includes(form.type);
  return (
    <form
      className="form"
      noValidate
      aria-labelledby="secrets-new-h"
      onSubmit={(e) => {
        e.preventDefault();
        const description = form.description.trim();
        const baseUrl = form.baseUrl.trim();
        value.put(form.value);
        setForm((f) => ({ ...f, value: '' }));
        create.mutate({
          name: form.name.trim(),
          team: form.scope === 'team',
          type: form.type,
          ...(description ? { description } : {}),
          ...(takesBaseUrl && baseUrl ? { base_url: baseUrl } : {}),
          ...(form.setupOnly ? { setup_only: true } : {}),
        });
      }}
    >
      <FormError message={errors.general} />
      <Field id="secret-name" label="Name" error={errors.at('name')} hint="An environment variable name, e.g. NPM_TOKEN; environments and runs attach it by this name.">
        <input
          id="secret-name"
          name="name"
          autoComplete="off"
          spellCheck={false}
          value={form.name}
          onChange={set('name')}
          {...describedBy('secret-name', errors.at('name'), true)}
        />
      </Field>
      <Field id="secret-scope" label="Scope" error={errors.at('team')} hint="A team secret is there for every member's runs; a personal one only for yours.">
        <select
          id="secret-scope"
          name="scope"
          value={form.scope}
          onChange={(e) => setForm((f) => ({ ...f, scope: e.target.value === 'personal' ? 'personal' : 'team' }))}
          {...describedBy('secret-scope', errors.at('team'), true)}
        >
          <option value="team">Team</option>
          <option value="personal">Personal</option>
        </select>
      </Field>
      <Field id="secret-type" label="Type" error={errors.at('type')} hint={TYPE_HINTS[form.type]}>
        <select
          id="secret-type"
          name="type"
          value={form.type}
          onChange={(e) => setForm((f) => ({ ...f, type: e.target.value as SecretType }))}
          {...describedBy('secret-type', errors.at('type'), true)}
        >
          {SECRET_TYPES.map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </Field>
      <Field
        id="secret-value"
        label="Value"
        error={errors.at('value')}
        hint="Never shown again, here or anywhere; cleared from this form as soon as you send it. One line; for a multi-line value use oz secret create -f FILE."
      >
        <input
          id="secret-value"
          name="value"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={form.value}
          onChange={set('value')}
          {...describedBy('secret-value', errors.at('value'), true)}
        />
      </Field>
      <Field id="secret-description" label="Description (optional)" error={errors.at('description')}>
        <input id="secret-description" name="description" value={form.description} onChange={set('description')} {...describedBy('secret-description', errors.at('description'))} />
      </Field>
      {takesBaseUrl ? (
        <Field
          id="secret-base-url"
          label="Base URL (optional)"
          error={errors.at('base_url')}
          hint="An OpenAI-compatible server's /v1 base (http:// or https://); empty: the worker's OpenAI endpoint."
        >
          <input
            id="secret-base-url"
            name="base_url"
            type="url"
            spellCheck={false}
            value={form.baseUrl}
            onChange={set('baseUrl')}
            {...describedBy('secret-base-url', errors.at('base_url'), true)}
          />
        </Field>
      ) : null}
      <label className="check">
        <input
          id="secret-setup-only"
          type="checkbox"
          name="setup_only"
          checked={form.setupOnly}
          onChange={(e) => setForm((f) => ({ ...f, setupOnly: e.target.checked }))}
          {...describedBy('secret-setup-only', errors.at('setup_only'))}
        />{' '}
        Setup commands only (never the agent)
      </label>
      {errors.at('setup_only') ? (
        <p className="field-error" id="secret-setup-only-error" role="alert">
          {errors.at('setup_only')}
        </p>
      ) : null}
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create secret'}
        </button>
      </div>
    </form>
  );
}
