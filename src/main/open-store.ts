import type { Logger } from 'pino';
import type { ServerConfig } from '../core/config.js';
import { openPostgresStore } from '../store/postgres/open-postgres-store.js';
import { openSqliteDataDir } from '../store/sqlite/open-sqlite-store.js';
import type { Store } from '../store/store.js';

/** The composition roots' one choice of database: PostgreSQL when a URL is configured, else the embedded SQLite. */
export async function openStore(config: Pick<ServerConfig, 'databaseUrl' | 'dataDir'>, logger?: Logger): Promise<Store> {
  if (config.databaseUrl) return openPostgresStore({ url: config.databaseUrl, ...(logger ? { logger } : {}) });
  return openSqliteDataDir(config.dataDir);
}
