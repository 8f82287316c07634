import type { NetworkPolicy } from '../core/environment.js';

/**
 * Where a run's processes execute (docs/design.md "Sandboxes"). One sandbox per
 * run, alive for the whole run; `exec` starts a process in it; `signal`
 * reaches every process the sandbox started; `destroy` kills what is left and
 * removes the workspace. Backends differ in capability flags, never in the
 * callers' code.
 */
export type OutputStream = 'stdout' | 'stderr';

export interface ExecOptions {
  /** The process environment, complete: nothing is inherited from the worker. */
  env: Record<string, string>;
  /** Relative to the workspace. */
  cwd?: string;
  stdin?: string;
  /** Kill the process (and its process group) after this long. */
  timeoutMs?: number;
  onOutput: (stream: OutputStream, chunk: Buffer) => void;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut?: boolean;
}

/**
 * Who runs in a sandbox on an image (docs/sandboxes.md "Images"):
 * `platform` — the platform's own steps (cloning, committing) on the
 * worker host's system, as the sandbox user, whatever the image holds;
 * `setup` — the environment's setup commands on the image, as root inside
 * the sandbox (an unprivileged host uid); `agent` — the harness on the
 * image, as the image's user (else a non-root one). Without an image all
 * three are the host's system as the sandbox user.
 */
export type SandboxPhase = 'platform' | 'setup' | 'agent';

/** The root a sandbox starts on instead of the host's system: one of `rootDir` (bwrap) or `engineImage` (docker). */
export interface SandboxImage {
  /** The image's unpacked root (shared, never written: each run writes its own layer). */
  rootDir?: string;
  /** The container engine's image id (the engine pulled it: `SandboxBackend.images`). */
  engineImage?: string;
  /** The in-sandbox uid and gid the harness runs as. */
  agentUid: number;
  agentGid: number;
}

/** A per-run limit the sandbox enforced by ending the run's processes. */
export type LimitKind = 'memory' | 'disk' | 'pids';

export interface Sandbox {
  /** The workspace as the sandbox's processes see it. */
  readonly workspacePath: string;
  /** Read-only mounts as the sandbox sees them, in the order of `SandboxSpec.mounts`. */
  readonly mountPaths: readonly string[];
  /** The run's harness-support socket as the sandbox sees it (`SandboxSpec.supportDir`), else null. */
  readonly supportSocketPath: string | null;
  /** The in-sandbox `oz` (its `oz harness-support`), as the sandbox sees it, else null (the host's `oz` on PATH serves). */
  readonly ozCliPath: string | null;
  /** A directory the sandbox sees the support directory's files in (the model proxy's socket), else null. */
  readonly supportDirPath: string | null;
  /** The worker-provided tools (`SandboxSpec.tools`) as the sandbox sees them, by name. */
  readonly toolPaths: Readonly<Record<string, string>>;
  /** A Node.js binary the sandbox can run (the worker's own, read-only). */
  readonly nodePath: string;
  exec(argv: readonly string[], options: ExecOptions): Promise<ExecResult>;
  /** Write a file into the workspace (0600) as the sandbox user; returns its path as the sandbox sees it. */
  writeFile(relativePath: string, content: string): Promise<string>;
  /**
   * Switch to `phase` (see {@link SandboxPhase}): a restart (as `restart`)
   * when its root or user differs from the current one's, else nothing.
   * With `whileStopped`, always a restart, which runs it after every
   * process of the sandbox ended and before the next launch (a snapshot is
   * read then). Resolves to whether it restarted.
   */
  enter(phase: SandboxPhase, whileStopped?: () => Promise<void>): Promise<boolean>;
  /**
   * The host directories holding what the run wrote so far, for a snapshot
   * taken between setup and the harness: the workspace and, on an image, its
   * writable layer. Null where the backend cannot say (direct) or the
   * sandbox started warm (its state is layered on a snapshot already).
   * `keepOwners`: the snapshot must keep the files' owners (a backend whose
   * uids are the host's); else they become the store's.
   */
  stateDirs(): { workspace: string; layer: string | null; keepOwners?: boolean } | null;
  /** Signal every process of the sandbox. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void;
  /**
   * End every process the sandbox started and start it afresh on the same
   * workspace: nothing that saw an earlier exec's environment (setup-only
   * secrets) survives, the bwrap init that carried it included.
   */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  /**
   * End every process of the sandbox but its init, which stays (a sandbox kept
   * idle for a follow-up: nothing the agent left runs on, and the next
   * execution goes on in the same init). Absent where the backend cannot
   * keep the init alone (the caller restarts instead).
   */
  quiet?(): Promise<void>;
  /**
   * Under network `on`: the internal destinations refused so far and the
   * bytes the sandbox's interface moved (its current launch's: a restart
   * starts them afresh); null where the backend cannot say.
   */
  networkReport?(): Promise<NetworkReport | null>;
  /** A limit that was hit so far (memory: the kernel killed a process for it). */
  limitHit(): Promise<LimitKind | null>;
  /**
   * Extend the fence (`SandboxSpec.fenceAfterMs`) to now + `validForMs` on the
   * monotonic clock: unless renewed again by then, every process of the
   * sandbox is killed, by a watchdog process that does not need the worker
   * to be scheduled. Too late once the deadline passed: the sandbox is gone,
   * and its requests fail with `FENCE_LAPSED` (src/sandbox/fence.ts). On a
   * sandbox created without a fence, starts one.
   */
  renewFence(validForMs: number): void;
  /** Kill everything left and remove the workspace. Idempotent. */
  destroy(): Promise<void>;
}

