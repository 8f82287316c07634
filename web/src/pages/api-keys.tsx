import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import type { NewKeyInput } from '../../../src/api/identity.js';
import { client } from '../api.js';
import { useSession } from '../session.js';
import { Loading, Page, QueryError } from '../ui/components.js';
import { KeyForm } from './api-keys/key-form.js';
import { KeysTable } from './api-keys/keys-table.js';
import { ShownOnce } from '../ui/shown-once.js';

/** The caller's API keys: list, create (the secret shown once), expire. */
export function ApiKeysPage(): ReactNode {
  const { session } = useSession();
  const keys = useQuery({ queryKey: ['api-keys'], queryFn: () => client.listApiKeys() });
  // `/me` names the key this session acts as; only a badge and a warning depend on it.
  const me = useQuery({ queryKey: ['me'], queryFn: () => client.whoami() });
  const [status, setStatus] = useState('');
  return (
    <Page title="API keys">
      <p className="muted">Keys of {session.user.email}: the CLI, scripts and the API authenticate with them, acting as you.</p>
      <div role="status">{status ? <p>{status}</p> : null}</div>
      <section aria-labelledby="keys-list-h">
        <h2 id="keys-list-h">Your keys</h2>
        {keys.isPending ? (
          <Loading what="Loading the keys" />
        ) : keys.isError ? (
          <QueryError error={keys.error} />
        ) : (
          <KeysTable keys={keys.data.api_keys} sessionKey={me.data?.api_key.uid} onStatus={setStatus} />
        )}
      </section>
      <section aria-labelledby="keys-new-h">
        <h2 id="keys-new-h">New key</h2>
        <NewKey onStatus={setStatus} />
      </section>
    </Page>
  );
}

/** The create form, replaced by the new key until "Done" drops it (from react-query too: gcTime 0). */
function NewKey({ onStatus }: { onStatus: (message: string) => void }): ReactNode {
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: (body: NewKeyInput) => client.createApiKey(body),
    gcTime: 0,
    onSuccess: (created) => {
      onStatus(`Created the key ${created.name}.`);
      void queryClient.invalidateQueries({ queryKey: ['api-keys'] });
    },
  });
  if (create.data) {
    return (
      <ShownOnce heading={`Your new key ${create.data.name}`} level={3} what="key" secret={create.data.key} onDone={() => create.reset()}>
        <p>
          The CLI reads it from <code>OZ_API_KEY</code> (or <code>--api-key</code>); the API takes it as <code>Authorization: Bearer …</code>.
        </p>
      </ShownOnce>
    );
  }
  return <KeyForm idPrefix="new-key" label="New key" submit="Create key" busy={create.isPending} error={create.error} onSubmit={(body) => create.mutate(body)} />;
}
