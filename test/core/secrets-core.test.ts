import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { SealedSecret } from '../../src/core/secret.js';
import { Envelope } from '../../src/secrets/envelope.js';
import { resolveSecrets } from '../../src/secrets/resolve.js';

describe('envelope encryption', () => {
  const envelope = new Envelope(randomBytes(32));
  const owner = { teamId: 't1', ownerUserId: '', name: 'TOKEN' };

  it('opens what it sealed, for the same owner and name only', () => {
    const sealed = envelope.seal(owner, 'a-secret-value');
    expect(sealed.valueCipher).not.toContain('a-secret-value');
    expect(envelope.open(owner, sealed)).toBe('a-secret-value');
    expect(() => envelope.open({ ...owner, name: 'OTHER' }, sealed)).toThrow(/does not open/);
    expect(() => envelope.open({ ...owner, teamId: 't2' }, sealed)).toThrow(/does not open/);
    expect(() => envelope.open({ ...owner, ownerUserId: 'u1' }, sealed)).toThrow(/does not open/);
    expect(() => new Envelope(randomBytes(32)).open(owner, sealed)).toThrow(/does not open/);
  });

  it('re-wraps a data key for another master key without touching the value', () => {
    const sealed = envelope.seal(owner, 'a-secret-value');
    const next = new Envelope(randomBytes(32));
    const wrappedKey = envelope.rewrap(owner, sealed.wrappedKey, next);
    expect(next.open(owner, { valueCipher: sealed.valueCipher, wrappedKey })).toBe('a-secret-value');
    expect(next.verifies(next.verifier())).toBe(true);
    expect(envelope.verifies(next.verifier())).toBe(false);
  });
});

describe('secret resolution (docs/design.md "Secrets")', () => {
  const secret = (name: string, extra: Partial<SealedSecret> = {}): SealedSecret => ({
    id: name,
    teamId: 't',
    scope: { type: 'team' },
    name,
    type: 'raw-value',
    description: null,
    setupOnly: false,
    createdAt: 0,
    updatedAt: 0,
    valueCipher: `${name}-team`,
    wrappedKey: '',
    ...extra,
  });
  const sealed = [
    secret('SHARED'),
    secret('SHARED', { scope: { type: 'user', userId: 'u1' }, valueCipher: 'SHARED-personal' }),
    secret('ONLY_SETUP', { setupOnly: true }),
    secret('CLAUDE', { type: 'anthropic-api-key' }),
    secret('CLAUDE_TOO', { type: 'anthropic-api-key' }),
  ];
  const base = {
    sealed,
    creatorId: 'u1',
    scheduled: false,
    environmentSecrets: ['SHARED', 'ONLY_SETUP', 'CLAUDE', 'MISSING'],
    runSecrets: undefined,
    open: (s: SealedSecret) => s.valueCipher,
  };

  it('takes the environment list; a personal secret shadows the team one; typed secrets become their variable; setup-only apart', () => {
    expect(resolveSecrets(base)).toEqual({
      ok: true,
      env: { SHARED: 'SHARED-personal', ANTHROPIC_API_KEY: 'CLAUDE-team' },
      setupEnv: { ONLY_SETUP: 'ONLY_SETUP-team' },
      unknown: ['MISSING'],
      withheld: [],
    });
  });

  it('never gives personal secrets to a scheduled run or to someone else', () => {
    expect(resolveSecrets({ ...base, scheduled: true })).toMatchObject({ env: { SHARED: 'SHARED-team' } });
    expect(resolveSecrets({ ...base, creatorId: 'u2' })).toMatchObject({ env: { SHARED: 'SHARED-team' } });
  });

  it("a run's own list replaces the environment's, [] meaning none", () => {
    expect(resolveSecrets({ ...base, runSecrets: [] })).toEqual({ ok: true, env: {}, setupEnv: {}, unknown: [], withheld: [] });
    expect(resolveSecrets({ ...base, runSecrets: ['CLAUDE_TOO'] })).toEqual({ ok: true, env: { ANTHROPIC_API_KEY: 'CLAUDE_TOO-team' }, setupEnv: {}, unknown: [], withheld: [] });
  });

  it('two secrets making one variable, or a value that does not open, are errors on the run', () => {
    expect(resolveSecrets({ ...base, runSecrets: ['CLAUDE', 'CLAUDE_TOO'] })).toMatchObject({ ok: false, reason: 'secret_variable_conflict' });
    expect(
      resolveSecrets({
        ...base,
        open: () => {
          throw new Error('no');
        },
      }),
    ).toMatchObject({ ok: false, reason: 'secret_unreadable' });
  });
});
