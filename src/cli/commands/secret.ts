import { Command } from 'commander';
import type { CreateSecretInput, PatchSecretInput, SecretItem } from '../../api/secrets.js';
import { SECRET_TYPES, secretVariable, type SecretType } from '../../core/secret.js';
import { confirm, interactive } from '../confirm.js';
import type { CliContext } from '../context.js';
import { enumOption } from '../parse.js';
import { readSecretValue } from '../read-secret.js';
import { UsageError } from '../usage-error.js';
import { str } from './run-views.js';

const COLUMNS = [
  { header: 'NAME', value: (s: SecretItem) => s.name },
  { header: 'TYPE', value: (s: SecretItem) => s.type },
  { header: 'VARIABLE', value: (s: SecretItem) => s.variable },
  { header: 'SCOPE', value: (s: SecretItem) => s.scope },
  { header: 'SETUP-ONLY', value: (s: SecretItem) => (s.setup_only ? 'yes' : 'no') },
  { header: 'DESCRIPTION', value: (s: SecretItem) => str(s.description) },
  { header: 'UPDATED', value: (s: SecretItem) => s.updated_at },
];

interface ScopeOptions {
  team?: boolean;
  personal?: boolean;
}

function scopeOf(o: ScopeOptions): 'team' | 'personal' {
  if (o.team && o.personal) throw new UsageError('--team and --personal: choose one');
  return o.personal ? 'personal' : 'team';
}

const typeOption = enumOption('--type', SECRET_TYPES);

/** `oz secret create claude api-key NAME`, `oz secret create codex api-key NAME`: the key a harness's CLI uses, typed as such. */
const HARNESS_KEY_TYPES = { claude: 'claude-api-key', codex: 'codex-api-key' } as const;

interface CreateOptions extends ScopeOptions {
  type?: SecretType;
  valueFile?: string;
  description?: string;
  setupOnly?: boolean;
  baseUrl?: string;
}

/** The secret's name, type and (codex) base URL from `create`'s words: `[NAME]`, or `claude|codex api-key NAME`. */
function createTarget(words: string[], o: CreateOptions): { name: string; type: string; baseUrl?: string } {
  const [first, second, third, ...rest] = words;
  if (first !== undefined && first in HARNESS_KEY_TYPES && second === 'api-key') {
    const harness = first as keyof typeof HARNESS_KEY_TYPES;
    if (third === undefined) throw new UsageError(`NAME: required (oz secret create ${harness} api-key NAME)`);
    if (rest.length > 0) throw new UsageError(`too many arguments: ${rest.join(' ')}`);
    if (o.type !== undefined) throw new UsageError(`--type: not with "${harness} api-key" (its type is ${HARNESS_KEY_TYPES[harness]})`);
    if (o.baseUrl !== undefined && harness !== 'codex') throw new UsageError('--base-url: only for codex api-key');
    return { name: third, type: HARNESS_KEY_TYPES[harness], ...(o.baseUrl !== undefined ? { baseUrl: o.baseUrl } : {}) };
  }
  if (words.length > 1) throw new UsageError(`too many arguments: ${words.slice(1).join(' ')} (oz secret create [NAME], or claude|codex api-key NAME)`);
  if (o.baseUrl !== undefined) throw new UsageError('--base-url: only for codex api-key (oz secret create codex api-key NAME --base-url URL)');
  const type = o.type ?? 'raw-value';
  const name = first ?? (type === 'raw-value' ? undefined : secretVariable({ name: '', type }));
  if (!name) throw new UsageError(`NAME: required for a ${type} secret`);
  return { name, type };
}

