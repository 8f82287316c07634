import { describe, expect, it } from 'vitest';
import { Redactor } from '../../src/secrets/redactor.js';

describe('redaction', () => {
  const secret = 'sk-test/Ab+c"d\\e f?g=1';
  const redactor = new Redactor([secret, 'line-one-of-key\nline-two-of-key']);

  it('masks the raw value and its common encodings', () => {
    const bytes = Buffer.from(secret);
    for (const form of [
      secret,
      bytes.toString('base64'),
      bytes.toString('base64').replace(/=+$/, ''),
      bytes.toString('base64url'),
      encodeURIComponent(secret),
      bytes.toString('hex'),
      bytes.toString('hex').toUpperCase(),
      JSON.stringify(secret).slice(1, -1),
    ]) {
      expect(redactor.redact(`before ${form} after`)).toBe('before *** after');
    }
  });

  it('masks each line of a multi-line value on its own', () => {
    expect(redactor.redact('x line-two-of-key y')).toBe('x *** y');
    expect(redactor.redact('line-one-of-key\nline-two-of-key')).toBe('***');
  });

  it('leaves other text alone, and deep-redacts structures', () => {
    expect(redactor.redact('nothing secret here')).toBe('nothing secret here');
    expect(redactor.redactDeep({ a: [`k=${secret}`, 3], b: { c: secret }, d: null })).toEqual({ a: ['k=***', 3], b: { c: '***' }, d: null });
    expect(new Redactor([]).redact(secret)).toBe(secret);
  });
});
