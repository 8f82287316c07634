import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { SecretItem } from '../../../../src/api/secrets.js';
import { client } from '../../api.js';
import { describedBy, Field, FormError, useFieldErrors } from '../../ui/components.js';
import { useTakeOnce } from './take-once.js';

const FIELDS = ['value'] as const;

/** A new value for one secret (PATCH `value`); cleared from the form as soon as it is sent. */
export function ReplaceValueForm({ secret, idPrefix, onReplaced, onCancel }: { secret: SecretItem; idPrefix: string; onReplaced: () => void; onCancel: () => void }): ReactNode {
  const queryClient = useQueryClient();
  const [value, setValue] = useState('');
  const held = useTakeOnce();
  const replace = useMutation({
    mutationFn: () => client.updateSecret(secret.name, secret.scope, { value: held.take() }),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['secrets'] });
      onReplaced();
    },
  });
  const errors = useFieldErrors(replace.error, FIELDS);
  const id = `${idPrefix}-value`;
  return (
    <form
      className="form"
      noValidate
      aria-label={`Replace the value of ${secret.name} (${secret.scope})`}
      onSubmit={(e) => {
        e.preventDefault();
        held.put(value);
        setValue('');
        replace.mutate();
      }}
    >
      <FormError message={errors.general} />
      <Field
        id={id}
        label={`New value for ${secret.name} (${secret.scope})`}
        error={errors.at('value')}
        hint="Runs that start from now on get the new value. It is cleared from this form as soon as you send it."
      >
        <input
          id={id}
          name="value"
          type="password"
          autoComplete="off"
          spellCheck={false}
          // Opened by the user's own click on "Replace value".
          autoFocus
          value={value}
          onChange={(e) => setValue(e.target.value)}
          {...describedBy(id, errors.at('value'), true)}
        />
      </Field>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={replace.isPending}>
          {replace.isPending ? 'Replacing…' : 'Replace value'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
