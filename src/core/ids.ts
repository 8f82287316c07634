import { randomBytes } from 'node:crypto';
import { v7 as uuidv7, validate as uuidValidate } from 'uuid';

/**
 * Ids are UUIDv7: time-ordered, so a run id is also a tie-breaker that follows
 * creation order, and B-tree inserts stay at the right edge of the index.
 */
export function newId(): string {
  return uuidv7();
}

export function isUuid(value: string): boolean {
  return uuidValidate(value);
}

/** An unguessable token (lease tokens, key secrets), base64url of `bytes` random bytes. */
export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}
