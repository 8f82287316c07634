import { PostgresDialect, type CompiledQuery, type DatabaseConnection, type Driver, type QueryCompiler, type QueryResult, type TransactionSettings } from 'kysely';
import { mapConnectionError } from './connection-errors.js';

type Compile = QueryCompiler['compileQuery'];

/**
 * Kysely's PostgreSQL dialect with every error from the database passed
 * through {@link mapConnectionError}: a lost or refused connection surfaces
 * as the 503 `resource_unavailable`, whichever query or transaction step hit
 * it. The pool itself (its `error` listeners, reconnects) is set up in
 * `open-postgres-store.ts`.
 */
export class ResilientPostgresDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new MappingDriver(super.createDriver());
  }
}

/** Our wrapper around a connection; the inner driver gets its own connection back (it keeps private state on it). */
class MappingConnection implements DatabaseConnection {
  constructor(readonly inner: DatabaseConnection) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.inner.executeQuery<R>(compiledQuery).catch(mapConnectionError);
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    try {
      yield* this.inner.streamQuery<R>(compiledQuery, chunkSize);
    } catch (error) {
      mapConnectionError(error);
    }
  }
}

const innerOf = (connection: DatabaseConnection): DatabaseConnection => (connection instanceof MappingConnection ? connection.inner : connection);

class MappingDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init().catch(mapConnectionError);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new MappingConnection(await this.inner.acquireConnection().catch(mapConnectionError));
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.inner.beginTransaction(innerOf(connection), settings).catch(mapConnectionError);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.commitTransaction(innerOf(connection)).catch(mapConnectionError);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.inner.rollbackTransaction(innerOf(connection)).catch(mapConnectionError);
  }

  async savepoint(connection: DatabaseConnection, savepointName: string, compileQuery: Compile): Promise<void> {
    await this.inner.savepoint?.(innerOf(connection), savepointName, compileQuery).catch(mapConnectionError);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, savepointName: string, compileQuery: Compile): Promise<void> {
    await this.inner.rollbackToSavepoint?.(innerOf(connection), savepointName, compileQuery).catch(mapConnectionError);
  }

  async releaseSavepoint(connection: DatabaseConnection, savepointName: string, compileQuery: Compile): Promise<void> {
    await this.inner.releaseSavepoint?.(innerOf(connection), savepointName, compileQuery).catch(mapConnectionError);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.inner.releaseConnection(innerOf(connection));
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}
