import { useQuery } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { client } from '../api.js';
import { Loading, Page, QueryError } from '../ui/components.js';
import { CreateSecretForm } from './secrets/create-secret-form.js';
import { SecretsTable } from './secrets/secrets-table.js';

/** The team's secrets and the caller's personal ones (docs/secrets.md): values go in and never come out. */
export function SecretsPage(): ReactNode {
  const secrets = useQuery({ queryKey: ['secrets'], queryFn: () => client.listSecrets() });
  const [status, setStatus] = useState('');
  return (
    <Page title="Secrets">
      <p className="muted">
        Runs get secrets as environment variables when their environment or the run attaches them by name. Nobody can read a value back, not even here: replace it instead.
      </p>
      <div role="status">{status ? <p>{status}</p> : null}</div>
      <section aria-labelledby="secrets-list-h">
        <h2 id="secrets-list-h">Your secrets</h2>
        {secrets.isPending ? (
          <Loading what="Loading the secrets" />
        ) : secrets.isError ? (
          <QueryError error={secrets.error} />
        ) : (
          <SecretsTable secrets={secrets.data.secrets} onStatus={setStatus} />
        )}
      </section>
      <section aria-labelledby="secrets-new-h">
        <h2 id="secrets-new-h">New secret</h2>
        <CreateSecretForm onCreated={(s) => setStatus(`Created the ${s.scope} secret ${s.name}.`)} />
      </section>
    </Page>
  );
}
