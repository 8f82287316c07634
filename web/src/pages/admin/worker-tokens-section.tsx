import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { CreateWorkerTokenInput, WorkerTokenItem } from '../../../../src/api/identity.js';
import { client, errorMessage } from '../../api.js';
import { describedBy, Field, FormError, Loading, TimeAgo, useFieldErrors } from '../../ui/components.js';
import { ShownOnce } from '../../ui/shown-once.js';
import { ConfirmAction } from '../../ui/confirm-action.js';
import { adminRetry, AdminQueryError } from './forbidden.js';

const NEEDS = "A worker token can claim any team's runs, secrets included: only admins of the platform team manage them.";
const FIELDS = ['name'] as const;

/** Credentials for `oz worker` (platform admins): list, create (shown once), revoke. */
export function WorkerTokensSection({ allowed, onStatus }: { allowed: boolean; onStatus: (message: string) => void }): ReactNode {
  return (
    <section aria-labelledby="admin-tokens-h">
      <h2 id="admin-tokens-h">Worker tokens</h2>
      {allowed ? (
        <>
          <TokensTable onStatus={onStatus} />
          <h3 id="admin-new-token-h">New worker token</h3>
          <NewToken onStatus={onStatus} />
        </>
      ) : (
        <p className="muted">{NEEDS}</p>
      )}
    </section>
  );
}

function TokensTable({ onStatus }: { onStatus: (message: string) => void }): ReactNode {
  const tokens = useQuery({ queryKey: ['admin', 'worker-tokens'], queryFn: () => client.listWorkerTokens(), retry: adminRetry });
  if (tokens.isPending) return <Loading what="Loading the worker tokens" />;
  if (tokens.isError) return <AdminQueryError error={tokens.error} needs={NEEDS} />;
  if (tokens.data.worker_tokens.length === 0) return <p className="muted">No worker tokens.</p>;
  return (
    <div className="table-scroll">
      <table className="list" aria-label="Worker tokens">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">Created</th>
            <th scope="col">Status</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {tokens.data.worker_tokens.map((t) => (
            <TokenRow key={t.uid} token={t} onStatus={onStatus} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function TokenRow({ token, onStatus }: { token: WorkerTokenItem; onStatus: (message: string) => void }): ReactNode {
  const queryClient = useQueryClient();
  const revoke = useMutation({
    mutationFn: () => client.revokeWorkerToken(token.uid),
    onSuccess: () => {
      onStatus(`Revoked the worker token ${token.name}.`);
      void queryClient.invalidateQueries({ queryKey: ['admin', 'worker-tokens'] });
    },
  });
  return (
    <tr>
      <th scope="row">{token.name}</th>
      <td>
        <code>{token.prefix}…</code>
      </td>
      <td>
        <TimeAgo iso={token.created_at} />
      </td>
      <td>
        {token.revoked_at ? (
          <>
            <span className="badge">revoked</span> <TimeAgo iso={token.revoked_at} />
          </>
        ) : (
          <span className="badge">active</span>
        )}
      </td>
      <td>
        {token.revoked_at ? null : (
          <ConfirmAction
            action="Revoke"
            actionLabel={`Revoke the worker token ${token.name}`}
            question={`Revoke ${token.name}? Workers that use it can no longer claim runs.`}
            yes="Yes, revoke it"
            no="Keep it"
            busy={revoke.isPending}
            onConfirm={() => revoke.mutate()}
          />
        )}
        {revoke.error ? (
          <p className="error" role="alert">
            {errorMessage(revoke.error)}
          </p>
        ) : null}
      </td>
    </tr>
  );
}

/** The create form, replaced by the new token until "Done" drops it (from react-query too: gcTime 0). */
function NewToken({ onStatus }: { onStatus: (message: string) => void }): ReactNode {
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: (body: CreateWorkerTokenInput) => client.createWorkerToken(body),
    gcTime: 0,
    onSuccess: (created) => {
      setName('');
      onStatus(`Created the worker token ${created.name}.`);
      void queryClient.invalidateQueries({ queryKey: ['admin', 'worker-tokens'] });
    },
  });
  const errors = useFieldErrors(create.error, FIELDS);
  if (create.data) {
    return (
      <ShownOnce heading={`New worker token ${create.data.name}`} level={3} what="worker token" secret={create.data.token} onDone={() => create.reset()}>
        <p>
          Give it to <code>oz worker</code> in <code>OZ_WORKER_TOKEN</code> or a <code>--token-file</code> only its user can read.
        </p>
      </ShownOnce>
    );
  }
  return (
    <form
      className="form"
      noValidate
      aria-labelledby="admin-new-token-h"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate({ name: name.trim() });
      }}
    >
      <FormError message={errors.general} />
      <Field id="token-name" label="Name" error={errors.at('name')} hint="Which worker or pool uses it, e.g. gpu-box-1.">
        <input id="token-name" name="name" autoComplete="off" value={name} onChange={(e) => setName(e.target.value)} {...describedBy('token-name', errors.at('name'), true)} />
      </Field>
      <div className="form-actions">
        <button type="submit" className="primary" disabled={create.isPending}>
          {create.isPending ? 'Creating…' : 'Create worker token'}
        </button>
      </div>
    </form>
  );
}
