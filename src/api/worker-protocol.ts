import { z } from 'zod';
import { NETWORK_POLICIES } from '../core/environment.js';
import { MAX_AUDIT_HOSTS } from '../core/network-audit.js';
import { PLATFORM_ERROR_CODES } from '../core/errors.js';
import { RUN_EVENT_TYPES } from '../core/run-event.js';
import { SNAPSHOT_NOTICE_REASONS } from '../core/worker-protocol.js';
import { MAX_DIFF_BYTES } from '../core/run-diff.js';
import { MAX_WORKER_LABELS, POOL_NAME_PATTERN, POOL_NAME_RULE } from '../core/worker-pool.js';
import type {
  ClaimRequest,
  ClaimResponse,
  ControlResponse,
  DiffsRequest,
  EventBatchRequest,
  EventBatchResponse,
  FinishRequest,
  FinishResponse,
  FollowupsDeliveredRequest,
  HeartbeatResponse,
  HistoryResponse,
  IdleRequest,
  IdleResponse,
  SnapshotNoticeData,
  StartResponse,
} from '../core/worker-protocol.js';
import { harnessItemSchema } from './runs.js';

/**
 * The worker protocol's bodies (docs/design.md "Worker protocol"), as the
 * server validates and encodes them. Their TypeScript types live in
 * src/core/worker-protocol.ts, which the worker uses without zod; the
 * checks at the end of this file keep the two the same.
 */

const lease = { lease_token: z.string().min(1).max(200) };

const poolName = z.string().regex(POOL_NAME_PATTERN, POOL_NAME_RULE);

/** A worker's own description in a claim (src/core/worker-protocol.ts `WorkerProfile`). */
export const workerProfileSchema = z
  .object({
    name: poolName,
    labels: z.array(poolName).max(MAX_WORKER_LABELS),
    backend: z.string().min(1).max(64),
    capacity: z.number().int().min(1).max(10_000),
    version: z.string().min(1).max(100),
  })
  .strict();

export const claimRequestSchema = z
  .object({
    worker_id: z.string().min(1).max(200),
    max_runs: z.number().int().min(1).max(64),
    wait_ms: z.number().int().min(0).max(30_000),
    worker: workerProfileSchema.exactOptional(),
  })
  .strict();

export const leaseRequestSchema = z.object(lease).strict();

export const controlQuerySchema = z
  .object({ ...lease, wait_ms: z.coerce.number().int().min(0).max(30_000).default(25_000), after: z.coerce.number().int().min(0).exactOptional() })
  .strict();

export const followupsDeliveredRequestSchema = z.object({ ...lease, through: z.number().int().min(0) }).strict();
export const workspaceQuerySchema = z
  .object({
    ...lease,
    // Each repository's commit when the snapshot was made, comma-separated (the environment's order).
    heads: z
      .string()
      .regex(/^([0-9a-f]{40,64}(,[0-9a-f]{40,64})*)?$/, 'must be commit ids, comma-separated')
      .max(20 * 65)
      .exactOptional(),
  })
  .strict();
export const idleRequestSchema = z.object({ worker_id: z.string().min(1).max(200), run_ids: z.array(z.string().min(1).max(200)).max(10_000) }).strict();
export const idleResponseSchema = z.object({ keep: z.array(z.string()) });
const commitId = z.string().regex(/^[0-9a-f]{40,64}$/, 'must be a commit id');
export const diffsRequestSchema = z
  .object({
    ...lease,
    diffs: z
      .array(
        z
          .object({
            repository: z.string().min(1).max(2000),
            base: commitId,
            head: commitId,
            // Cut by the worker to MAX_DIFF_BYTES of UTF-8; a character is at most 4 bytes, so never more characters than that.
            patch: z.string().max(MAX_DIFF_BYTES),
            bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
            truncated: z.boolean(),
          })
          .strict(),
      )
      .max(20),
  })
  .strict();
const claimedFollowupSchema = z.object({ seq: z.number().int(), message: z.string() });
export const historyResponseSchema = z.object({
  events: z.array(z.object({ type: z.enum(RUN_EVENT_TYPES), data: z.record(z.string(), z.unknown()) })),
  truncated: z.boolean(),
});

export const eventBatchRequestSchema = z
  .object({
    ...lease,
    batch_no: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    events: z
      .array(z.object({ type: z.enum(RUN_EVENT_TYPES), at: z.number().int().min(0), data: z.record(z.string(), z.unknown()) }).strict())
      .min(1)
      .max(1000),
  })
  .strict();

