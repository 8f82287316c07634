import { useState, type ReactNode } from 'react';
import type { NewKeyInput } from '../../../../src/api/identity.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { expiresIn } from './expiry.js';

const FIELDS = ['name', 'expires_in_seconds'] as const;

/** A new API key's name and optional expiry (days), for yourself or (admins) for a user. */
export function KeyForm({
  idPrefix,
  label,
  submit,
  busy,
  error,
  onSubmit,
  onCancel,
}: {
  idPrefix: string;
  /** The form's accessible name. */
  label: string;
  submit: string;
  busy: boolean;
  error: unknown;
  onSubmit: (body: NewKeyInput) => void;
  onCancel?: () => void;
}): ReactNode {
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const errors = useFieldErrors(error, FIELDS);
  const nameId = `${idPrefix}-name`;
  const daysId = `${idPrefix}-expires`;
  return (
    <form
      className="form"
      noValidate
      aria-label={label}
      onSubmit={(e) => {
        e.preventDefault();
        onSubmit({ name: name.trim(), ...expiresIn(days) });
      }}
    >
      <FormError message={errors.general} />
      <Field id={nameId} label="Key name" error={errors.at('name')} hint="What it is for, e.g. laptop or ci.">
        <input id={nameId} name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} {...describedBy(nameId, errors.at('name'), true)} />
      </Field>
      <Field
        id={daysId}
        label="Expires after (days, optional)"
        error={errors.at('expires_in_seconds')}
        hint="Empty: never. The API counts in seconds: at least 60, at most 10 years."
      >
        <input
          id={daysId}
          name="expires_in_days"
          inputMode="decimal"
          autoComplete="off"
          value={days}
          onChange={(e) => setDays(e.target.value)}
          {...describedBy(daysId, errors.at('expires_in_seconds'), true)}
        />
      </Field>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : submit}
        </button>
        {onCancel ? (
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        ) : null}
      </div>
    </form>
  );
}
