import { useMutation } from '@tanstack/react-query';
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { useLocation } from 'wouter';
import type { LoginLinkInfo, WebSession } from '../../../src/api/web.js';
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
  // A link for someone other than who is signed in here waits for a yes (another person's link must not switch you silently).
  const [switching, setSwitching] = useState<{ token: string; link: LoginLinkInfo; current: WebSession } | null>(null);
  const done = (session: WebSession): void => {
    refresh(session);
    navigate(localPath(session.path ?? (location.startsWith('/login') ? '/runs' : location)), { replace: true });
  };
  // gcTime 0: the key (or token) does not stay in the query cache's memory after the request.
  const withKey = useMutation({ mutationFn: (apiKey: string) => client.signIn({ api_key: apiKey }), onSuccess: done, gcTime: 0 });
  const withLink = useMutation({
    mutationFn: async (loginToken: string): Promise<WebSession | null> => {
      const link = await client.peekLoginLink({ login_token: loginToken });
      const current = await client.webSession().catch(() => null);
      if (current && current.user.uid !== link.user.uid) {
        setSwitching({ token: loginToken, link, current });
        return null;
      }
      return client.signIn({ login_token: loginToken });
    },
    onSuccess: (session) => session && done(session),
    gcTime: 0,
  });
  const switchNow = useMutation({ mutationFn: (loginToken: string) => client.signIn({ login_token: loginToken }), onSuccess: done, gcTime: 0 });
  const linkMutate = withLink.mutate;
  useEffect(() => {
    if (!token.current) return;
    // Off the address bar and the history at once.
    window.history.replaceState(null, '', window.location.pathname);
    linkMutate(token.current);
    token.current = '';
  }, [linkMutate]);
  useEffect(() => {
    document.title = 'Sign in · Oz';
  }, []);
  // At the key's field, without the field's API name ("api_key: …").
  const error = withKey.error ? errorMessage(withKey.error).replace(/^api_key: /, '') : undefined;
  if (switching) {
    const { link, current } = switching;
    return (
      <main id="main" className="sign-in">
        <h1>Switch to another account?</h1>
        <p>
          This link signs you in as <strong>{link.user.email}</strong> (team {link.team.name}). You are signed in here as <strong>{current.user.email}</strong> (team{' '}
          {current.team.name}).
        </p>
        <p className="hint">Only switch if you asked for this link yourself (`oz open`): anything you do next happens as {link.user.email}.</p>
        {switchNow.error ? (
          <p className="error" role="alert">
            {errorMessage(switchNow.error)}
          </p>
        ) : null}
        <div className="form-actions">
          <button type="button" className="primary" disabled={switchNow.isPending} onClick={() => switchNow.mutate(switching.token)}>
            Sign in as {link.user.email}
          </button>
          <button type="button" onClick={() => navigate('/runs', { replace: true })}>
            Stay {current.user.email}
          </button>
        </div>
      </main>
    );
  }
  return (
    <main id="main" className="sign-in">
      <h1>Sign in to Oz</h1>
      {withLink.isPending ? <p role="status">Signing in with your link…</p> : null}
      {withLink.error ? (
        <p className="error" role="alert">
          {errorMessage(withLink.error).replace(/^login_token: /, '')}
        </p>
      ) : null}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const apiKey = key.trim();
          // The key leaves the page's state as it is sent.
          setKey('');
          withKey.mutate(apiKey);
        }}
      >
        <Field
          id="api-key"
          label="API key"
          hint={
            <>
              Your key (oz_…) from <code>oz server</code>'s first start or <code>oz api-key create</code>. It is sent once; the browser keeps only a session.
            </>
          }
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
