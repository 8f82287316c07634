import { useEffect, useRef, useState, type ReactNode } from 'react';

/**
 * A destructive action behind an inline confirm step (never window.confirm):
 * the button opens a question with "yes" and "no"; focus moves to "no", and
 * back to the button when the question closes unanswered.
 */
export function ConfirmAction({
  action,
  actionLabel,
  question,
  yes,
  no,
  busy,
  onConfirm,
  children,
}: {
  /** The button's text ("Delete"). */
  action: string;
  /** Its accessible name, naming the thing ("Delete NPM_TOKEN (team)"). */
  actionLabel: string;
  question: string;
  yes: string;
  no: string;
  busy: boolean;
  onConfirm: () => void;
  /** Said after the question: what else it changes ("Its runs are kept."). */
  children?: ReactNode;
}): ReactNode {
  const [open, setOpen] = useState(false);
  const actionButton = useRef<HTMLButtonElement>(null);
  const noButton = useRef<HTMLButtonElement>(null);
  const wasOpen = useRef(false);
  useEffect(() => {
    if (open) noButton.current?.focus();
    else if (wasOpen.current) actionButton.current?.focus();
    wasOpen.current = open;
  }, [open]);
  if (!open) {
    return (
      <button type="button" className="danger" ref={actionButton} aria-label={actionLabel} onClick={() => setOpen(true)}>
        {action}
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={question}>
      {question}
      {children ? <> {children}</> : null}{' '}
      <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
        {busy ? 'Working…' : yes}
      </button>{' '}
      <button type="button" ref={noButton} onClick={() => setOpen(false)}>
        {no}
      </button>
    </span>
  );
}
