import { useQuery } from '@tanstack/react-query';
import { useMemo, useState, type ReactNode } from 'react';
import { HARNESS_TYPES, type HarnessType } from '../../../../src/core/run.js';
import { OVERLAP_POLICIES, type OverlapPolicy } from '../../../../src/core/schedule.js';
import { client, errorField } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { browserTimeZone, describeCron, inZone, timeZones, upcoming } from './cron.js';
import { hasAuthSecret, OVERLAP_LABELS, type ScheduleForm as Form } from './form-values.js';

/** The API's field names the form has (docs/schedules.md, `createScheduleSchema`/`updateScheduleSchema`). */
const FIELDS = [
  'name',
  'cron_schedule',
  'timezone',
  'overlap_policy',
  'enabled',
  'team',
  'prompt',
  'agent_config.environment_id',
  'agent_config.harness',
  'agent_config.harness_auth_secrets',
  'agent_config.model_id',
  'agent_config.secrets',
  'agent_config.max_steps',
  'agent_config.max_tokens',
  'agent_config.max_runtime_seconds',
  'agent_config.idle_timeout_minutes',
  'agent_config.worker_host',
  'agent_config.snapshot',
] as const;

const PREVIEW_SLOTS = 3;

type TextKey =
  | 'name'
  | 'cron'
  | 'timezone'
  | 'prompt'
  | 'environment'
  | 'command'
  | 'claudeSecret'
  | 'codexSecret'
  | 'model'
  | 'secrets'
  | 'maxSteps'
  | 'maxTokens'
  | 'maxRuntime'
  | 'idleTimeout'
  | 'workerHost';

