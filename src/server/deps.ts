import type { Logger } from 'pino';
import type { ModelCatalog } from '../core/model-catalog.js';
import type { Clock } from '../core/clock.js';
import type { RunLimits } from '../core/environment.js';
import type { EventStreamSettings } from '../core/config.js';
import type { Envelope } from '../secrets/envelope.js';
import type { Store } from '../store/store.js';
import type { EventHub } from './event-hub.js';
import type { NetworkSettings } from './environment-service.js';

/** Everything the API needs, constructed by the composition root (src/main/server.ts). */
export interface ServerDeps {
  store: Store;
  clock: Clock;
  hub: EventHub;
  logger: Logger;
  /** `OZ_DEFAULT_MODEL` and `OZ_MODELS` (provider/model ids `GET /agent/models` lists beside the catalog). */
  models: { defaultModel: string | null; models: readonly string[] };
  /** The model catalog (`buildModelCatalog`); default: the built-in one with `models.defaultModel` (src/server/model-choice.ts). */
  modelCatalog?: ModelCatalog;
  /** Concurrency limit for teams created without one. */
  teamMaxConcurrentRuns: number;
  /** Seals and opens secret values (the deployment's master key). */
  envelope: Envelope;
  /** Lease length given to claims. */
  leaseTtlMs: number;
  /** The idle timeout of runs that set none (minutes) and the bound of a workspace snapshot (bytes); default: those of an empty configuration. */
  followups?: { idleTimeoutMinutes: number; workspaceMaxBytes: number; workspaceRetentionMs: number };
  /**
   * The in-process worker's credential: a random secret held only in memory by
   * this server and its embedded worker (never stored), so `oz server` needs no
   * worker token in the database.
   */
  embeddedWorkerSecret?: string;
  /** How often the scheduler looks for due slots. */
  schedulerIntervalMs?: number;
  /** How often the lifecycle sweeper runs (expired leases, admission); default `settingDefault('sweepIntervalMs')` (src/core/config.ts). */
  sweepIntervalMs?: number;
  /** How long an SSE reader waits before re-reading the store without a wake-up; default `settingDefault('eventPollMs')`. */
  eventPollMs?: number;
  /** Heartbeats, slow/idle client timeouts and per-key/team caps of the event streams (default: DEFAULT_EVENT_STREAMS). */
  eventStreams?: EventStreamSettings;
  /** GitHub's REST API (`OZ_GITHUB_API_URL`), where `devcontainer` files are read; default `settingDefault('githubApiUrl')`. */
  githubApiUrl?: string;
  /** Believe a reverse proxy's X-Forwarded-Proto/Host (`OZ_TRUST_PROXY`): links are https and the session cookie Secure behind a TLS proxy. */
  trustProxy?: boolean;
  /** How long a dashboard session lasts (`OZ_WEB_SESSION_HOURS`); default 12 hours. */
  webSessionTtlMs?: number;
  /** The dashboard's built assets (`dist/web`, with its index.html); absent or missing: `/` says the dashboard is not built. */
  webRoot?: string | null;
  /** The operator's per-run limits: defaults and ceilings (`OZ_SANDBOX_*`, `OZ_SANDBOX_MAX_*`); default: those of an empty configuration. */
  sandboxLimits?: { defaults: RunLimits; maxima: RunLimits };
  /** Network presets and the deployment's default policy (`OZ_NETWORK_*`); default: the built-in presets, `off`. */
  network?: NetworkSettings;
}
