import type { ReactNode } from 'react';
import { errorMessage, OzClientError } from '../../api.js';

/** The API's 403: not an admin (or, for deployment-wide routes, not an admin of the platform team). */
export const isForbidden = (error: unknown): boolean => error instanceof OzClientError && error.status === 403;

/** Admin queries: a 403 will not change on retry. */
export const adminRetry = (count: number, error: Error): boolean => !isForbidden(error) && count < 1;

/** A section's failed query: a 403 as a short explanation, anything else as an alert. */
export function AdminQueryError({ error, needs }: { error: unknown; needs: string }): ReactNode {
  if (isForbidden(error)) return <p className="muted">{needs}</p>;
  return (
    <p className="error" role="alert">
      {errorMessage(error)}
    </p>
  );
}