const statusMessage = z
  .object({
    message: z.string().max(10_000),
    error_code: z.enum(PLATFORM_ERROR_CODES).optional(),
    retryable: z.boolean().optional(),
    reason: z.string().max(500).optional(),
  })
  .strict();

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const auditCounts = { connections: count, denied: count, bytes_sent: count, bytes_received: count };
/** src/core/network-audit.ts `NetworkAudit`, bounded as the worker bounds it. */
export const networkAuditSchema = z
  .object({
    policy: z.enum(NETWORK_POLICIES),
    hosts: z
      .array(z.object({ host: z.string().min(1).max(300), port: z.number().int().min(0).max(65535), ...auditCounts, denied_reason: z.string().max(300).exactOptional() }).strict())
      .max(MAX_AUDIT_HOSTS),
    other: z.object(auditCounts).strict(),
  })
  .strict();

export const finishRequestSchema = z
  .object({
    ...lease,
    state: z.enum(['SUCCEEDED', 'FAILED', 'CANCELLED', 'ERROR']),
    status_message: statusMessage.optional(),
    usage: z
      .object({ input_tokens: z.number().int().min(0), output_tokens: z.number().int().min(0), steps: z.number().int().min(0) })
      .strict()
      .optional(),
    followups_through: z.number().int().min(0).optional(),
    idle_for_ms: z.number().int().min(0).max(3_600_000).optional(),
    // One that does not fit is dropped, never the finish with it (the run's end matters more than its audit).
    network_audit: networkAuditSchema.optional().catch(undefined),
  })
  .strict();

/** Limits in the worker's units (bytes, ms, cores), as src/core/environment.ts names them. */
const limitFields = {
  maxRuntimeMs: z.number(),
  pids: z.number(),
  memoryBytes: z.number(),
  diskBytes: z.number(),
  outputBytes: z.number(),
  cpus: z.number(),
};

/** The run's environment as stored (src/core/environment.ts `EnvironmentConfig`), with its id and name. */
const claimedEnvironmentSchema = z.object({
  id: z.string(),
  name: z.string(),
  dockerImage: z.string().exactOptional(),
  agentUser: z.string().exactOptional(),
  repos: z.array(z.object({ url: z.string(), branch: z.string().optional() })),
  setupCommands: z.array(z.string()),
  maintenanceCommands: z.array(z.string()).exactOptional(),
  env: z.record(z.string(), z.string()),
  network: z.enum(NETWORK_POLICIES),
  allowDomains: z.array(z.string()).exactOptional(),
  allowPresets: z.array(z.string()).exactOptional(),
  allowInternalRanges: z.array(z.string()).exactOptional(),
  secrets: z.array(z.string()),
  workerHost: z.string().exactOptional(),
  limits: z.object({
    maxRuntimeMs: limitFields.maxRuntimeMs.exactOptional(),
    pids: limitFields.pids.exactOptional(),
    memoryBytes: limitFields.memoryBytes.exactOptional(),
    diskBytes: limitFields.diskBytes.exactOptional(),
    outputBytes: limitFields.outputBytes.exactOptional(),
    cpus: limitFields.cpus.exactOptional(),
  }),
});

const claimedSecretsSchema = z.union([
  z.object({
    env: z.record(z.string(), z.string()),
    setup_env: z.record(z.string(), z.string()),
    unknown: z.array(z.string()),
    harness_auth: z.string().exactOptional(),
    harness_auth_base_url: z.string().exactOptional(),
    registry_auth: z.object({ registry: z.string(), username: z.string(), password: z.string() }).exactOptional(),
  }),
  z.object({ error: z.object({ message: z.string(), reason: z.string() }) }),
]);

/**
 * The run's network, resolved by the server (docs/network.md): the policy
 * (the environment's, else the deployment's default), the allowlist's rules
 * with the presets expanded, and the internal ranges an admin allowed.
 */
export const claimedNetworkSchema = z.object({
  policy: z.enum(NETWORK_POLICIES),
  allow: z.array(z.string()),
  internal_ranges: z.array(z.string()),
  /** Presets the environment names that this server no longer has (the run goes on without them). */
  unknown_presets: z.array(z.string()),
});
export type ClaimedNetwork = z.infer<typeof claimedNetworkSchema>;

