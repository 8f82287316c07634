import { Command } from 'commander';
import type { ApiKeyItem, UserItem, WorkerItem, WorkerTokenItem } from '../../api/identity.js';
import type { CliContext } from '../context.js';
import { confirm, interactive } from '../confirm.js';
import { duration, enumOption, positiveInt, rfc3339 } from '../parse.js';
import { UsageError } from '../usage-error.js';
import { str } from './run-views.js';

const KEY_COLUMNS = [
  { header: 'ID', value: (k: ApiKeyItem) => k.uid },
  { header: 'NAME', value: (k: ApiKeyItem) => k.name },
  { header: 'PREFIX', value: (k: ApiKeyItem) => k.prefix },
  { header: 'CREATED', value: (k: ApiKeyItem) => k.created_at },
  { header: 'EXPIRES', value: (k: ApiKeyItem) => (k.expired ? 'expired' : str(k.expires_at) || 'never') },
];

interface ExpiryOptions {
  expiresIn?: number;
  expiresAt?: string;
  expiration?: boolean;
}

/** Seconds until the key expires, or null for never: from --expires-in, --expires-at (RFC 3339) or --no-expiration. */
function expiry(o: ExpiryOptions, now = Date.now()): number | null {
  const given = [o.expiresIn !== undefined && '--expires-in', o.expiresAt !== undefined && '--expires-at', o.expiration === false && '--no-expiration'].filter(Boolean);
  if (given.length > 1) throw new UsageError(`${given.join(' and ')}: choose one`);
  if (o.expiresAt !== undefined) {
    const seconds = Math.round((Date.parse(o.expiresAt) - now) / 1000);
    if (seconds < 60) throw new UsageError(`--expires-at: must be at least a minute from now (got "${o.expiresAt}")`);
    return seconds;
  }
  return o.expiresIn ?? null;
}

const KEY_SORT = enumOption('--sort-by', ['name', 'created_at', 'expires_at'] as const);
const SORT_ORDER = enumOption('--sort-order', ['asc', 'desc'] as const);

/** The server lists keys newest first; --sort-by orders them here (a key that never expires sorts last). */
function sortKeys(keys: readonly ApiKeyItem[], by: ReturnType<typeof KEY_SORT> | undefined, order: 'asc' | 'desc' | undefined): ApiKeyItem[] {
  if (by === undefined && order === undefined) return keys.slice();
  const field = by ?? 'created_at';
  const value = (k: ApiKeyItem): string => (field === 'name' ? k.name : field === 'created_at' ? k.created_at : (k.expires_at ?? '\uffff'));
  const sorted = keys.slice().sort((a, b) => value(a).localeCompare(value(b)));
  return (order ?? (by === undefined ? 'desc' : 'asc')) === 'desc' ? sorted.reverse() : sorted;
}

/** The one live key named or with this ID. */
async function liveKey(ctx: CliContext, nameOrId: string): Promise<ApiKeyItem> {
  const keys = (await ctx.client.listApiKeys()).api_keys.filter((k) => !k.expired);
  const matches = keys.filter((k) => k.uid === nameOrId || k.name === nameOrId);
  if (matches.length === 0) throw new UsageError(`no live API key named or with ID "${nameOrId}"`);
  if (matches.length > 1) throw new UsageError(`several live keys are named "${nameOrId}"; give the ID`);
  const [key] = matches as [ApiKeyItem];
  return key;
}

/** Print a freshly minted secret: the only time it is ever shown. */
function shownOnce(ctx: CliContext, what: string, secret: string, json: unknown): void {
  ctx.out.result(`Created ${what}. It is shown only now; store it safely:\n${secret}`, json, secret);
}

