import { timingSafeEqual } from 'node:crypto';

/**
 * Whether a presented token equals the expected one, in time that does not
 * depend on where they differ (only on their lengths, which are not secret:
 * every token of a kind has the same length).
 */
export function sameSecret(given: string | Buffer, expected: string | Buffer): boolean {
  const x = typeof given === 'string' ? Buffer.from(given) : given;
  const y = typeof expected === 'string' ? Buffer.from(expected) : expected;
  return x.length === y.length && timingSafeEqual(x, y);
}
