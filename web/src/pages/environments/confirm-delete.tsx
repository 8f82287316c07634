import { useState, type ReactNode } from 'react';

/**
 * A Delete button that asks first, inline (never window.confirm): the
 * question, a danger "Yes" and a way back, which takes the focus.
 */
export function ConfirmDelete({
  what,
  onConfirm,
  pending,
  children,
}: {
  /** "environment", "schedule". */
  what: string;
  onConfirm: () => void;
  pending: boolean;
  /** Said beside the question: what else deleting it changes. */
  children?: ReactNode;
}): ReactNode {
  const [confirming, setConfirming] = useState(false);
  if (!confirming) {
    return (
      <button type="button" className="danger" onClick={() => setConfirming(true)}>
        Delete
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={`Confirm delete ${what}`}>
      Delete this {what}?{children ? <> {children}</> : null}{' '}
      <button type="button" className="danger" onClick={onConfirm} disabled={pending}>
        {pending ? 'Deleting…' : `Yes, delete it`}
      </button>{' '}
      <button type="button" onClick={() => setConfirming(false)} autoFocus disabled={pending}>
        Keep it
      </button>
    </span>
  );
}
