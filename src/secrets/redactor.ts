import { SECRET_MIN_LENGTH } from '../core/secret.js';

export const MASK = '***';

/** The forms a value is likely to be printed in (docs/design.md "Secrets"); also what a snapshot is searched for. */
export function forms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const base64 = bytes.toString('base64');
  const lines = value.split(/\r?\n/).filter((line) => line.trim().length >= SECRET_MIN_LENGTH);
  return [
    value,
    ...(lines.length > 1 ? lines : []),
    base64,
    base64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    encodeURIComponent(value),
    encodeURIComponent(value).replace(/%20/g, '+'),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    JSON.stringify(value).slice(1, -1),
  ];
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Masks secret values in text before it is stored, streamed or sent to a
 * model: the raw value, each line of a multi-line value, base64 (with and
 * without padding), base64url, URL-encoded, hex (both cases) and
 * JSON-escaped forms, longest first. Best-effort, as in CI systems: a value
 * transformed any other way is not recognised. Callers feed it whole lines
 * (output is line-buffered), so a value split across writes is still caught.
 * Written by hand: no maintained library does this set of encodings.
 */
export class Redactor {
  private readonly pattern: RegExp | null;
  /** The longest form masked: text cut anywhere may hold at most this much of one value unseen. */
  readonly longestForm: number;

  constructor(values: readonly string[]) {
    const all = new Set<string>();
    for (const value of values) for (const form of forms(value)) if (form.length >= SECRET_MIN_LENGTH) all.add(form);
    const sorted = [...all].sort((a, b) => b.length - a.length);
    this.pattern = sorted.length > 0 ? new RegExp(sorted.map(escapeRegExp).join('|'), 'g') : null;
    this.longestForm = sorted[0]?.length ?? 0;
  }

  /**
   * Where `text` may be cut at or after `at` without splitting a value: `at`
   * itself, or the end of the match that straddles it. Text before the cut can
   * be redacted and sent; text after it must wait for what comes next.
   */
  safeCut(text: string, at: number): number {
    if (!this.pattern || at <= 0 || at >= text.length) return Math.max(0, Math.min(at, text.length));
    for (const match of text.matchAll(this.pattern)) {
      if (match.index >= at) break;
      const end = match.index + match[0].length;
      if (end > at) return end;
    }
    return at;
  }

  redact(text: string): string {
    return this.pattern ? text.replace(this.pattern, MASK) : text;
  }

  /** Every string inside a JSON-like value, redacted (event data, status messages). */
  redactDeep<T>(value: T): T {
    if (!this.pattern) return value;
    if (typeof value === 'string') return this.redact(value) as T;
    if (Array.isArray(value)) return value.map((item: unknown) => this.redactDeep(item)) as T;
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.redactDeep(item)])) as T;
    }
    return value;
  }
}
