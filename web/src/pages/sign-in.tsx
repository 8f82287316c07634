import { useMutation } from '@tanstack/react-query';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useLocation } from 'wouter';
import type { WebSession } from '../../../src/api/web.js';
import { client, errorMessage } from '../api.js';
import { useSessionRefresh } from '../session.js';
import { describedBy, Field } from '../ui/components.js';

/** Only paths of the dashboard itself: a login link cannot send the browser elsewhere. */
const localPath = (path: string | undefined): string => (path && /^\/(?!\/)[^\\]*$/.test(path) && !path.startsWith('/login') ? path : '/runs');

/**
 * Sign in with an API key, once: the server answers with an HttpOnly session
 * cookie (the key is never kept by the page). `/login#<token>` is the
 * one-time link `oz open` prints: the token is in the fragment, which the
 * browser sends to no server; the page trades it for a session.
 */
export function SignInPage(): ReactNode {
  const [location, navigate] = useLocation();
  const refresh = useSessionRefresh();
  const [key, setKey] = useState('');
  const token = useRef(window.location.hash.slice(1));
  const done = (session: WebSession): void => {
    refresh(session);
    navigate(localPath(session.path ?? (location.startsWith('/login') ? '/runs' : location)), { replace: true });
  };
  const withKey = useMutation({ mutationFn: (apiKey: string) => client.signIn({ api_key: apiKey }), onSuccess: done });
  const withLink = useMutation({ mutationFn: (loginToken: string) => client.signIn({ login_token: loginToken }), onSuccess: done });
  useEffect(() => {
    if (!token.current) return;
    // The token is spent either way: off the address bar and the history.
    window.history.replaceState(null, '', window.location.pathname);
    withLink.mutate(token.current);
    token.current = '';
  }, [withLink]);
  useEffect(() => {
    document.title = 'Sign in · Oz';
  }, []);
  const error = withKey.error ? errorMessage(withKey.error) : undefined;
  return (
    <main id="main" className="sign-in">
      <h1>Sign in to Oz</h1>
      {withLink.isPending ? <p role="status">Signing in with your link…</p> : null}
      {withLink.error ? (
        <p className="error" role="alert">
          {errorMessage(withLink.error)}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          withKey.mutate(key.trim());
        }}
      >
        <Field
          id="api-key"
          label="API key"
          hint={<>Your key (oz_…) from `oz server`'s first start or `oz api-key create`. It is sent once; the browser keeps only a session.</>}
          error={error}
        >
          <input
            id="api-key"
            name="api_key"
            type="password"
            autoComplete="off"
            required
            value={key}
            onChange={(e) => setKey(e.target.value)}
            {...describedBy('api-key', error, true)}
          />
        </Field>
        <button type="submit" className="primary" disabled={withKey.isPending || key.trim() === ''}>
          {withKey.isPending ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p className="hint">
        From a terminal, <code>oz open</code> opens the dashboard signed in.
      </p>
    </main>
  );
}
