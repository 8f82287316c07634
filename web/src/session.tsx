import { useQuery, useQueryClient } from '@tanstack/react-query';
import { createContext, useContext, useEffect, type ReactNode } from 'react';
import type { WebSession } from '../../src/api/web.js';
import { client, isSignedOut, setCsrfToken } from './api.js';

interface SessionValue {
  session: WebSession;
  isAdmin: boolean;
  isPlatformAdmin: boolean;
}

const SessionContext = createContext<SessionValue | null>(null);

/** The signed-in person (inside {@link SessionGate}). */
export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (!value) throw new Error('useSession outside a signed-in page');
  return value;
}

export const SESSION_QUERY = ['web-session'] as const;

/** Reads the session (the cookie is HttpOnly: the server says whether there is one); signed out → `signedOut`. */
export function SessionGate({ signedOut, children }: { signedOut: ReactNode; children: ReactNode }): ReactNode {
  const query = useQuery({ queryKey: SESSION_QUERY, queryFn: () => client.webSession(), retry: (count, error) => !isSignedOut(error) && count < 2, staleTime: Infinity });
  useEffect(() => setCsrfToken(query.data?.csrf_token ?? null), [query.data]);
  if (query.isPending)
    return (
      <p className="loading" role="status">
        Loading…
      </p>
    );
  if (query.isError) {
    if (isSignedOut(query.error)) return signedOut;
    return (
      <p className="error" role="alert">
        The Oz server cannot be reached: {query.error.message}
      </p>
    );
  }
  setCsrfToken(query.data.csrf_token);
  const value: SessionValue = { session: query.data, isAdmin: query.data.user.role === 'admin', isPlatformAdmin: query.data.user.role === 'admin' && query.data.team.platform };
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

/** After sign-in or sign-out: the session query answers anew. */
export function useSessionRefresh(): (session: WebSession | null) => void {
  const queryClient = useQueryClient();
  return (session) => {
    setCsrfToken(session?.csrf_token ?? null);
    if (session) queryClient.setQueryData(SESSION_QUERY, session);
    else {
      // Signed out: a fresh page, so nothing the session read stays in memory.
      queryClient.clear();
      window.location.assign('/login');
    }
  };
}
