import pg from 'pg';
import type { Logger } from 'pino';
import type { WakeupBus } from '../store.js';
import { WAKE_EVERY_WAITER } from '../wakeups.js';

export interface PgNotifierOptions {
  /** First reconnect delay; doubles per failed attempt up to `maxBackoffMs` (each with jitter). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Give up a connection attempt after this long (a host that drops packets). */
  connectTimeoutMs?: number;
}

/** The delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter" (half fixed, half random). */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/**
 * Cross-server wake-ups over PostgreSQL LISTEN/NOTIFY. A wake-up carries only a
 * key (a run id, or the "claimable" key) and no data: receivers re-read the
 * store, so a lost notification costs latency (the readers' poll covers it),
 * never correctness. The channel is per schema, so deployments sharing a
 * database do not wake each other.
 *
 * One dedicated connection listens. When it is lost (a database restart, a
 * network cut) it is re-made with capped, jittered exponential backoff for as
 * long as it takes; once it is back and LISTENing again, every subscriber
 * gets {@link WAKE_EVERY_WAITER}, because whatever was notified meanwhile
 * never arrived.
 */
export class PgNotifier implements WakeupBus {
  private listener: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private closed = false;
  private readonly handlers = new Set<(key: string) => void>();
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly connectTimeoutMs: number;

  constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    readonly channel: string,
    private readonly logger?: Logger,
    options: PgNotifierOptions = {},
  ) {
    this.minBackoffMs = options.minBackoffMs ?? 100;
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  }

  /** True while the LISTEN connection is up (otherwise wake-ups from other servers fall back to the readers' poll). */
  get listening(): boolean {
    return this.listener !== null;
  }

  /**
   * Starts listening on the first subscription. Resolves once LISTEN is in
   * place, or after the first attempt failed (the retries go on in the
   * background): a server does not refuse to start over its wake-ups.
   */
  async subscribe(handler: (key: string) => void): Promise<() => void> {
    this.handlers.add(handler);
    if (!this.listener && !this.connecting && !this.retryTimer && !this.closed) await this.reconnect(false);
    return () => this.handlers.delete(handler);
  }

  private deliver(key: string): void {
    for (const handler of this.handlers) {
      try {
        handler(key);
      } catch (error) {
        this.logger?.error({ err: error }, 'wake-up handler failed');
      }
    }
  }

  private async connectOnce(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.connectTimeoutMs, keepAlive: true });
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel || msg.payload === undefined) return;
      this.deliver(msg.payload);
    });
    // Always listened to: an 'error' event without a listener would end the process.
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the LISTEN connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (error) {
      void client.end().catch(() => {});
      throw error;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.listener = client;
  }

  private lost(client: pg.Client, error: Error): void {
    if (this.listener !== client) return; // a failed attempt (its caller handles it), or already handled
    this.listener = null;
    void client.end().catch(() => {});
    if (this.closed) return;
    this.logger?.warn({ err: error }, 'LISTEN connection lost; reconnecting (wake-ups from other servers wait for the poll meanwhile)');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer || this.connecting) return;
    const delay = backoffMs(this.attempt, this.minBackoffMs, this.maxBackoffMs);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.reconnect(true);
    }, delay);
    this.retryTimer.unref();
  }

  /** One attempt; never rejects (a failure schedules the next). */
  private reconnect(afterLoss: boolean): Promise<void> {
    this.connecting ??= (async () => {
      try {
        await this.connectOnce();
      } catch (error) {
        this.connecting = null;
        // Every attempt of a long outage would say the same; say it at the first and then every 10th.
        if (this.attempt % 10 === 0) this.logger?.warn({ err: error, attempt: this.attempt + 1 }, 'cannot LISTEN for wake-ups yet; retrying');
        this.scheduleReconnect();
        return;
      }
      this.connecting = null;
      if (this.closed || !this.listener) return;
      if (afterLoss || this.attempt > 0) {
        this.logger?.info({ attempts: this.attempt }, 'LISTEN connection restored');
        // What was notified while nobody listened is lost: wake everyone to re-read.
        this.deliver(WAKE_EVERY_WAITER);
      }
      this.attempt = 0;
    })();
    return this.connecting;
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
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    await this.connecting;
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => {});
  }
}
