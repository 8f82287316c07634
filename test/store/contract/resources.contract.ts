import { describe, expect, it } from 'vitest';
import { defaultEnvironmentConfig } from '../../../src/core/environment.js';
import type { StoreFactory } from '../../support/store-factories.js';
import { seedTeam, T0 } from '../../support/run-fixtures.js';
import { useStore } from './use-store.js';

export function resourceContract(factory: StoreFactory): void {
  describe('teams, users, keys and environments', () => {
    const h = useStore(factory);

    it('team names and user emails are unique, as a conflict naming the field', async () => {
      const { store } = h.current;
      const team = await store.createTeam({ name: 'acme', maxConcurrentRuns: 4 }, T0);
      expect(await store.getTeamByName('acme')).toEqual(team);
      expect(await store.countTeams()).toBe(1);
      await expect(store.createTeam({ name: 'acme', maxConcurrentRuns: 4 }, T0)).rejects.toMatchObject({ code: 'conflict', reason: 'name' });
      const user = await store.createUser({ teamId: team.id, email: 'a@acme.test', displayName: 'A', role: 'admin' }, T0);
      expect(await store.getUserByEmail('a@acme.test')).toEqual(user);
      await expect(store.createUser({ teamId: team.id, email: 'a@acme.test', displayName: null, role: 'member' }, T0)).rejects.toMatchObject({ code: 'conflict', reason: 'email' });
    });

    it('API keys are found by hash until they expire, and listed per team', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const other = await seedTeam(store);
      const user = await store.createUser({ teamId: team.id, email: 'k@acme.test', displayName: null, role: 'member' }, T0);
      const key = await store.createApiKey({ teamId: team.id, userId: user.id, name: 'laptop', prefix: 'oz_ab12', secretHash: 'hash-1', expiresAt: T0 + 1000 }, T0);
      expect(await store.findApiKeyByHash('hash-1', T0 + 999)).toMatchObject({ key, user, team });
      expect(await store.findApiKeyByHash('hash-1', T0 + 1000)).toBeNull();
      expect(await store.findApiKeyByHash('nope', T0)).toBeNull();
      const forever = await store.createApiKey({ teamId: team.id, userId: user.id, name: 'ci', prefix: 'oz_cd34', secretHash: 'hash-2', expiresAt: null }, T0 + 1);
      expect((await store.listApiKeys(team.id)).map((k) => k.name)).toEqual(['laptop', 'ci']);
      expect(await store.listApiKeys(other.id)).toEqual([]);
      expect(await store.expireApiKey(other.id, forever.id, T0 + 5)).toBe(false);
      expect(await store.expireApiKey(team.id, forever.id, T0 + 5)).toBe(true);
      expect(await store.findApiKeyByHash('hash-2', T0 + 5)).toBeNull();
      expect(await store.expireApiKey(team.id, forever.id, T0 + 6)).toBe(false);
    });

    it('worker tokens are unique by name, found by hash until revoked', async () => {
      const { store } = h.current;
      const token = await store.createWorkerToken({ name: 'box-1', prefix: 'ozw_ab', secretHash: 'wh-1', createdBy: null }, T0);
      await expect(store.createWorkerToken({ name: 'box-1', prefix: 'ozw_cd', secretHash: 'wh-2', createdBy: null }, T0)).rejects.toMatchObject({
        code: 'conflict',
        reason: 'name',
      });
      expect(await store.findWorkerTokenByHash('wh-1')).toEqual(token);
      expect(await store.listWorkerTokens()).toEqual([token]);
      expect(await store.revokeWorkerToken(token.id, T0 + 1)).toBe(true);
      expect(await store.revokeWorkerToken(token.id, T0 + 2)).toBe(false);
      expect(await store.findWorkerTokenByHash('wh-1')).toBeNull();
      expect((await store.listWorkerTokens())[0]?.revokedAt).toBe(T0 + 1);
    });

    it('environments: create, read, list, update and delete, within the team and scope', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const other = await seedTeam(store);
      const config = { ...defaultEnvironmentConfig(), repos: [{ url: 'https://github.com/o/app.git' }], setupCommands: ['npm ci'] };
      const env = await store.createEnvironment({ teamId: team.id, scope: { type: 'team' }, creatorId: 'u1', name: 'web', description: null, config }, T0);
      expect(env).toMatchObject({ name: 'web', config, setupFailed: false, createdAt: T0, updatedAt: T0 });
      const personal = await store.createEnvironment({ teamId: team.id, scope: { type: 'user', userId: 'u2' }, creatorId: 'u2', name: 'mine', description: 'd', config }, T0 + 1);
      expect(await store.getEnvironment(team.id, env.id)).toEqual(env);
      expect(await store.getEnvironment(other.id, env.id)).toBeNull();
      expect(await store.getEnvironment(team.id, personal.id, 'u1')).toBeNull();
      expect(await store.getEnvironment(team.id, personal.id, 'u2')).toEqual(personal);
      expect((await store.listEnvironments(team.id, 'u1')).map((e) => e.name)).toEqual(['web']);
      expect((await store.listEnvironments(team.id, 'u2')).map((e) => e.name)).toEqual(['mine', 'web']);

      const updated = await store.updateEnvironment(team.id, env.id, { description: 'front end', config: { ...config, network: 'on' }, setupFailed: true }, T0 + 5);
      expect(updated).toMatchObject({ name: 'web', description: 'front end', setupFailed: true, updatedAt: T0 + 5 });
      expect(updated?.config.network).toBe('on');
      expect(await store.updateEnvironment(other.id, env.id, { name: 'stolen' }, T0 + 6)).toBeNull();
      expect(await store.deleteEnvironment(other.id, env.id)).toBe(false);
      expect(await store.deleteEnvironment(team.id, env.id)).toBe(true);
      expect(await store.getEnvironment(team.id, env.id)).toBeNull();
      expect(await store.deleteEnvironment(team.id, env.id)).toBe(false);
    });

    it('environment snapshots: the latest per environment, within its team, gone with the environment', async () => {
      const { store } = h.current;
      const team = await seedTeam(store);
      const other = await seedTeam(store);
      const config = { ...defaultEnvironmentConfig(), maintenanceCommands: ['npm install'] };
      const env = await store.createEnvironment({ teamId: team.id, scope: { type: 'team' }, creatorId: 'u1', name: 'web', description: null, config }, T0);
      const second = await store.createEnvironment({ teamId: team.id, scope: { type: 'team' }, creatorId: 'u1', name: 'api', description: null, config }, T0);
      expect(env.config.maintenanceCommands).toEqual(['npm install']);
      const snapshot = { environmentId: env.id, teamId: team.id, key: 'a'.repeat(64), bytes: 5 * 2 ** 30, createdAt: T0, hits: 0, lastUsedAt: T0 + 1, runId: 'r1' };
      expect(await store.environmentSnapshots.get(team.id, env.id)).toBeNull();
      expect(await store.environmentSnapshots.record(snapshot)).toBe(true);
      expect(await store.environmentSnapshots.get(team.id, env.id)).toEqual(snapshot);
      const restored = { ...snapshot, hits: 3, lastUsedAt: T0 + 9, runId: 'r2' };
      expect(await store.environmentSnapshots.record(restored)).toBe(true);
      expect(await store.environmentSnapshots.get(team.id, env.id)).toEqual(restored);
      // Another team's environment is not this team's to record on, nor to read.
      expect(await store.environmentSnapshots.record({ ...snapshot, teamId: other.id })).toBe(false);
      expect(await store.environmentSnapshots.get(other.id, env.id)).toBeNull();
      expect(await store.environmentSnapshots.record({ ...snapshot, environmentId: 'no-such-env' })).toBe(false);
      expect(await store.environmentSnapshots.list(team.id, [env.id, second.id])).toEqual([restored]);
      expect(await store.environmentSnapshots.list(other.id, [env.id])).toEqual([]);
      expect(await store.environmentSnapshots.list(team.id, [])).toEqual([]);
      expect(await store.deleteEnvironment(team.id, env.id)).toBe(true);
      expect(await store.environmentSnapshots.get(team.id, env.id)).toBeNull();
      expect(await store.environmentSnapshots.record(snapshot)).toBe(false);
    });
  });
}