export function apiKeyCommand(context: (cmd: Command) => CliContext): Command {
  const cmd = new Command('api-key').description('Manage your API keys');
  cmd
    .command('create <name>')
    .description('Create an API key (shown once)')
    .option('--expires-in <duration>', 'expire after e.g. 30d, 12h, 2w', duration('--expires-in'))
    .option('--expires-at <time>', 'expire at this RFC 3339 time, e.g. 2026-12-31T00:00:00Z', rfc3339('--expires-at'))
    .option('--no-expiration', 'never expire (default)')
    .action(async (name: string, o: ExpiryOptions, c: Command) => {
      const ctx = context(c);
      const key = await ctx.client.createApiKey({ name, expires_in_seconds: expiry(o) });
      shownOnce(ctx, `API key ${name}`, key.key, key);
    });
  cmd
    .command('list')
    .description('List your API keys (never their secrets), newest first')
    .option('--sort-by <field>', `order by ${KEY_SORT.choices.join(', ')}`, KEY_SORT)
    .option('--sort-order <order>', 'asc or desc (default asc with --sort-by)', SORT_ORDER)
    .action(async (o: { sortBy?: ReturnType<typeof KEY_SORT>; sortOrder?: 'asc' | 'desc' }, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listApiKeys();
      const keys = sortKeys(result.api_keys, o.sortBy, o.sortOrder);
      ctx.out.list(keys, KEY_COLUMNS, { ...result, api_keys: keys }, keys, 'No API keys.');
    });
  // This server keeps an expired key's record (its name, when it was used); `delete` is Oz's name for ending a key, so it expires it.
  for (const [name, description] of [
    ['expire', 'Expire one of your API keys now (on a terminal, after a confirmation)'],
    ['delete', 'Delete one of your API keys: it stops working at once (this server keeps it listed as expired)'],
  ] as const) {
    cmd
      .command(`${name} <nameOrId>`)
      .description(description)
      .option('--force', 'do not ask for confirmation')
      .action(async (nameOrId: string, o: { force?: boolean }, c: Command) => {
        const ctx = context(c);
        const key = await liveKey(ctx, nameOrId);
        if (!o.force && interactive(ctx) && !(await confirm(`${name === 'delete' ? 'Delete' : 'Expire'} API key ${key.name} (${key.prefix}…)?`))) {
          return ctx.out.line('Not changed.');
        }
        const result = await ctx.client.expireApiKey(key.uid);
        ctx.out.result(`${name === 'delete' ? 'Deleted' : 'Expired'} API key ${nameOrId}.`, result, result.uid);
      });
  }
  return cmd;
}

export function adminCommand(context: (cmd: Command) => CliContext): Command {
  const admin = new Command('admin').description('Administer teams and users (admin key required)');
  const team = admin.command('team').description('Teams');
  team
    .command('create <name>')
    .description('Create a team')
    .option('--max-concurrent-runs <n>', 'runs the team may have admitted at once', positiveInt('--max-concurrent-runs', 10_000))
    .action(async (name: string, o: { maxConcurrentRuns?: number }, c: Command) => {
      const ctx = context(c);
      const created = await ctx.client.createTeam({ name, ...(o.maxConcurrentRuns ? { max_concurrent_runs: o.maxConcurrentRuns } : {}) });
      ctx.out.result(`Created team ${name} with ID: ${created.uid}`, created, created.uid);
    });
  const user = admin.command('user').description('Users');
  user
    .command('create <email>')
    .description('Create a user in a team')
    .requiredOption('--team <team>', 'team name or ID')
    .option('--role <role>', 'member (default) or admin', enumOption('--role', ['member', 'admin'] as const))
    .option('--display-name <name>', 'a display name')
    .action(async (email: string, o: { team: string; role?: UserItem['role']; displayName?: string }, c: Command) => {
      const ctx = context(c);
      const created = await ctx.client.createUser({
        email,
        team: o.team,
        ...(o.role ? { role: o.role } : {}),
        ...(o.displayName ? { display_name: o.displayName } : {}),
      });
      ctx.out.result(`Created user ${email} with ID: ${created.uid}`, created, created.uid);
    });
  user
    .command('key <emailOrId>')
    .description('Issue an API key for a user (shown once)')
    .requiredOption('--name <name>', 'a name for the key')
    .option('--expires-in <duration>', 'expire after e.g. 30d, 12h', duration('--expires-in'))
    .action(async (who: string, o: { name: string; expiresIn?: number }, c: Command) => {
      const ctx = context(c);
      const key = await ctx.client.createUserApiKey(who, { name: o.name, expires_in_seconds: o.expiresIn ?? null });
      shownOnce(ctx, `API key ${o.name} for ${who}`, key.key, key);
    });
  return admin;
}