export const claimedRunSchema = z.object({
  run_id: z.string(),
  /** Absent from servers before network allowlists: the environment's `network`, nothing else. */
  network: claimedNetworkSchema.exactOptional(),
  team_id: z.string(),
  attempt: z.number().int(),
  lease_token: z.string(),
  lease_expires_at: z.number(),
  lease_ttl_ms: z.number(),
  lease_valid_for_ms: z.number().exactOptional(),
  prompt: z.string(),
  title: z.string(),
  harness: harnessItemSchema,
  model_id: z.string().nullable(),
  max_runtime_ms: z.number().nullable(),
  max_steps: z.number().nullable(),
  max_tokens: z.number().nullable(),
  environment: claimedEnvironmentSchema.nullable(),
  limits: z.object(limitFields),
  cancel_requested: z.boolean(),
  schedule_id: z.string().nullable(),
  parent_run_id: z.string().nullable().exactOptional(),
  snapshot: z.boolean().exactOptional(),
  execution: z.number().int().exactOptional(),
  followups: z.array(claimedFollowupSchema).exactOptional(),
  followups_after: z.number().int().exactOptional(),
  diff_bases: z.array(z.string().nullable()).exactOptional(),
  checkouts: z.array(z.object({ branch: z.string().exactOptional(), commit: z.string().exactOptional(), push: z.boolean().exactOptional() }).nullable()).exactOptional(),
  workspace: z.object({ execution: z.number().int(), bytes: z.number().int(), heads: z.array(z.string()) }).exactOptional(),
  keep_workspace: z.boolean().exactOptional(),
  workspace_max_bytes: z.number().int().exactOptional(),
  idle_timeout_ms: z.number().int().exactOptional(),
  resume_idle: z.boolean().exactOptional(),
  secrets: claimedSecretsSchema,
});

/**
 * A snapshot notice's `data` (src/core/worker-protocol.ts `SnapshotNoticeData`),
 * checked before the server records it on the environment (the snapshot
 * object strictly: no other keys): a report that does not fit is left as the
 * plain notice it is.
 */
export const snapshotNoticeDataSchema = z.object({
  level: z.literal('info'),
  message: z.string().max(10_000),
  reason: z.enum(SNAPSHOT_NOTICE_REASONS),
  snapshot: z
    .object({
      key: z.string().regex(/^[0-9a-f]{64}$/),
      bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      // A Date's range: at most 8.64e15 ms from the epoch.
      created_at: z.number().int().min(0).max(8.64e15),
      hits: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
    })
    .strict(),
});

export const claimResponseSchema = z.object({ runs: z.array(claimedRunSchema) });
export const startResponseSchema = z.object({ cancel_requested: z.boolean() });
export const heartbeatResponseSchema = z.object({ lease_expires_at: z.number(), cancel_requested: z.boolean() });
export const controlResponseSchema = z.object({ cancel_requested: z.boolean(), followups: z.array(claimedFollowupSchema).exactOptional() });
export const eventBatchResponseSchema = z.object({ first_seq: z.number().int(), count: z.number().int(), duplicate: z.boolean() });
export const finishResponseSchema = z.object({ state: z.enum(['SUCCEEDED', 'FAILED', 'CANCELLED', 'ERROR']) });

/** Both ways assignable: the schema's type and the core type describe the same JSON. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

const _sameAsCore: [
  Same<z.output<typeof claimRequestSchema>, ClaimRequest>,
  Same<z.output<typeof claimResponseSchema>, ClaimResponse>,
  Same<z.output<typeof startResponseSchema>, StartResponse>,
  Same<z.output<typeof heartbeatResponseSchema>, HeartbeatResponse>,
  Same<z.output<typeof controlResponseSchema>, ControlResponse>,
  Same<z.output<typeof eventBatchRequestSchema>, EventBatchRequest>,
  Same<z.output<typeof eventBatchResponseSchema>, EventBatchResponse>,
  Same<z.output<typeof finishRequestSchema>, FinishRequest>,
  Same<z.output<typeof finishResponseSchema>, FinishResponse>,
  Same<z.output<typeof snapshotNoticeDataSchema>, SnapshotNoticeData>,
  Same<z.output<typeof followupsDeliveredRequestSchema>, FollowupsDeliveredRequest>,
  Same<z.output<typeof historyResponseSchema>, HistoryResponse>,
  Same<z.output<typeof idleRequestSchema>, IdleRequest>,
  Same<z.output<typeof idleResponseSchema>, IdleResponse>,
  Same<z.output<typeof diffsRequestSchema>, DiffsRequest>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true, true];
