import { useEffect, useState, type KeyboardEvent, type ReactNode } from 'react';
import { Link } from 'wouter';
import { errorField, errorMessage, isNotFound } from '../api.js';
import { stateLabel, timeAgo } from './format.js';

/** A page: its heading (the document title too) and optional actions beside it. */
export function Page({ title, actions, children }: { title: ReactNode; actions?: ReactNode; children: ReactNode }): ReactNode {
  useEffect(() => {
    document.title = typeof title === 'string' ? `${title} · Oz` : 'Oz';
  }, [title]);
  return (
    <section className="page">
      <header className="page-header">
        <h1>{title}</h1>
        {actions ? <div className="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

export function StateBadge({ state }: { state: string }): ReactNode {
  return <span className={`state state-${state.toLowerCase()}`}>{stateLabel(state)}</span>;
}

/** A time as "3 minutes ago", its exact value on hover; re-rendered every 30 s. */
export function TimeAgo({ iso }: { iso: string | null | undefined }): ReactNode {
  const [, tick] = useState(0);
  useEffect(() => {
    const timer = window.setInterval(() => tick((n) => n + 1), 30_000);
    return () => window.clearInterval(timer);
  }, []);
  if (!iso) return <span className="muted">—</span>;
  return (
    <time dateTime={iso} title={new Date(iso).toLocaleString()}>
      {timeAgo(iso)}
    </time>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }): ReactNode {
  return (
    <p className="loading" role="status">
      {what}…
    </p>
  );
}

export function NotFoundPage({ what = 'page' }: { what?: string }): ReactNode {
  return (
    <Page title="Not found">
      <p>
        This {what} does not exist, or you cannot see it. <Link href="/runs">Back to the runs</Link>
      </p>
    </Page>
  );
}

/** A failed query: not-found as a page, anything else as an alert. */
export function QueryError({ error, what }: { error: unknown; what?: string }): ReactNode {
  if (isNotFound(error)) return <NotFoundPage {...(what ? { what } : {})} />;
  return (
    <p className="error" role="alert">
      {errorMessage(error)}
    </p>
  );
}

/**
 * A form's API error: shown at the field it names (`reason`) when the form
 * has that field, else above the form.
 */
export function useFieldErrors(error: unknown, fields: readonly string[]): { at: (field: string) => string | undefined; general: string | undefined } {
  if (!error) return { at: () => undefined, general: undefined };
  const field = errorField(error);
  const match = field === null ? undefined : fields.find((f) => field === f || field.startsWith(`${f}.`) || field.startsWith(`${f}[`));
  const message = errorMessage(error);
  // At its field, the message need not name the field again ("config.max_steps: Too small…").
  const atField = field !== null && message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
  return { at: (f) => (f === match ? atField : undefined), general: match ? undefined : message };
}

/** Ctrl+Enter (⌘+Enter) in a textarea submits its form. */
export function submitOnCtrlEnter(event: KeyboardEvent<HTMLTextAreaElement>): void {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    event.currentTarget.form?.requestSubmit();
  }
}

/** A labelled input with its hint and error, wired for screen readers. */
export function Field({ id, label, hint, error, children }: { id: string; label: string; hint?: ReactNode; error?: string | undefined; children: ReactNode }): ReactNode {
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children}
      {hint ? (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : null}
    </div>
  );
}

/** aria attributes for an input inside {@link Field}. */
export function describedBy(id: string, error: string | undefined, hint = false): { 'aria-invalid'?: true; 'aria-describedby'?: string } {
  const ids = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(' ');
  return { ...(error ? { 'aria-invalid': true as const } : {}), ...(ids ? { 'aria-describedby': ids } : {}) };
}

export function FormError({ message }: { message: string | undefined }): ReactNode {
  if (!message) return null;
  return (
    <p className="error" role="alert">
      {message}
    </p>
  );
}

/** Lines of a textarea as a list (blank lines dropped). */
export const lines = (text: string): string[] =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
