import { describe, expect, it } from 'vitest';
import { OutputCapture } from '../../src/agent/builtin/output-capture.js';
import { Redactor } from '../../src/secrets/redactor.js';

const SECRET = 'sk-live-0123456789abcdefghijklmnopqrstuvwxyz';

describe('what a tool hands the model', () => {
  it('keeps both ends of a long output, saying how much was left out', () => {
    const capture = new OutputCapture(100);
    for (let i = 0; i < 10_000; i++) capture.push(`line ${i}\n`);
    const text = capture.text();
    expect(text.startsWith('line 0\nline 1\n')).toBe(true);
    expect(text.endsWith('line 9999\n')).toBe(true);
    expect(text).toMatch(/\[… about \d+ characters omitted …\]/);
    expect(text.length).toBeLessThan(400);
  });

  it('never shows a fragment of a secret that straddles a cut', () => {
    const redactor = new Redactor([SECRET]);
    for (let offset = 0; offset < SECRET.length; offset += 7) {
      const capture = new OutputCapture(100);
      // Each end keeps 100 characters plus a 4096-character margin: put the secret across both raw cuts.
      const room = 100 + 4096;
      capture.push('x'.repeat(room - offset) + SECRET + 'y'.repeat(50_000) + SECRET + 'z'.repeat(room - SECRET.length + offset));
      const text = capture.text((t) => redactor.redact(t));
      for (let n = 8; n <= SECRET.length; n++) {
        expect(text).not.toContain(SECRET.slice(0, n));
        expect(text).not.toContain(SECRET.slice(-n));
      }
    }
  });

  it('redacts a short output whole', () => {
    const capture = new OutputCapture(100);
    capture.push(`token=${SECRET.slice(0, 10)}`);
    capture.push(`${SECRET.slice(10)}\n`);
    expect(capture.text((t) => new Redactor([SECRET]).redact(t))).not.toContain(SECRET);
  });
});