export function workerTokenCommand(context: (cmd: Command) => CliContext): Command {
  const cmd = new Command('worker-token').description('Credentials for `oz worker` (admin key required)');
  cmd
    .command('create <name>')
    .description('Create a worker token (shown once)')
    .action(async (name: string, _o: unknown, c: Command) => {
      const ctx = context(c);
      const token = await ctx.client.createWorkerToken({ name });
      shownOnce(ctx, `worker token ${name}`, token.token, token);
    });
  cmd
    .command('list')
    .description('List worker tokens')
    .action(async (_o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listWorkerTokens();
      const tokens = result.worker_tokens;
      ctx.out.list<WorkerTokenItem>(
        tokens,
        [
          { header: 'ID', value: (t) => t.uid },
          { header: 'NAME', value: (t) => t.name },
          { header: 'PREFIX', value: (t) => t.prefix },
          { header: 'CREATED', value: (t) => t.created_at },
          { header: 'REVOKED', value: (t) => str(t.revoked_at) || '-' },
        ],
        result,
        tokens,
        'No worker tokens.',
      );
    });
  cmd
    .command('revoke <nameOrId>')
    .description('Revoke a worker token for good')
    .action(async (nameOrId: string, _o: unknown, c: Command) => {
      const ctx = context(c);
      const tokens = (await ctx.client.listWorkerTokens()).worker_tokens.filter((t) => !t.revoked_at);
      const match = tokens.find((t) => t.uid === nameOrId || t.name === nameOrId);
      if (!match) throw new UsageError(`no live worker token named or with ID "${nameOrId}"`);
      const result = await ctx.client.revokeWorkerToken(match.uid);
      ctx.out.result(`Revoked worker token ${nameOrId}.`, result, result.uid);
    });
  return cmd;
}

const WORKER_COLUMNS = [
  { header: 'NAME', value: (w: WorkerItem) => w.name },
  { header: 'LABELS', value: (w: WorkerItem) => w.labels.join(',') || '-' },
  { header: 'BACKEND', value: (w: WorkerItem) => w.backend },
  { header: 'CAPACITY', value: (w: WorkerItem) => String(w.capacity) },
  { header: 'RUNNING', value: (w: WorkerItem) => String(w.running_runs) },
  { header: 'LAST SEEN', value: (w: WorkerItem) => w.last_seen_at },
  { header: 'STATUS', value: (w: WorkerItem) => (w.online ? 'online' : 'offline') },
  { header: 'ID', value: (w: WorkerItem) => w.id },
];

/** `oz worker list`: the workers the server has seen in the last day (platform admin key). */
export function workerListCommand(context: (cmd: Command) => CliContext): Command {
  return new Command('list')
    .description(
      'List the workers seen in the last day: name, labels, backend, capacity, runs held now, last seen (online: seen in the last 5 minutes); admin key of the platform team',
    )
    .action(async (_o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listWorkers();
      ctx.out.list(result.workers, WORKER_COLUMNS, result, result.workers, 'No workers seen in the last day.');
    });
}

export function modelCommand(context: (cmd: Command) => CliContext): Command {
  const cmd = new Command('model').description('Models');
  cmd
    .command('list')
    .description('Models configured on the server')
    .action(async (_o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listModels();
      const models = result.models;
      ctx.out.list(
        models,
        [
          { header: 'ID', value: (m) => `${m.id}${m.id === result.default_model_id ? ' (default)' : ''}` },
          { header: 'PROVIDER', value: (m) => m.provider },
        ],
        result,
        models,
        'No models configured (set OZ_DEFAULT_MODEL or OZ_MODELS on the server).',
      );
    });
  return cmd;
}

export function whoamiCommand(context: (cmd: Command) => CliContext): Command {
  return new Command('whoami').description('Show the user, team and key in use').action(async (_o: unknown, c: Command) => {
    const ctx = context(c);
    const me = await ctx.client.whoami();
    const { user, team, api_key: key } = me;
    ctx.out.object(
      [
        ['User', `${user.email} (${user.role})`],
        ['Team', `${team.name} (${team.uid})`],
        ['API key', `${key.name} (${key.prefix}…)`],
        ['Server', ctx.serverUrl],
      ],
      me,
    );
  });
}
