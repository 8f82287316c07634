import { z } from 'zod';
import { CSRF_HEADER } from './csrf.js';
import { timestamp } from './common.js';
import { teamItemSchema, userItemSchema } from './identity.js';

/**
 * The dashboard's sign-in (ours; docs/dashboard.md "Signing in"): a person
 * trades an API key, or the one-time token of a link `oz open` printed, for
 * an HttpOnly session cookie; requests made with the cookie that change
 * anything carry the session's CSRF token in `X-Oz-CSRF`.
 */
export { CSRF_HEADER };

export const signInSchema = z
  .object({
    api_key: z.string().min(1, 'must not be empty').max(500).optional(),
    login_token: z.string().min(1, 'must not be empty').max(500).optional(),
  })
  .strict()
  .refine((b) => (b.api_key === undefined) !== (b.login_token === undefined), { message: 'give exactly one of api_key and login_token' });
export type SignInInput = z.input<typeof signInSchema>;

export const webSessionSchema = z
  .object({
    csrf_token: z.string().meta({ description: `send it as the ${CSRF_HEADER} header with every request that changes anything` }),
    expires_at: timestamp,
    user: userItemSchema,
    team: teamItemSchema,
    /** Where a login link opens (a path of the dashboard); absent otherwise. */
    path: z.string().optional(),
  })
  .meta({ id: 'WebSession' });
export type WebSession = z.infer<typeof webSessionSchema>;

export const signOutResponseSchema = z.object({ signed_out: z.boolean() });

export const createLoginLinkSchema = z
  .object({
    /** The run whose page the link opens; absent: the runs list. */
    run_id: z.string().min(1).max(200).optional(),
  })
  .strict();
export type CreateLoginLinkInput = z.input<typeof createLoginLinkSchema>;

export const peekLoginLinkSchema = z.object({ login_token: z.string().min(1, 'must not be empty').max(500) }).strict();
export type PeekLoginLinkInput = z.input<typeof peekLoginLinkSchema>;

/** Whose a login link is, before it is used: the page asks a signed-in person before switching them to someone else. */
export const loginLinkInfoSchema = z.object({ user: userItemSchema, team: teamItemSchema, path: z.string(), expires_at: timestamp }).meta({ id: 'LoginLinkInfo' });
export type LoginLinkInfo = z.infer<typeof loginLinkInfoSchema>;

export const loginLinkSchema = z
  .object({
    url: z.string().meta({ description: 'opens the dashboard signed in; works once' }),
    expires_at: timestamp,
  })
  .meta({ id: 'LoginLink' });
export type LoginLink = z.infer<typeof loginLinkSchema>;
