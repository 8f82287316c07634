import { useMutation, useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { useLocation, useSearch } from 'wouter';
import type { RunAgentRequestInput } from '../../../src/api/run-requests.js';
import { HARNESS_TYPES, type HarnessType } from '../../../src/core/run.js';
import { client } from '../api.js';
import { describedBy, Field, FormError, Page, submitOnCtrlEnter, useFieldErrors } from '../ui/components.js';

const FIELDS = [
  'prompt',
  'title',
  'config.environment_id',
  'config.harness',
  'config.model_id',
  'config.max_steps',
  'config.max_tokens',
  'config.max_runtime_seconds',
  'config.secrets',
  'config.idle_timeout_minutes',
] as const;

type Form = Record<'prompt' | 'title' | 'environment' | 'harness' | 'command' | 'model' | 'maxSteps' | 'maxTokens' | 'maxRuntime' | 'secrets' | 'idleTimeout', string>;

/**
 * A number field: empty is "not set"; a number goes as a number; anything else goes as typed
 * (a string), so the API names the field and says a number is expected (NaN would travel as null).
 */
const num = (text: string): number | undefined => {
  if (text.trim() === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : (text as unknown as number);
};

export function requestOf(form: Form, snapshot: boolean): RunAgentRequestInput {
  const secrets = form.secrets
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const config: NonNullable<RunAgentRequestInput['config']> = {
    // A command harness without a command runs the prompt as its script.
    harness: form.harness === 'command' && form.command.trim() ? { type: 'command', command: form.command } : { type: form.harness as HarnessType },
  };
  if (form.environment) config.environment_id = form.environment;
  if (form.model) config.model_id = form.model;
  const steps = num(form.maxSteps);
  if (steps !== undefined) config.max_steps = steps;
  const tokens = num(form.maxTokens);
  if (tokens !== undefined) config.max_tokens = tokens;
  const runtime = num(form.maxRuntime);
  if (runtime !== undefined) config.max_runtime_seconds = runtime;
  const idle = num(form.idleTimeout);
  if (idle !== undefined) config.idle_timeout_minutes = idle;
  if (secrets.length > 0) config.secrets = secrets;
  if (!snapshot) config.snapshot = false;
  return { prompt: form.prompt, ...(form.title.trim() ? { title: form.title.trim() } : {}), config };
}

/** Dispatch an agent: the API's validation errors appear at the field they name. */
export function NewRunPage(): ReactNode {
  const [, navigate] = useLocation();
  const search = new URLSearchParams(useSearch());
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  const models = useQuery({ queryKey: ['models'], queryFn: () => client.listModels() });
  const [form, setForm] = useState<Form>({
    prompt: '',
    title: '',
    environment: search.get('environment') ?? '',
    harness: 'oz',
    command: '',
    model: '',
    maxSteps: '',
    maxTokens: '',
    maxRuntime: '',
    secrets: '',
    idleTimeout: '',
  });
  const [snapshot, setSnapshot] = useState(true);
  const create = useMutation({ mutationFn: () => client.createRun(requestOf(form, snapshot)), onSuccess: (r) => navigate(`/runs/${encodeURIComponent(r.run_id)}`) });
  const errors = useFieldErrors(create.error, FIELDS);
  const set =
    (name: keyof Form) =>
    (e: { target: { value: string } }): void =>
      setForm((f) => ({ ...f, [name]: e.target.value }));
  const harnessError = errors.at('config.harness');
  return (
    <Page title="New run">
      <form
        className="form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          create.mutate();
        }}
      >
        <FormError message={errors.general} />
        <Field id="prompt" label="Prompt" error={errors.at('prompt')} hint="What the agent should do (Ctrl+Enter dispatches).">
          <textarea
            id="prompt"
            name="prompt"
            rows={6}
            value={form.prompt}
            onChange={set('prompt')}
            onKeyDown={submitOnCtrlEnter}
            {...describedBy('prompt', errors.at('prompt'), true)}
          />
        </Field>
        <Field id="title" label="Title (optional)" error={errors.at('title')}>
          <input id="title" name="title" value={form.title} onChange={set('title')} {...describedBy('title', errors.at('title'))} />
        </Field>
        <Field id="environment" label="Environment" error={errors.at('config.environment_id')} hint="Its repositories, image, setup commands and secrets.">
          <select
            id="environment"
            name="environment"
            value={form.environment}
            onChange={set('environment')}
            {...describedBy('environment', errors.at('config.environment_id'), true)}
          >
            <option value="">None (an empty workspace)</option>
            {(environments.data?.environments ?? []).map((e) => (
              <option key={e.uid} value={e.uid}>
                {e.config.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="harness" label="Harness" error={harnessError}>
          <select id="harness" name="harness" value={form.harness} onChange={set('harness')} {...describedBy('harness', harnessError)}>
            {HARNESS_TYPES.map((h) => (
              <option key={h} value={h}>
                {h === 'oz' ? 'oz (the built-in agent)' : h === 'command' ? 'command (a shell script)' : h}
              </option>
            ))}
          </select>
        </Field>
        {form.harness === 'command' ? (
          <Field id="command" label="Command" error={harnessError} hint="A shell script run in the workspace; empty: the prompt is the script.">
            <textarea id="command" name="command" rows={3} value={form.command} onChange={set('command')} {...describedBy('command', harnessError, true)} />
          </Field>
        ) : null}
        <Field id="model" label="Model" error={errors.at('config.model_id')}>
          <select id="model" name="model" value={form.model} onChange={set('model')} {...describedBy('model', errors.at('config.model_id'))}>
            <option value="">The deployment's default</option>
            {(models.data?.models ?? []).map((m) => (
              <option key={m.id} value={m.id}>
                {m.display_name && m.display_name !== m.id ? `${m.display_name} (${m.id})` : m.id}
              </option>
            ))}
          </select>
        </Field>
        <fieldset>
          <legend>Budgets (optional)</legend>
          <Field id="max-steps" label="Max steps" error={errors.at('config.max_steps')} hint="1–10000 (the built-in agent)">
            <input
              id="max-steps"
              name="max_steps"
              inputMode="numeric"
              value={form.maxSteps}
              onChange={set('maxSteps')}
              {...describedBy('max-steps', errors.at('config.max_steps'), true)}
            />
          </Field>
          <Field id="max-tokens" label="Max tokens" error={errors.at('config.max_tokens')} hint="Input plus output, 1000–10⁹">
            <input
              id="max-tokens"
              name="max_tokens"
              inputMode="numeric"
              value={form.maxTokens}
              onChange={set('maxTokens')}
              {...describedBy('max-tokens', errors.at('config.max_tokens'), true)}
            />
          </Field>
          <Field id="max-runtime" label="Max runtime (seconds)" error={errors.at('config.max_runtime_seconds')}>
            <input
              id="max-runtime"
              name="max_runtime_seconds"
              inputMode="numeric"
              value={form.maxRuntime}
              onChange={set('maxRuntime')}
              {...describedBy('max-runtime', errors.at('config.max_runtime_seconds'))}
            />
          </Field>
          <Field id="idle-timeout" label="Keep the sandbox for follow-ups (minutes)" error={errors.at('config.idle_timeout_minutes')} hint="0–60">
            <input
              id="idle-timeout"
              name="idle_timeout_minutes"
              inputMode="numeric"
              value={form.idleTimeout}
              onChange={set('idleTimeout')}
              {...describedBy('idle-timeout', errors.at('config.idle_timeout_minutes'), true)}
            />
          </Field>
        </fieldset>
        <Field
          id="secrets"
          label="Secrets (optional)"
          error={errors.at('config.secrets')}
          hint="Names of secrets the run may use, separated by commas; none: all the environment allows."
        >
          <input id="secrets" name="secrets" value={form.secrets} onChange={set('secrets')} {...describedBy('secrets', errors.at('config.secrets'), true)} />
        </Field>
        <label className="check">
          <input type="checkbox" checked={snapshot} onChange={(e) => setSnapshot(e.target.checked)} /> Start warm from the environment's snapshot when one matches
        </label>
        <div className="form-actions">
          <button type="submit" className="primary" disabled={create.isPending}>
            {create.isPending ? 'Dispatching…' : 'Dispatch'}
          </button>
        </div>
      </form>
    </Page>
  );
}
