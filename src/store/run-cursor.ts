import { createHash } from 'node:crypto';
import { OzError } from '../core/errors.js';
import type { Run, RunFilters, RunSortField, SortOrder } from '../core/run.js';

/**
 * Keyset pagination cursors for `GET /agent/runs`. A cursor is the last row's
 * `(sort value, run_id)` plus a fingerprint of the query that produced it
 * (team, filters, sort): reusing it with other filters or another sort would
 * silently skip or repeat rows, so it is refused with a 400 naming `cursor`.
 * Opaque to clients: base64url of a small JSON document.
 */
export interface CursorPosition {
  value: string | number;
  id: string;
}

interface CursorDocument {
  v: string | number;
  id: string;
  f: string;
}

export function queryFingerprint(teamId: string, filters: RunFilters, sortBy: RunSortField, sortOrder: SortOrder): string {
  const canonical = JSON.stringify([
    teamId,
    sortBy,
    sortOrder,
    Object.entries(filters)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a.localeCompare(b)),
  ]);
  return createHash('sha256').update(canonical).digest('base64url').slice(0, 16);
}

/**
 * The sort key of a run, exactly as the SQL of `run-list-sql.ts` computes it.
 * `agent` sorts by skill with runs without a skill last in either direction.
 */
export function sortValueOf(run: Run, sortBy: RunSortField, sortOrder: SortOrder): string | number {
  switch (sortBy) {
    case 'updated_at':
      return run.updatedAt;
    case 'created_at':
      return run.createdAt;
    case 'title':
      return run.title;
    case 'agent':
      if (sortOrder === 'asc') return run.skillSpec === null ? '1' : `0${run.skillSpec}`;
      return run.skillSpec === null ? '' : `1${run.skillSpec}`;
  }
}

export function encodeCursor(position: CursorPosition, fingerprint: string): string {
  const doc: CursorDocument = { v: position.value, id: position.id, f: fingerprint };
  return Buffer.from(JSON.stringify(doc)).toString('base64url');
}

export function decodeCursor(cursor: string, fingerprint: string, sortBy: RunSortField): CursorPosition {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor('is not a cursor returned by this API');
  }
  if (typeof doc !== 'object' || doc === null || typeof (doc as CursorDocument).id !== 'string' || typeof (doc as CursorDocument).f !== 'string') {
    throw badCursor('is not a cursor returned by this API');
  }
  const { v, id, f } = doc as CursorDocument;
  const numeric = sortBy === 'updated_at' || sortBy === 'created_at';
  if ((numeric && typeof v !== 'number') || (!numeric && typeof v !== 'string')) {
    throw badCursor('was made for another sort_by');
  }
  if (f !== fingerprint) {
    throw badCursor('was made for other filters or another sort; repeat the first request without it');
  }
  return { value: v, id };
}

function badCursor(why: string): OzError {
  return new OzError('invalid_request', `cursor: ${why}`, { reason: 'cursor' });
}
