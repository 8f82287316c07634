import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { SecretItem } from '../../../../src/api/secrets.js';
import { client, errorMessage } from '../../api.js';
import { TimeAgo } from '../../ui/components.js';
import { ConfirmAction } from '../../ui/confirm-action.js';
import { ReplaceValueForm } from './replace-value-form.js';

const COLUMNS = 7;

/** The caller's secrets: metadata only (the API never returns a value). */
export function SecretsTable({ secrets, onStatus }: { secrets: readonly SecretItem[]; onStatus: (message: string) => void }): ReactNode {
  if (secrets.length === 0) return <p className="muted">No secrets yet.</p>;
  return (
    <div className="table-scroll">
      <table className="list" aria-label="Secrets">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Scope</th>
            <th scope="col">Type</th>
            <th scope="col">Description</th>
            <th scope="col">Base URL</th>
            <th scope="col">Last updated</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {secrets.map((s) => (
            <SecretRow key={`${s.scope}-${s.name}`} secret={s} onStatus={onStatus} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function SecretRow({ secret, onStatus }: { secret: SecretItem; onStatus: (message: string) => void }): ReactNode {
  const queryClient = useQueryClient();
  const [replacing, setReplacing] = useState(false);
  const label = `${secret.name} (${secret.scope})`;
  const remove = useMutation({
    mutationFn: () => client.deleteSecret(secret.name, secret.scope),
    onSuccess: () => {
      onStatus(`Deleted the secret ${label}.`);
      void queryClient.invalidateQueries({ queryKey: ['secrets'] });
    },
  });
  // Names are environment variable names: safe in an id.
  const idPrefix = `secret-${secret.scope}-${secret.name}`;
  return (
    <>
      <tr>
        <th scope="row">
          <code>{secret.name}</code>
          {secret.setup_only ? (
            <>
              {' '}
              <span className="badge">setup only</span>
            </>
          ) : null}
        </th>
        <td>
          <span className="badge">{secret.scope}</span>
        </td>
        <td>{secret.type}</td>
        <td>{secret.description ?? <span className="muted">—</span>}</td>
        <td>{secret.base_url ? <code>{secret.base_url}</code> : <span className="muted">—</span>}</td>
        <td>
          <TimeAgo iso={secret.updated_at} />
        </td>
        <td>
          <span className="confirm">
            <button
              type="button"
              aria-expanded={replacing}
              aria-controls={`${idPrefix}-replace`}
              aria-label={`Replace the value of ${label}`}
              onClick={() => setReplacing((r) => !r)}
            >
              Replace value
            </button>
            <ConfirmAction
              action="Delete"
              actionLabel={`Delete ${label}`}
              question={`Delete ${label}? Runs that attach it will no longer get it.`}
              yes="Yes, delete it"
              no="Keep it"
              busy={remove.isPending}
              onConfirm={() => remove.mutate()}
            />
          </span>
          {remove.error ? (
            <p className="error" role="alert">
              {errorMessage(remove.error)}
            </p>
          ) : null}
        </td>
      </tr>
      {replacing ? (
        <tr id={`${idPrefix}-replace`}>
          <td colSpan={COLUMNS}>
            <ReplaceValueForm
              secret={secret}
              idPrefix={idPrefix}
              onReplaced={() => {
                setReplacing(false);
                onStatus(`Replaced the value of ${label}.`);
              }}
              onCancel={() => setReplacing(false)}
            />
          </td>
        </tr>
      ) : null}
    </>
  );
}
