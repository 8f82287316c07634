/**
 * What a run's network did (docs/network.md "Audit"): per destination the
 * connections let through and refused and the bytes each way, bounded to
 * {@link MAX_AUDIT_HOSTS} destinations (the rest are summed into `other`).
 * Kept with the run; each execution's is added to the run's.
 */
export const MAX_AUDIT_HOSTS = 200;

export interface AuditCounts {
  connections: number;
  denied: number;
  bytes_sent: number;
  bytes_received: number;
}

export interface AuditHost extends AuditCounts {
  /** A host name as the run asked for it, or an address (network `on`). */
  host: string;
  port: number;
  /** Why the last refusal happened ("not in the allowlist", "private address 10.0.0.5"). */
  denied_reason?: string;
}

export interface NetworkAudit {
  policy: 'off' | 'allowlist' | 'on';
  hosts: AuditHost[];
  /** Destinations past the bound, summed. */
  other: AuditCounts;
}

export const emptyCounts = (): AuditCounts => ({ connections: 0, denied: 0, bytes_sent: 0, bytes_received: 0 });

function add(into: AuditCounts, from: AuditCounts): void {
  into.connections += from.connections;
  into.denied += from.denied;
  into.bytes_sent += from.bytes_sent;
  into.bytes_received += from.bytes_received;
}

/** `later` added to `earlier` (the run's audit after another execution), still bounded; the later policy wins. */
export function mergeAudits(earlier: NetworkAudit | null, later: NetworkAudit): NetworkAudit {
  if (!earlier) return boundAudit(later);
  const byKey = new Map<string, AuditHost>();
  for (const host of [...earlier.hosts, ...later.hosts]) {
    const key = `${host.host}:${host.port}`;
    const seen = byKey.get(key);
    if (!seen) byKey.set(key, { ...host });
    else {
      add(seen, host);
      if (host.denied_reason !== undefined) seen.denied_reason = host.denied_reason;
    }
  }
  const other = emptyCounts();
  add(other, earlier.other);
  add(other, later.other);
  return boundAudit({ policy: later.policy, hosts: [...byKey.values()], other });
}

/** The busiest {@link MAX_AUDIT_HOSTS} destinations; the rest into `other`. */
export function boundAudit(audit: NetworkAudit): NetworkAudit {
  if (audit.hosts.length <= MAX_AUDIT_HOSTS) return audit;
  const weight = (h: AuditHost): number => h.bytes_sent + h.bytes_received + h.connections + h.denied;
  const sorted = [...audit.hosts].sort((a, b) => weight(b) - weight(a));
  const other = { ...audit.other };
  for (const host of sorted.slice(MAX_AUDIT_HOSTS)) add(other, host);
  return { policy: audit.policy, hosts: sorted.slice(0, MAX_AUDIT_HOSTS), other };
}