export interface NetworkReport {
  refused: { address: string; port: number }[];
  sent: number;
  received: number;
}

export interface SandboxLimits {
  pids: number;
  memoryBytes: number;
  diskBytes: number;
  /** CPU time as cores (fractional: 1.5 = one and a half); absent = unlimited. Enforced where a cgroup cpu controller is available. */
  cpus?: number;
}

export interface SandboxSpec {
  runId: string;
  /**
   * `off`: no network; `allowlist`: none either, but the init bridges the
   * sandbox's 127.0.0.1:EGRESS_PORT to the egress proxy's socket in
   * `supportDir` (src/sandbox/sandbox-layout.ts); `on`: out to public
   * addresses only (src/sandbox/egress-rules.ts).
   */
  network: NetworkPolicy;
  /** Under `on` (and the proxy's under `allowlist`): internal ranges the operator allowed. */
  internalRanges?: readonly string[] | undefined;
  limits: SandboxLimits;
  /** Host directories bound read-only into the sandbox (repository mirrors). */
  mounts: readonly string[];
  /** A host directory holding the run's harness-support socket (`sock`), made reachable inside. */
  supportDir?: string | undefined;
  /** Executables and scripts the worker provides (agent CLIs), bound read-only by name. */
  tools?: readonly { name: string; path: string }[];
  /** The image root to start on (backends with `runsImages`); absent: the host's system. */
  image?: SandboxImage | undefined;
  /** A warm start: the saved workspace (and, on an image, layer) to start on, as the worker's snapshot store keeps them (owned by host root). */
  restore?: { workspace: string; layer: string | null } | undefined;
  /** The phase the sandbox starts in (default `platform`). */
  phase?: SandboxPhase;
  /** Called once when a limit ends the sandbox's processes (the run must end). */
  onLimit: (kind: LimitKind) => void;
  /**
   * Fencing: if set, the sandbox kills itself (every process, from a watchdog
   * outside the worker) unless `Sandbox.renewFence` is called within this
   * many ms from creation, and then within each renewal's validity.
   */
  fenceAfterMs?: number;
}

export interface SandboxBackend {
  readonly name: string;
  /** Whether a run is isolated from the host and other runs (bwrap: yes; direct: no). */
  readonly isolates: boolean;
  /** Whether sandboxes can start on an image root (`SandboxSpec.image`). */
  readonly runsImages: boolean;
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Remove what the backend keeps on the host (after its last sandbox is destroyed). */
  close?(): void;
}
