import { createHash, createHmac } from 'node:crypto';

/** What determines the state setup leaves: image digest, setup, variables, network, repositories, the setup secrets' values. */
export interface SnapshotInputs {
  teamId: string;
  /** The image's manifest digest, or null on the host's system (whose identity is the worker's). */
  imageDigest: string | null;
  setupCommands: readonly string[];
  env: Readonly<Record<string, string>>;
  /** The network policy setup ran under (it changes what an install can reach). */
  network: string;
  repos: readonly { url: string; branch?: string | undefined }[];
  /** Every secret value setup sees, by variable: only their keyed hash enters the key. */
  secrets: Readonly<Record<string, string>>;
  /** The platform's own version of the layout (bumped when what a snapshot holds changes). */
  format: number;
  /** The sandbox backend that made it: a snapshot is one backend's state (a bwrap layer is not a container's). */
  backend: string;
}

function sorted(record: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A snapshot's key: sha256 of everything that determines it, the team's id
 * first (a snapshot is never another team's). Secret values enter only as an
 * HMAC under the worker's own key (`secretKey`), so the key, which is shown
 * to users and stored on disk, says nothing a guess could check about them.
 */
export function snapshotKey(inputs: SnapshotInputs, secretKey: Buffer): string {
  const secrets = createHmac('sha256', secretKey)
    .update(JSON.stringify(sorted(inputs.secrets)))
    .digest('hex');
  const material = JSON.stringify({
    format: inputs.format,
    backend: inputs.backend,
    team: inputs.teamId,
    image: inputs.imageDigest,
    setup: inputs.setupCommands,
    env: sorted(inputs.env),
    network: inputs.network,
    repos: inputs.repos.map((repo) => [repo.url, repo.branch ?? null]),
    secrets,
  });
  return createHash('sha256').update(material).digest('hex');
}
