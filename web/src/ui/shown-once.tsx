import { useEffect, useId, useRef, useState, type ReactNode } from 'react';

/**
 * A credential the API returns only in its create answer (an API key, a
 * worker token): shown here once, with a copy button; "Done" hands control
 * back to the caller, which must drop it from its state.
 */
export function ShownOnce({
  heading,
  level,
  what,
  secret,
  onDone,
  children,
}: {
  heading: string;
  level: 2 | 3;
  /** "key", "worker token": how the text names it. */
  what: string;
  secret: string;
  onDone: () => void;
  children?: ReactNode;
}): ReactNode {
  const headingId = useId();
  const box = useRef<HTMLDivElement>(null);
  const [copyStatus, setCopyStatus] = useState('');
  // Move focus to the box: it replaces the form that was just submitted.
  useEffect(() => box.current?.focus(), []);
  const copy = async (): Promise<void> => {
    // Absent outside a secure context (plain http:// on another host than localhost).
    if (typeof navigator.clipboard?.writeText !== 'function') {
      setCopyStatus(`This browser does not let the page copy here: select the ${what} and copy it yourself.`);
      return;
    }
    try {
      await navigator.clipboard.writeText(secret);
      setCopyStatus('Copied to the clipboard.');
    } catch {
      setCopyStatus(`The browser refused to copy: select the ${what} and copy it yourself.`);
    }
  };
  const Heading = level === 2 ? 'h2' : 'h3';
  return (
    <div className="shown-once" ref={box} tabIndex={-1} role="region" aria-labelledby={headingId}>
      <Heading id={headingId}>{heading}</Heading>
      <p>
        <strong>This is the only time the {what} is shown.</strong> Copy it now and keep it somewhere safe: Oz keeps only a hash of it and cannot show it again.
      </p>
      {children}
      <p className="plain">
        <code>{secret}</code>
      </p>
      <div className="form-actions">
        <button type="button" className="primary" onClick={() => void copy()}>
          Copy the {what}
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
      <p role="status">{copyStatus}</p>
    </div>
  );
}
