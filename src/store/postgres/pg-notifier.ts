import pg from 'pg';
import type { Logger } from 'pino';

/**
 * Cross-server wake-ups over PostgreSQL LISTEN/NOTIFY. A wake-up carries only a
 * key (a run id, or the "claimable" key) and no data: receivers re-read the
 * store, so a lost notification costs latency (the readers' poll covers it),
 * never correctness. One dedicated connection listens; it reconnects after
 * errors. The channel is per schema, so deployments sharing a database do not
 * wake each other.
 */
export class PgNotifier {
  private listener: pg.Client | null = null;
  private closed = false;
  private readonly handlers = new Set<(key: string) => void>();

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    readonly channel: string,
    private readonly logger?: Logger,
  ) {}

  async subscribe(handler: (key: string) => void): Promise<() => void> {
    this.handlers.add(handler);
    if (!this.listener) await this.connect();
    return () => this.handlers.delete(handler);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel || msg.payload === undefined) return;
      for (const handler of this.handlers) handler(msg.payload);
    });
    client.on('error', (error) => {
      this.logger?.warn({ err: error }, 'LISTEN connection lost; reconnecting');
      this.listener = null;
      void client.end().catch(() => {});
      if (!this.closed) setTimeout(() => void this.connect().catch(() => {}), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    this.listener = client;
  }

  /** Fire-and-forget: a failed NOTIFY only delays wake-ups until the next poll. */
  notify(key: string): void {
    if (this.closed || this.pool.ending) return;
    this.pool.query('SELECT pg_notify($1, $2)', [this.channel, key]).catch((error: unknown) => {
      this.logger?.warn({ err: error }, 'NOTIFY failed');
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => {});
  }
}
