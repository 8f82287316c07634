import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import type { ServerConfig } from '../core/config.js';
import { isOzError } from '../core/errors.js';
import { API_KEY_PREFIX, mintCredential } from '../server/credentials.js';
import type { Store } from '../store/store.js';
import { readCliConfigFile, writeCliConfigFile } from '../cli/cli-config-file.js';

export const DEFAULT_TEAM = 'default';
export const ADMIN_EMAIL = 'admin@localhost';

/**
 * First start on an empty store: a `default` team, an admin user and an admin
 * API key. The key goes (0600) into the CLI config so the local `oz` just
 * works; it is printed only on a TTY, never into logs or a pipe. Two servers
 * starting on one empty PostgreSQL race on the unique team name: the loser
 * does nothing.
 */
export async function bootstrapAdmin(
  deps: { store: Store; clock: Clock; logger: Logger; config: Pick<ServerConfig, 'teamMaxConcurrentRuns' | 'cliConfigPath'>; isTty: boolean; print: (line: string) => void },
  serverUrl: string,
): Promise<void> {
  const { store, clock, config } = deps;
  if ((await store.countTeams()) > 0) return;
  const now = clock.now();
  let team;
  try {
    team = await store.createTeam({ name: DEFAULT_TEAM, maxConcurrentRuns: config.teamMaxConcurrentRuns }, now);
  } catch (error) {
    if (isOzError(error) && error.code === 'conflict') return;
    throw error;
  }
  const user = await store.createUser({ teamId: team.id, email: ADMIN_EMAIL, displayName: 'Admin', role: 'admin' }, now);
  const minted = mintCredential(API_KEY_PREFIX);
  await store.createApiKey({ teamId: team.id, userId: user.id, name: 'bootstrap-admin', prefix: minted.prefix, secretHash: minted.secretHash, expiresAt: null }, now);
  writeCliConfigFile(config.cliConfigPath, { ...readCliConfigFile(config.cliConfigPath), server_url: serverUrl, api_key: minted.secret });
  deps.logger.info({ path: config.cliConfigPath, prefix: minted.prefix }, 'created the first admin API key');
  deps.print(`Created team "${DEFAULT_TEAM}" and admin ${ADMIN_EMAIL}; the admin API key is in ${config.cliConfigPath} (0600).`);
  if (deps.isTty) deps.print(`Admin API key (shown once): ${minted.secret}`);
}
