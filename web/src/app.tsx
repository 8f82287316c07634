import { lazy, Suspense, useState, type ComponentType, type LazyExoticComponent, type ReactNode } from 'react';
import { Link, Redirect, Route, Switch, useLocation } from 'wouter';
import { client, errorMessage, isSignedOut } from './api.js';
import { RunsPage } from './pages/runs-list.js';
import { SignInPage } from './pages/sign-in.js';
import { SessionGate, useSession, useSessionRefresh } from './session.js';
import { Loading, NotFoundPage } from './ui/components.js';
import { applyTheme, storedTheme, type Theme } from './ui/theme.js';

/** A page loaded on first visit: the first paint carries only the shell and the runs list. */
function page<P extends object>(load: () => Promise<ComponentType<P>>): LazyExoticComponent<ComponentType<P>> {
  return lazy(async () => ({ default: await load() }));
}
const RunPage = page(() => import('./pages/run-page.js').then((m) => m.RunPage));
const NewRunPage = page(() => import('./pages/new-run.js').then((m) => m.NewRunPage));
const EnvironmentsPage = page(() => import('./pages/environments.js').then((m) => m.EnvironmentsPage));
const NewEnvironmentPage = page(() => import('./pages/environments.js').then((m) => m.NewEnvironmentPage));
const EnvironmentPage = page(() => import('./pages/environments.js').then((m) => m.EnvironmentPage));
const SchedulesPage = page(() => import('./pages/schedules.js').then((m) => m.SchedulesPage));
const NewSchedulePage = page(() => import('./pages/schedules.js').then((m) => m.NewSchedulePage));
const SchedulePage = page(() => import('./pages/schedules.js').then((m) => m.SchedulePage));
const SecretsPage = page(() => import('./pages/secrets.js').then((m) => m.SecretsPage));
const ApiKeysPage = page(() => import('./pages/api-keys.js').then((m) => m.ApiKeysPage));
const AdminPage = page(() => import('./pages/admin.js').then((m) => m.AdminPage));

/** The dashboard: sign-in (and the `oz open` link) outside the session, every other page inside it. */
export function App(): ReactNode {
  return (
    <Switch>
      <Route path="/login">
        <SignInPage />
      </Route>
      <Route>
        <SessionGate signedOut={<SignInPage />}>
          <Shell />
        </SessionGate>
      </Route>
    </Switch>
  );
}

const NAV: { href: string; label: string; admin?: boolean }[] = [
  { href: '/runs', label: 'Runs' },
  { href: '/environments', label: 'Environments' },
  { href: '/schedules', label: 'Schedules' },
  { href: '/secrets', label: 'Secrets' },
  { href: '/api-keys', label: 'API keys' },
  { href: '/admin', label: 'Admin', admin: true },
];

function Shell(): ReactNode {
  const { session, isAdmin } = useSession();
  const [location] = useLocation();
  const [menuOpen, setMenuOpen] = useState(false);
  const refresh = useSessionRefresh();
  const [signOutError, setSignOutError] = useState<string | null>(null);
  // Only a sign-out the server confirmed leaves the page: otherwise the cookie would still work.
  const signOut = async (): Promise<void> => {
    try {
      await client.signOut();
      refresh(null);
    } catch (error) {
      if (isSignedOut(error)) refresh(null);
      else setSignOutError(`Not signed out: ${errorMessage(error)}`);
    }
  };
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/runs" className="brand" aria-label="Oz: runs">
          oz
        </Link>
        <button type="button" className="menu-button" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen((o) => !o)}>
          Menu
        </button>
        <nav id="nav" aria-label="Main" className={menuOpen ? 'open' : ''}>
          <ul>
            {NAV.filter((n) => !n.admin || isAdmin).map((n) => (
              <li key={n.href}>
                <Link href={n.href} aria-current={location === n.href || location.startsWith(`${n.href}/`) ? 'page' : undefined} onClick={() => setMenuOpen(false)}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          <ThemeSwitch />
          <span className="muted" title={session.user.email}>
            {session.user.display_name ?? session.user.email} · {session.team.name}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
          {signOutError ? (
            <span className="error" role="alert">
              {signOutError}
            </span>
          ) : null}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading />}>
          <Switch>
            <Route path="/">
              <Redirect to="/runs" />
            </Route>
            <Route path="/runs" component={RunsPage} />
            <Route path="/runs/new">
              <NewRunPage />
            </Route>
            <Route path="/runs/:id">{(p) => <RunPage id={p.id} />}</Route>
            <Route path="/environments">
              <EnvironmentsPage />
            </Route>
            <Route path="/environments/new">
              <NewEnvironmentPage />
            </Route>
            <Route path="/environments/:id">{(p) => <EnvironmentPage id={p.id} />}</Route>
            <Route path="/schedules">
              <SchedulesPage />
            </Route>
            <Route path="/schedules/new">
              <NewSchedulePage />
            </Route>
            <Route path="/schedules/:id">{(p) => <SchedulePage id={p.id} />}</Route>
            <Route path="/secrets">
              <SecretsPage />
            </Route>
            <Route path="/api-keys">
              <ApiKeysPage />
            </Route>
            <Route path="/admin">
              <AdminPage />
            </Route>
            <Route>
              <NotFoundPage />
            </Route>
          </Switch>
        </Suspense>
      </main>
    </div>
  );
}

function ThemeSwitch(): ReactNode {
  const [theme, setTheme] = useState<Theme>(storedTheme());
  return (
    <label className="theme">
      <span className="visually-hidden">Theme</span>
      <select
        value={theme}
        onChange={(e) => {
          const next = e.target.value as Theme;
          applyTheme(next);
          setTheme(next);
        }}
      >
        <option value="system">System theme</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </label>
  );
}
