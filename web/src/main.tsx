import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { client, isSignedOut } from './api.js';
import { App } from './app.js';
import { SESSION_QUERY } from './session.js';
import { applyStoredTheme } from './ui/theme.js';
import './styles.css';

applyStoredTheme();

// A 401 anywhere means the session ended (signed out elsewhere, expired, its key expired): ask again who we are.
// (The session's own 401 is the answer "signed out", not a reason to ask again.)
// (Nor is a 401 while signed out: a wrong key at sign-in must stay on the form, with its error.)
const onError = (error: unknown, key?: readonly unknown[]): void => {
  if (!isSignedOut(error) || key?.[0] === SESSION_QUERY[0] || queryClient.getQueryData(SESSION_QUERY) === undefined) return;
  void queryClient.invalidateQueries({ queryKey: SESSION_QUERY });
};
const queryClient: QueryClient = new QueryClient({
  queryCache: new QueryCache({ onError: (error, query) => onError(error, query.queryKey) }),
  mutationCache: new MutationCache({ onError: (error) => onError(error) }),
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: true, staleTime: 5_000 } },
});

// Ask who we are while React mounts (SessionGate's query joins this one), not after.
void queryClient.prefetchQuery({ queryKey: SESSION_QUERY, queryFn: () => client.webSession(), retry: false });

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  );
}
