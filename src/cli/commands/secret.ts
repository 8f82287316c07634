import { Command } from 'commander';
import type { PatchSecretInput, SecretItem } from '../../api/secrets.js';
import { SECRET_TYPES, secretVariable, type SecretType } from '../../core/secret.js';
import type { CliContext } from '../context.js';
import { oneOf } from '../parse.js';
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

const typeOption = oneOf('--type', SECRET_TYPES);

/** `oz secret`: values go in once (file, stdin or a hidden prompt) and are never shown again. */
export function secretCommand(context: (cmd: Command) => CliContext): Command {
  const cmd = new Command('secret').description('Manage secrets: values runs get as environment variables, never readable again');
  cmd
    .command('create [name]')
    .description(
      'Create a secret. The value comes from --value-file, else standard input, else a hidden prompt; never from a flag. ' +
        'A typed secret becomes its variable in runs (ANTHROPIC_API_KEY, OPENAI_API_KEY, GITHUB_TOKEN) and its name defaults to it.',
    )
    .option('-t, --type <type>', `${SECRET_TYPES.join(', ')} (default raw-value)`, typeOption)
    .option('-f, --value-file <path>', 'read the value from a file ("-" = standard input); one trailing newline is dropped')
    .option('-d, --description <text>', 'what it is for (at most 240 characters)')
    .option('--team', "a team secret (default): the team's runs may use it")
    .option('--personal', 'a personal secret: only your own runs may use it')
    .option('--setup-only', "available to the environment's setup commands only, never to the agent")
    .action(async (name: string | undefined, o: ScopeOptions & { type?: SecretType; valueFile?: string; description?: string; setupOnly?: boolean }, c: Command) => {
      const ctx = context(c);
      const type = o.type ?? 'raw-value';
      const secretName = name ?? (type === 'raw-value' ? undefined : secretVariable({ name: '', type }));
      if (!secretName) throw new UsageError('NAME: required for a raw-value secret');
      const value = await readSecretValue(o.valueFile);
      const secret = await ctx.client.createSecret({
        name: secretName,
        value,
        type,
        ...(o.description !== undefined ? { description: o.description } : {}),
        team: scopeOf(o) === 'team',
        ...(o.setupOnly ? { setup_only: true } : {}),
      });
      ctx.out.result(`Created ${secret.scope} secret ${secret.name} (${secret.variable} in runs).`, secret, secret.name);
    });
  cmd
    .command('update <name>')
    .description(
      'Update a secret. With no other change, the new value comes from standard input or a hidden prompt; ' +
        'with --type, --description or --setup-only, the value changes only if --value-file is given.',
    )
    .option('-t, --type <type>', SECRET_TYPES.join(', '), typeOption)
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
    .description('Delete a secret')
    .option('--team', 'the team secret of this name (default)')
    .option('--personal', 'your personal secret of this name')
    .action(async (name: string, o: ScopeOptions, c: Command) => {
      const ctx = context(c);
      const scope = scopeOf(o);
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
