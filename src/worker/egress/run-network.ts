import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NetworkPolicy } from '../../core/environment.js';
import { emptyCounts, type AuditHost, type NetworkAudit } from '../../core/network-audit.js';
import { parseDomainRule } from '../../core/network-policy.js';
import type { ClaimedNetwork, ClaimedRun } from '../../core/worker-protocol.js';
import type { RunEventType } from '../../core/run-event.js';
import type { NetworkReport, Sandbox } from '../../sandbox/sandbox-backend.js';
import { EGRESS_PROXY_URL, EGRESS_SOCKET } from '../../sandbox/sandbox-layout.js';
import { EgressProxy, hostPort, type Denial } from './egress-proxy.js';

/** Denials told in the conversation per execution; the rest are counted in the audit. */
const MAX_DENIAL_NOTICES = 50;
/** How often a run with network `on` is asked what its rules refused. */
const WATCH_MS = 5000;

type Emit = (event: { type: RunEventType; at: number; data: Record<string, unknown> }) => void;

/** What a sandbox's network was made from, as one string: the policy and (if any) the rules and ranges. */
export function networkKey(network: ClaimedNetwork): string {
  if (network.allow.length === 0 && network.internal_ranges.length === 0) return network.policy;
  return JSON.stringify({ policy: network.policy, allow: [...network.allow].sort(), ranges: [...network.internal_ranges].sort() });
}

/** The run's network as the claim gives it; from an older server, the environment's policy alone. */
export function claimedNetwork(run: ClaimedRun): ClaimedNetwork {
  return run.network ?? { policy: run.environment?.network ?? 'off', allow: [], internal_ranges: [], unknown_presets: [] };
}

/**
 * One execution's network (docs/network.md): under `allowlist` the egress
 * proxy on the run's socket directory and the proxy variables of every
 * process; under `on` a watch on what the sandbox's rules refused. Each
 * denial becomes a notice in the conversation ("network denied: host:port
 * (why)"), once per destination; the audit goes with the finish.
 */
export class RunNetwork {
  readonly policy: NetworkPolicy;
  readonly internalRanges: readonly string[];
  private proxy: EgressProxy | null = null;
  private readonly told = new Set<string>();
  private notices = 0;
  private watch: NodeJS.Timeout | null = null;
  /** An adopted idle sandbox's report when this execution began (its counters go on from there). */
  private baseline: NetworkReport | null = null;

  /**
   * `enforced`: the backend isolates (on `direct` nothing is enforced, and the run says so: no
   * proxy is started, and no variable points at one that is not there).
   */
  constructor(
    private readonly network: ClaimedNetwork,
    private readonly emit: Emit,
    private readonly logger: Logger,
    private readonly enforced = true,
  ) {
    this.policy = network.policy;
    this.internalRanges = network.internal_ranges;
  }

  /** Start the proxy (under `allowlist`) in the run's socket directory, which is bound into its sandbox. */
  async start(socketDir: string): Promise<void> {
    if (this.network.unknown_presets.length > 0) {
      this.notice(
        `The environment names network presets this server no longer has: ${this.network.unknown_presets.join(', ')}. The run goes on without them.`,
        'network_preset_unknown',
      );
    }
    if (this.policy !== 'allowlist' || this.proxy || !this.enforced) return;
    this.proxy = await EgressProxy.start(join(socketDir, EGRESS_SOCKET), {
      rules: this.network.allow.map(parseDomainRule),
      internalRanges: this.internalRanges,
      onDenied: (denial) => this.denied(denial),
    });
  }

  /** What every process of the run gets: under `allowlist`, the proxy (ordinary tools use it unchanged). */
  env(): Record<string, string> {
    if (this.policy !== 'allowlist' || !this.enforced) return {};
    const noProxy = 'localhost,127.0.0.1,::1';
    return {
      HTTP_PROXY: EGRESS_PROXY_URL,
      HTTPS_PROXY: EGRESS_PROXY_URL,
      http_proxy: EGRESS_PROXY_URL,
      https_proxy: EGRESS_PROXY_URL,
      NO_PROXY: noProxy,
      no_proxy: noProxy,
      // Node's own fetch, where the runtime reads the variables (22.21+, 24+).
      NODE_USE_ENV_PROXY: '1',
    };
  }

  /** Under `on`: tell what the sandbox's rules refuse while it runs. `adopted`: the sandbox ran an earlier execution. */
  async watchSandbox(sandbox: Sandbox, adopted: boolean): Promise<void> {
    if (this.policy !== 'on' || !sandbox.networkReport || this.watch) return;
    if (adopted) this.baseline = await sandbox.networkReport().catch(() => null);
    this.watch = setInterval(() => void this.poll(sandbox), WATCH_MS);
    this.watch.unref();
  }

  /** The execution's audit (before its sandbox goes); stops the watch. */
  async collect(sandbox: Sandbox | null): Promise<NetworkAudit | undefined> {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    if (this.policy === 'allowlist') return this.proxy?.audit();
    if (this.policy !== 'on' || !sandbox?.networkReport) return undefined;
    const report = await this.poll(sandbox);
    if (!report) return undefined;
    const byDestination = new Map<string, AuditHost>();
    for (const { address, port } of report.refused) {
      byDestination.set(`${address}:${port}`, { host: address, port, ...emptyCounts(), denied: 1, denied_reason: 'an internal address' });
    }
    const other = { ...emptyCounts(), bytes_sent: report.sent, bytes_received: report.received };
    return { policy: 'on', hosts: [...byDestination.values()].slice(0, 200), other };
  }

  async stop(): Promise<void> {
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    await this.proxy?.close().catch((error: unknown) => this.logger.warn({ err: error }, 'could not stop the egress proxy'));
    this.proxy = null;
  }

  /** The sandbox's report since this execution began; new refusals are told. */
  private async poll(sandbox: Sandbox): Promise<NetworkReport | null> {
    const now = await sandbox.networkReport?.().catch(() => null);
    if (!now) return null;
    const before = this.baseline;
    const seen = new Set((before?.refused ?? []).map((r) => `${r.address}:${r.port}`));
    const report = {
      refused: now.refused.filter((r) => !seen.has(`${r.address}:${r.port}`)),
      sent: Math.max(0, now.sent - (before?.sent ?? 0)),
      received: Math.max(0, now.received - (before?.received ?? 0)),
    };
    for (const { address, port } of report.refused) this.denied({ host: address, port, reason: 'an internal address: loopback, private, link-local or reserved' });
    return report;
  }

  private denied(denial: Denial): void {
    const key = hostPort(denial.host, denial.port);
    // Past the cap nothing more is kept here (the proxy's audit counts them, bounded).
    if (this.notices > MAX_DENIAL_NOTICES || this.told.has(key)) return;
    this.notices += 1;
    if (this.notices > MAX_DENIAL_NOTICES) {
      this.notice("More network denials: the run's network audit counts them all (oz run get RUN_ID --network).", 'network_denied');
      return;
    }
    this.told.add(key);
    this.emit({
      type: 'notice',
      at: Date.now(),
      data: { level: 'warn', message: `network denied: ${key} (${denial.reason})`, reason: 'network_denied', host: denial.host, port: denial.port },
    });
  }

  private notice(message: string, reason: string): void {
    this.emit({ type: 'notice', at: Date.now(), data: { level: 'warn', message, reason } });
  }
}
