import type { ApiKey, Team, User } from '../core/identity.js';
import type { IdentityRepository } from './identity-repository.js';
import type { StoreContext } from './store-context.js';

/** A signed-in browser: it acts as the API key it signed in with. */
export interface WebSession {
  secretHash: string;
  keyId: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
}

export interface WebSessionPrincipal {
  session: WebSession;
  key: ApiKey;
  user: User;
  team: Team;
}

export interface NewWebSession {
  secretHash: string;
  keyId: string;
  csrfToken: string;
  expiresAt: number;
}

export interface NewLoginLink {
  secretHash: string;
  keyId: string;
  /** Where the dashboard opens once signed in (a path of the dashboard). */
  path: string;
  expiresAt: number;
}

/** Sessions end a day after they expire or end: what is kept until then answers "your session has ended". */
const KEEP_ENDED_MS = 24 * 3600_000;

/**
 * The dashboard's sessions and one-time login links (migration
 * 0012-web-sessions). Only hashes of their secrets are stored; a session is
 * valid while it has not ended or expired and its API key is valid.
 */
export class WebSessionRepository {
  constructor(
    private readonly ctx: StoreContext,
    private readonly identity: IdentityRepository,
  ) {}

  async create(input: NewWebSession, at: number): Promise<WebSession> {
    const row = { secret_hash: input.secretHash, key_id: input.keyId, csrf_token: input.csrfToken, created_at: at, expires_at: input.expiresAt, ended_at: null };
    await this.ctx.db.insertInto('web_sessions').values(row).execute();
    return { secretHash: row.secret_hash, keyId: row.key_id, csrfToken: row.csrf_token, createdAt: at, expiresAt: input.expiresAt };
  }

  /** The live session with this hash, and who it acts as; null when it never was, ended, expired, or its key did. */
  async find(secretHash: string, at: number): Promise<WebSessionPrincipal | null> {
    const row = await this.ctx.db
      .selectFrom('web_sessions')
      .selectAll()
      .where('secret_hash', '=', secretHash)
      .where('ended_at', 'is', null)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    if (!row) return null;
    const principal = await this.identity.findApiKeyById(row.key_id, at);
    if (!principal) return null;
    const session = { secretHash: row.secret_hash, keyId: row.key_id, csrfToken: row.csrf_token, createdAt: Number(row.created_at), expiresAt: Number(row.expires_at) };
    return { session, ...principal };
  }

  /** Sign out: true when a live session ended. */
  async end(secretHash: string, at: number): Promise<boolean> {
    const result = await this.ctx.db.updateTable('web_sessions').set({ ended_at: at }).where('secret_hash', '=', secretHash).where('ended_at', 'is', null).executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async createLoginLink(input: NewLoginLink, at: number): Promise<void> {
    await this.ctx.db
      .insertInto('web_login_links')
      .values({ secret_hash: input.secretHash, key_id: input.keyId, path: input.path, created_at: at, expires_at: input.expiresAt, used_at: null })
      .execute();
  }

  /** A login link that can still be used, without using it: whose it is and where it opens. */
  async peekLoginLink(secretHash: string, at: number): Promise<{ keyId: string; path: string; expiresAt: number } | null> {
    const row = await this.ctx.db
      .selectFrom('web_login_links')
      .select(['key_id', 'path', 'expires_at'])
      .where('secret_hash', '=', secretHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    return row ? { keyId: row.key_id, path: row.path, expiresAt: Number(row.expires_at) } : null;
  }

  /**
   * Use a login link: one compare-and-set, so of two uses at once exactly one
   * wins. Returns its key and path, or null when it is unknown, used or expired.
   */
  async consumeLoginLink(secretHash: string, at: number): Promise<{ keyId: string; path: string } | null> {
    const result = await this.ctx.db
      .updateTable('web_login_links')
      .set({ used_at: at })
      .where('secret_hash', '=', secretHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return null;
    const row = await this.ctx.db.selectFrom('web_login_links').select(['key_id', 'path']).where('secret_hash', '=', secretHash).executeTakeFirstOrThrow();
    return { keyId: row.key_id, path: row.path };
  }

  /** Forget sessions and links that ended or expired over a day ago. */
  async prune(at: number): Promise<void> {
    const before = at - KEEP_ENDED_MS;
    await this.ctx.db
      .deleteFrom('web_sessions')
      .where((eb) => eb.or([eb('expires_at', '<', before), eb('ended_at', '<', before)]))
      .execute();
    await this.ctx.db.deleteFrom('web_login_links').where('expires_at', '<', before).execute();
  }
}
