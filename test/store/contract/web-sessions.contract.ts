import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

async function seedKey(store: Store, expiresAt: number | null = null): Promise<{ keyId: string; userId: string }> {
  const team = await seedTeam(store);
  const user = await store.createUser({ teamId: team.id, email: `p-${Math.random().toString(36).slice(2)}@example.test`, displayName: null, role: 'member' }, T0);
  const key = await store.createApiKey({ teamId: team.id, userId: user.id, name: 'k', prefix: 'oz_abc', secretHash: `h-${Math.random()}`, expiresAt }, T0);
  return { keyId: key.id, userId: user.id };
}

/** The dashboard's sessions and login links (migration 0012-web-sessions), on every database. */
export function webSessionContract(factory: StoreFactory): void {
  describe('dashboard sessions and login links', () => {
    const h = useStore(factory);

    it('a session acts as its key until it ends, expires, or its key expires', async () => {
      const { store } = h.current;
      const { keyId, userId } = await seedKey(store, T0 + 10_000);
      await store.webSessions.create({ secretHash: 's1', keyId, csrfToken: 'c1', expiresAt: T0 + 5000 }, T0);
      await store.webSessions.create({ secretHash: 's2', keyId, csrfToken: 'c2', expiresAt: T0 + 50_000 }, T0);
      const found = await store.webSessions.find('s1', T0 + 1);
      expect(found).toMatchObject({ session: { csrfToken: 'c1', keyId, expiresAt: T0 + 5000 }, user: { id: userId }, key: { id: keyId } });
      expect(await store.webSessions.find('nope', T0 + 1)).toBeNull();
      // Its own expiry.
      expect(await store.webSessions.find('s1', T0 + 5000)).toBeNull();
      // The key's expiry ends a session that would last longer.
      expect(await store.webSessions.find('s2', T0 + 9999)).not.toBeNull();
      expect(await store.webSessions.find('s2', T0 + 10_000)).toBeNull();
    });

    it('sign-out ends a session once; pruning forgets what ended over a day ago', async () => {
      const { store } = h.current;
      const { keyId } = await seedKey(store);
      await store.webSessions.create({ secretHash: 's', keyId, csrfToken: 'c', expiresAt: T0 + 3600_000 }, T0);
      expect(await store.webSessions.end('s', T0 + 1)).toBe(true);
      expect(await store.webSessions.end('s', T0 + 2)).toBe(false);
      expect(await store.webSessions.find('s', T0 + 3)).toBeNull();
      await store.webSessions.prune(T0 + 2 * 24 * 3600_000);
      const rows = await h.current.store.db.selectFrom('web_sessions').select('secret_hash').execute();
      expect(rows).toEqual([]);
    });

    it('a login link works once, before it expires, even when two uses race', async () => {
      const { store } = h.current;
      const { keyId } = await seedKey(store);
      await store.webSessions.createLoginLink({ secretHash: 'l1', keyId, path: '/runs/abc', expiresAt: T0 + 120_000 }, T0);
      await store.webSessions.createLoginLink({ secretHash: 'l2', keyId, path: '/runs', expiresAt: T0 + 120_000 }, T0);
      const [a, b] = await Promise.all([store.webSessions.consumeLoginLink('l1', T0 + 1), store.webSessions.consumeLoginLink('l1', T0 + 1)]);
      expect([a, b].filter((x) => x !== null)).toEqual([{ keyId, path: '/runs/abc' }]);
      expect(await store.webSessions.consumeLoginLink('l1', T0 + 2)).toBeNull();
      expect(await store.webSessions.consumeLoginLink('l2', T0 + 120_000)).toBeNull();
      expect(await store.webSessions.consumeLoginLink('unknown', T0 + 2)).toBeNull();
    });

    it('lists teams and a team’s users, oldest first', async () => {
      const { store } = h.current;
      const a = await seedTeam(store);
      const b = await seedTeam(store);
      await store.createUser({ teamId: b.id, email: 'one@example.test', displayName: null, role: 'member' }, T0 + 1);
      await store.createUser({ teamId: b.id, email: 'two@example.test', displayName: null, role: 'admin' }, T0 + 2);
      const names = (await store.listTeams()).map((t) => t.id);
      expect(names.indexOf(a.id)).toBeLessThan(names.indexOf(b.id));
      expect((await store.listUsers(b.id)).map((u) => u.email)).toEqual(['one@example.test', 'two@example.test']);
      expect(await store.listUsers(a.id)).toEqual([]);
    });
  });
}
