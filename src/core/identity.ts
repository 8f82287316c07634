/** Teams, users and API keys: who may do what (every resource belongs to a team). */

import type { EnvironmentLimits } from './environment.js';

export interface Team {
  id: string;
  name: string;
  /** Runs admitted at once (PENDING, CLAIMED, INPROGRESS, BLOCKED). */
  maxConcurrentRuns: number;
  /**
   * The most an environment or run of this team may set, below the
   * operator's `OZ_SANDBOX_MAX_*` (set by a platform admin); {} = the operator's.
   */
  limitCeilings: EnvironmentLimits;
  /**
   * The operator's team (the first one, made on a deployment's first start):
   * its admins administer the whole deployment (docs/api.md "Admins").
   */
  platform: boolean;
  createdAt: number;
}

export interface TeamPatch {
  maxConcurrentRuns?: number;
  limitCeilings?: EnvironmentLimits;
}

export type UserRole = 'admin' | 'member';

export interface User {
  id: string;
  teamId: string;
  email: string;
  displayName: string | null;
  role: UserRole;
  createdAt: number;
}

/**
 * An API key. Only a hash of the secret is stored; `prefix` is the visible
 * start of the key so a user can tell keys apart in `oz api-key list`.
 */
export interface ApiKey {
  id: string;
  teamId: string;
  userId: string;
  name: string;
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
}

export interface NewApiKey {
  teamId: string;
  userId: string;
  name: string;
  prefix: string;
  secretHash: string;
  expiresAt: number | null;
}

/** A credential for `oz worker`, deployment-wide. Only its hash is stored. */
export interface WorkerToken {
  id: string;
  name: string;
  prefix: string;
  createdBy: string | null;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

export interface NewWorkerToken {
  name: string;
  prefix: string;
  secretHash: string;
  createdBy: string | null;
}
