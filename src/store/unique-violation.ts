import { OzError } from '../core/errors.js';

/**
 * A unique-constraint violation on either database, as a 409 naming the field.
 * SQLite: `SQLITE_CONSTRAINT_UNIQUE` / `SQLITE_CONSTRAINT_PRIMARYKEY`;
 * PostgreSQL: SQLSTATE 23505.
 */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export function rethrowUnique(field: string, message: string): (error: unknown) => never {
  return (error: unknown) => {
    if (isUniqueViolation(error)) throw new OzError('conflict', `${field}: ${message}`, { reason: field });
    throw error;
  };
}
