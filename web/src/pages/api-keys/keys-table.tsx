import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import type { ApiKeyItem } from '../../../../src/api/identity.js';
import { client, errorMessage } from '../../api.js';
import { useSessionRefresh } from '../../session.js';
import { TimeAgo } from '../../ui/components.js';
import { ConfirmAction } from '../../ui/confirm-action.js';

/** The caller's API keys (never their secrets); `sessionKey`: the key this dashboard session acts as, when known. */
export function KeysTable({ keys, sessionKey, onStatus }: { keys: readonly ApiKeyItem[]; sessionKey: string | undefined; onStatus: (message: string) => void }): ReactNode {
  if (keys.length === 0) return <p className="muted">No API keys.</p>;
  return (
    <div className="table-scroll">
      <table className="list" aria-label="Your API keys">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Prefix</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Status</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {keys.map((k) => (
            <KeyRow key={k.uid} apiKey={k} isSessionKey={k.uid === sessionKey} onStatus={onStatus} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function KeyRow({ apiKey, isSessionKey, onStatus }: { apiKey: ApiKeyItem; isSessionKey: boolean; onStatus: (message: string) => void }): ReactNode {
  const queryClient = useQueryClient();
  const refreshSession = useSessionRefresh();
  const expire = useMutation({
    mutationFn: () => client.expireApiKey(apiKey.uid),
    onSuccess: () => {
      // This session acts as the key: it has ended with it, so back to the sign-in page.
      if (isSessionKey) return refreshSession(null);
      onStatus(`Expired the key ${apiKey.name}.`);
      void queryClient.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  return (
    <tr>
      <th scope="row">
        {apiKey.name}
        {isSessionKey ? (
          <>
            {' '}
            <span className="badge">this session</span>
          </>
        ) : null}
      </th>
      <td>
        <code>{apiKey.prefix}…</code>
      </td>
      <td>
        <TimeAgo iso={apiKey.created_at} />
      </td>
      <td>{apiKey.expires_at ? <TimeAgo iso={apiKey.expires_at} /> : <span className="muted">never</span>}</td>
      <td>
        <span className="badge">{apiKey.expired ? 'expired' : 'active'}</span>
      </td>
      <td>
        {apiKey.expired ? null : (
          <ConfirmAction
            action="Expire"
            actionLabel={`Expire the key ${apiKey.name}`}
            question={
              isSessionKey
                ? `Expire ${apiKey.name}? This dashboard session signed in with it and ends too.`
                : `Expire ${apiKey.name}? Everything that uses it stops working at once.`
            }
            yes="Yes, expire it"
            no="Keep it"
            busy={expire.isPending}
            onConfirm={() => expire.mutate()}
          />
        )}
        {expire.error ? (
          <p className="error" role="alert">
            {errorMessage(expire.error)}
          </p>
        ) : null}
      </td>
    </tr>
  );
}