/** A checkbox with the API's error for its field below it. */
function Check({
  id,
  checked,
  onChange,
  error,
  children,
}: {
  id: string;
  checked: boolean;
  onChange: (checked: boolean) => void;
  error: string | undefined;
  children: ReactNode;
}): ReactNode {
  return (
    <div className={error ? 'field-invalid' : undefined}>
      <label className="check">
        <input id={id} type="checkbox" checked={checked} onChange={(e) => onChange(e.target.checked)} {...describedBy(id, error)} /> {children}
      </label>
      {error ? (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** The cron expression as the browser reads it, and its next slots in the time zone: a preview; the API decides. */
function CronPreview({ cron, timezone }: { cron: string; timezone: string }): ReactNode {
  const description = describeCron(cron);
  const next = upcoming(cron, timezone, PREVIEW_SLOTS);
  if (!description) return 'Five fields: minute hour day-of-month month day-of-week, e.g. 0 3 * * 1-5.';
  return (
    <>
      {description}
      {next.length > 0 ? ` (${timezone.trim() || 'UTC'}). Next: ${next.map((d) => inZone(d, timezone.trim() || 'UTC')).join('; ')}.` : '.'}
    </>
  );
}

/**
 * The schedule form, for create and edit (a PUT replaces the schedule, so
 * the edit form holds every field). The API's error appears at the field it
 * names.
 */
export function ScheduleForm({
  initial,
  mode,
  error,
  pending,
  onSubmit,
  onCancel,
  environmentName,
}: {
  initial: Form;
  mode: 'create' | 'edit';
  error: unknown;
  pending: boolean;
  onSubmit: (form: Form) => void;
  onCancel?: () => void;
  /** The current environment's name when the list does not have it (the schedule resolves it). */
  environmentName?: string | undefined;
}): ReactNode {
  const [form, setForm] = useState<Form>(initial);
  const environments = useQuery({ queryKey: ['environments'], queryFn: () => client.listEnvironments() });
  const models = useQuery({ queryKey: ['models'], queryFn: () => client.listModels() });
  const zones = useMemo(timeZones, []);
  const myZone = useMemo(browserTimeZone, []);
  const errors = useFieldErrors(error, FIELDS);
  const set =
    (name: TextKey) =>
    (e: { target: { value: string } }): void =>
      setForm((f) => ({ ...f, [name]: e.target.value }));
  const at = (field: (typeof FIELDS)[number]): string | undefined => errors.at(field);
  // A command's error is the command field's; any other harness error the select's.
  const commandError = form.harness === 'command' && errorField(error)?.startsWith('agent_config.harness.command') ? at('agent_config.harness') : undefined;
  const harnessError = commandError ? undefined : at('agent_config.harness');
  const envList = environments.data?.environments ?? [];
  const modelList = models.data?.models ?? [];
  // A value the lists do not have (an environment gone or not visible, a model the catalog dropped) stays selectable: the form never changes it silently.
  const unlistedEnvironment = form.environment && !envList.some((e) => e.uid === form.environment) ? form.environment : null;
  const unlistedModel = form.model && !modelList.some((m) => m.id === form.model) ? form.model : null;

  return (
    <form
      className="form"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit(form);
      }}
    >
      <FormError message={errors.general} />
      <Field id="sched-name" label="Name" error={at('name')}>
        <input id="sched-name" name="name" required value={form.name} onChange={set('name')} {...describedBy('sched-name', at('name'))} />
      </Field>
      <Field id="sched-cron" label="Cron expression" error={at('cron_schedule')} hint={<CronPreview cron={form.cron} timezone={form.timezone} />}>
        <input
          id="sched-cron"
          name="cron_schedule"
          required
          spellCheck={false}
          autoComplete="off"
          placeholder="0 3 * * *"
          value={form.cron}
          onChange={set('cron')}
          {...describedBy('sched-cron', at('cron_schedule'), true)}
        />
      </Field>
      <Field
        id="sched-timezone"
        label="Time zone"
        error={at('timezone')}
        hint={
          <>
            The IANA time zone the expression is read in, e.g. UTC or Europe/Berlin.
            {myZone && myZone !== form.timezone.trim() ? (
              <>
                {' '}
                <button type="button" onClick={() => setForm((f) => ({ ...f, timezone: myZone }))}>
                  Use mine ({myZone})
                </button>
              </>
            ) : null}
          </>
        }
      >
        <input
          id="sched-timezone"
          name="timezone"
          list="sched-timezones"
          spellCheck={false}
          autoComplete="off"
          value={form.timezone}
          onChange={set('timezone')}
          {...describedBy('sched-timezone', at('timezone'), true)}
        />
      </Field>
      <datalist id="sched-timezones">
        {zones.map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      <Field id="sched-overlap" label="While the previous run still goes" error={at('overlap_policy')}>
        <select
          id="sched-overlap"
          name="overlap_policy"
          value={form.overlap}
          onChange={(e) => setForm((f) => ({ ...f, overlap: e.target.value as OverlapPolicy }))}
          {...describedBy('sched-overlap', at('overlap_policy'))}
        >
          {OVERLAP_POLICIES.map((p) => (
            <option key={p} value={p}>
              {OVERLAP_LABELS[p]}
            </option>
          ))}
        </select>
      </Field>
      <Check id="sched-enabled" checked={form.enabled} onChange={(enabled) => setForm((f) => ({ ...f, enabled }))} error={at('enabled')}>
        {mode === 'create' ? 'Enabled: start firing at the next slot' : 'Enabled (unchecked: paused)'}
      </Check>
      {mode === 'create' ? (
        <fieldset aria-describedby={at('team') ? 'sched-team-error' : undefined}>
          <legend>Who can see and change it</legend>
          <label className="check">
            <input type="radio" name="team" checked={form.team} onChange={() => setForm((f) => ({ ...f, team: true }))} /> The team
          </label>
          <label className="check">
            <input type="radio" name="team" checked={!form.team} onChange={() => setForm((f) => ({ ...f, team: false }))} /> Only me (personal)
          </label>
          {at('team') ? (
            <p className="field-error" id="sched-team-error" role="alert">
              {at('team')}
            </p>
          ) : null}
        </fieldset>
      ) : null}
      <Field id="sched-prompt" label="Prompt" error={at('prompt')} hint="What the agent should do, each time.">
        <textarea id="sched-prompt" name="prompt" rows={6} required value={form.prompt} onChange={set('prompt')} {...describedBy('sched-prompt', at('prompt'), true)} />
      </Field>
      <Field id="sched-environment" label="Environment" error={at('agent_config.environment_id')} hint="Its repositories, image, setup commands and secrets.">
        <select
          id="sched-environment"
          name="environment_id"
          value={form.environment}
          onChange={set('environment')}
          {...describedBy('sched-environment', at('agent_config.environment_id'), true)}
        >
          <option value="">None (an empty workspace)</option>
          {envList.map((e) => (
            <option key={e.uid} value={e.uid}>
              {e.config.name}
              {e.scope.type === 'User' ? ' (personal)' : ''}
            </option>
          ))}
          {unlistedEnvironment ? <option value={unlistedEnvironment}>{environmentName ?? `${unlistedEnvironment} (not in your list)`}</option> : null}
        </select>
      </Field>
      <Field id="sched-harness" label="Harness" error={harnessError}>
        <select
          id="sched-harness"
          name="harness"
          value={form.harness}
          onChange={(e) => setForm((f) => ({ ...f, harness: e.target.value as HarnessType }))}
          {...describedBy('sched-harness', harnessError)}
        >
          {HARNESS_TYPES.map((h) => (
            <option key={h} value={h}>
              {h === 'oz' ? 'oz (the built-in agent)' : h === 'command' ? 'command (a shell script)' : h}
            </option>
          ))}
        </select>
      </Field>
      {form.harness === 'command' ? (
        <Field id="sched-command" label="Command" error={commandError} hint="Run with sh -c in the workspace.">
          <textarea
            id="sched-command"
            name="command"
            rows={3}
            spellCheck={false}
            value={form.command}
            onChange={set('command')}
            {...describedBy('sched-command', commandError, true)}
          />
        </Field>
      ) : null}
      {hasAuthSecret(form.harness) ? (
        <Field
          id="sched-auth-secret"
          label={`${form.harness === 'claude' ? 'Claude Code' : 'Codex'} key secret (optional)`}
          error={at('agent_config.harness_auth_secrets')}
          hint="The secret whose value is the CLI's API key; none: a harness key attached to the environment, else the worker's key."
        >
          <input
            id="sched-auth-secret"
            name="harness_auth_secret"
            spellCheck={false}
            value={form.harness === 'claude' ? form.claudeSecret : form.codexSecret}
            onChange={set(form.harness === 'claude' ? 'claudeSecret' : 'codexSecret')}
            {...describedBy('sched-auth-secret', at('agent_config.harness_auth_secrets'), true)}
          />
        </Field>
      ) : null}
      <Field id="sched-model" label="Model" error={at('agent_config.model_id')}>
        <select id="sched-model" name="model_id" value={form.model} onChange={set('model')} {...describedBy('sched-model', at('agent_config.model_id'))}>
          <option value="">Default{models.data?.default_model_id ? ` (${models.data.default_model_id})` : ''}</option>
          {modelList.map((m) => (
            <option key={m.id} value={m.id}>
              {m.display_name && m.display_name !== m.id ? `${m.display_name} (${m.id})` : m.id}
            </option>
          ))}
          {unlistedModel ? <option value={unlistedModel}>{unlistedModel}</option> : null}
        </select>
      </Field>
      <Field
        id="sched-secrets"
        label="Secrets (optional)"
        error={at('agent_config.secrets')}
        hint="Names of secrets the runs may use, separated by commas; none: all the environment allows. Never the owner's personal secrets."
      >
        <input
          id="sched-secrets"
          name="secrets"
          spellCheck={false}
          value={form.secrets}
          onChange={set('secrets')}
          {...describedBy('sched-secrets', at('agent_config.secrets'), true)}
        />
      </Field>
      <fieldset>
        <legend>Budgets per run (optional)</legend>
        <Field id="sched-max-steps" label="Max steps" error={at('agent_config.max_steps')} hint="The built-in agent's.">
          <input
            id="sched-max-steps"
            name="max_steps"
            inputMode="numeric"
            value={form.maxSteps}
            onChange={set('maxSteps')}
            {...describedBy('sched-max-steps', at('agent_config.max_steps'), true)}
          />
        </Field>
        <Field id="sched-max-tokens" label="Max tokens" error={at('agent_config.max_tokens')} hint="Input plus output.">
          <input
            id="sched-max-tokens"
            name="max_tokens"
            inputMode="numeric"
            value={form.maxTokens}
            onChange={set('maxTokens')}
            {...describedBy('sched-max-tokens', at('agent_config.max_tokens'), true)}
          />
        </Field>
        <Field id="sched-max-runtime" label="Max runtime (seconds)" error={at('agent_config.max_runtime_seconds')}>
          <input
            id="sched-max-runtime"
            name="max_runtime_seconds"
            inputMode="numeric"
            value={form.maxRuntime}
            onChange={set('maxRuntime')}
            {...describedBy('sched-max-runtime', at('agent_config.max_runtime_seconds'))}
          />
        </Field>
        <Field id="sched-idle-timeout" label="Keep the sandbox for follow-ups (minutes)" error={at('agent_config.idle_timeout_minutes')}>
          <input
            id="sched-idle-timeout"
            name="idle_timeout_minutes"
            inputMode="numeric"
            value={form.idleTimeout}
            onChange={set('idleTimeout')}
            {...describedBy('sched-idle-timeout', at('agent_config.idle_timeout_minutes'))}
          />
        </Field>
      </fieldset>
      <Field
        id="sched-worker-host"
        label="Worker (optional)"
        error={at('agent_config.worker_host')}
        hint="The name or label of the workers its runs go to; none: the environment's, else any worker."
      >
        <input
          id="sched-worker-host"
          name="worker_host"
          spellCheck={false}
          value={form.workerHost}
          onChange={set('workerHost')}
          {...describedBy('sched-worker-host', at('agent_config.worker_host'), true)}
        />
      </Field>
      <Check id="sched-snapshot" checked={form.snapshot} onChange={(snapshot) => setForm((f) => ({ ...f, snapshot }))} error={at('agent_config.snapshot')}>
        Start each run warm from the environment&apos;s snapshot when one matches
      </Check>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={pending}>
          {pending ? 'Saving…' : mode === 'create' ? 'Create schedule' : 'Save changes'}
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