/** `oz secret`: values go in once (file, stdin or a hidden prompt) and are never shown again. */
export function secretCommand(context: (cmd: Command) => CliContext): Command {
  const cmd = new Command('secret').description('Manage secrets: values runs get as environment variables, never readable again');
  cmd
    .command('create')
    .argument('[words...]', 'NAME, or claude api-key NAME, or codex api-key NAME')
    .usage('[options] [NAME] | claude api-key NAME | codex api-key NAME [--base-url URL]')
    .description(
      'Create a secret. The value comes from --value-file, else standard input, else a hidden prompt; never from a flag. ' +
        'A typed secret becomes its variable in runs (ANTHROPIC_API_KEY, OPENAI_API_KEY, GITHUB_TOKEN) and its name defaults to it. ' +
        '`claude api-key NAME` and `codex api-key NAME` store the key the Claude Code or Codex harness uses.',
    )
    .option('-t, --type <type>', `${typeOption.choices.join(', ')} (default raw-value)`, typeOption)
    .option('-f, --value-file <path>', 'read the value from a file ("-" = standard input); one trailing newline is dropped')
    .option('-d, --description <text>', 'what it is for (at most 240 characters)')
    .option('--team', "a team secret (default): the team's runs may use it")
    .option('--personal', 'a personal secret: only your own runs may use it')
    .option('--setup-only', "available to the environment's setup commands only, never to the agent")
    .option('--base-url <url>', 'codex api-key: the OpenAI-compatible endpoint the key is for')
    .action(async (words: string[], o: CreateOptions, c: Command) => {
      const ctx = context(c);
      const target = createTarget(words, o);
      const value = await readSecretValue(o.valueFile);
      // The harness key types (and base_url) are the server's newest: typed here as what they are, a request body.
      const body = {
        name: target.name,
        value,
        type: target.type,
        ...(target.baseUrl !== undefined ? { base_url: target.baseUrl } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        team: scopeOf(o) === 'team',
        ...(o.setupOnly ? { setup_only: true } : {}),
      } as CreateSecretInput;
      const secret = await ctx.client.createSecret(body);
      const use = secret.type === 'registry-auth' ? "the image pull's credentials, never a variable in runs" : `${secret.variable} in runs`;
      ctx.out.result(`Created ${secret.scope} secret ${secret.name} (${use}).`, secret, secret.name);
    });
  cmd
    .command('update <name>')
    .description(
      'Update a secret. With no other change, the new value comes from standard input or a hidden prompt; ' +
        'with --type, --description or --setup-only, the value changes only if --value-file is given.',
    )
    .option('-t, --type <type>', typeOption.choices.join(', '), typeOption)
    .option('-f, --value-file <path>', 'read the new value from a file ("-" = standard input)')
    .option('-d, --description <text>', 'what it is for')
    .option('--setup-only', 'setup commands only')
    .option('--no-setup-only', 'available to the agent too')
    .option('--team', 'the team secret of this name (default)')
    .option('--personal', 'your personal secret of this name')
    .action(async (name: string, o: ScopeOptions & { type?: SecretType; valueFile?: string; description?: string; setupOnly?: boolean }, c: Command) => {
      const ctx = context(c);
      const metadata = o.type !== undefined || o.description !== undefined || o.setupOnly !== undefined;
      const body: PatchSecretInput = {
        ...(o.type !== undefined ? { type: o.type } : {}),
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.setupOnly !== undefined ? { setup_only: o.setupOnly } : {}),
        ...(o.valueFile !== undefined || !metadata ? { value: await readSecretValue(o.valueFile) } : {}),
      };
      const secret = await ctx.client.updateSecret(name, scopeOf(o), body);
      ctx.out.result(`Updated ${secret.scope} secret ${secret.name}.`, secret, secret.name);
    });
  cmd
    .command('delete <name>')
    .description('Delete a secret (on a terminal, after a confirmation)')
    .option('--team', 'the team secret of this name (default)')
    .option('--personal', 'your personal secret of this name')
    .option('--force', 'do not ask for confirmation')
    .action(async (name: string, o: ScopeOptions & { force?: boolean }, c: Command) => {
      const ctx = context(c);
      const scope = scopeOf(o);
      if (!o.force && interactive(ctx) && !(await confirm(`Delete ${scope} secret ${name}?`))) return ctx.out.line('Not deleted.');
      await ctx.client.deleteSecret(name, scope);
      ctx.out.result(`Deleted ${scope} secret ${name}.`, { name, scope, deleted: true }, name);
    });
  cmd
    .command('list')
    .description("List the team's secrets and your personal ones: names and metadata, never values")
    .action(async (_o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listSecrets();
      ctx.out.list(result.secrets, COLUMNS, result, result.secrets, 'No secrets.');
    });
  return cmd;
}
