import { Command } from 'commander';
import type { CreateEnvironmentInput, EnvironmentItem, PatchEnvironmentInput } from '../../api/environments.js';
import { NETWORK_POLICIES, type NetworkPolicy, type RepoSpec } from '../../core/environment.js';
import { internalRangeProblem, parseDomainRule, parseInternalRange, presetNameProblem } from '../../core/network-policy.js';
import { confirm, interactive } from '../confirm.js';
import type { CliContext } from '../context.js';
import { collect, enumOption } from '../parse.js';
import { UsageError } from '../usage-error.js';
import { HOST_HELP } from './agent.js';
import { str } from './run-views.js';

const NETWORK = enumOption('--network', NETWORK_POLICIES);
const NETWORK_HELP =
  "off (no network), allowlist (only --allow-domain/--allow-preset hosts, through the worker's proxy) or on (any public address); internal addresses are refused under both";

/** A repeatable flag whose values `check` validates here (the message names the flag). */
function checked(flag: string, check: (value: string) => unknown) {
  return (value: string, previous: string[]): string[] => {
    try {
      check(value);
    } catch (error) {
      throw new UsageError(`${flag}: ${(error as Error).message}`);
    }
    return [...previous, value];
  };
}
const DOMAIN = (flag: string) => checked(flag, parseDomainRule);
const PRESET = (flag: string) =>
  checked(flag, (value) => {
    const problem = presetNameProblem(value);
    if (problem) throw new Error(problem);
  });
const RANGE = (flag: string) =>
  checked(flag, (value) => {
    const problem = internalRangeProblem(value);
    if (problem) throw new Error(problem);
  });

/** Rules that do nothing under the environment's policy are kept (a switch back to allowlist uses them), and said so on stderr. */
function inactiveRulesNote(ctx: CliContext, env: EnvironmentItem): void {
  const c = env.config;
  if (c.network === 'allowlist' || ((c.allow_domains ?? []).length === 0 && (c.allow_presets ?? []).length === 0)) return;
  ctx.err(`note: the allowed domains and presets apply under --network allowlist; this environment's network is ${c.network}, so they are kept but unused\n`);
}

/** A list edited by `add` and `remove` flags (exact, case-insensitive); undefined when neither was given. */
function editList(current: readonly string[], add: readonly string[], remove: readonly string[], missing: (value: string) => void): string[] | undefined {
  if (add.length === 0 && remove.length === 0) return undefined;
  const lower = (value: string): string => value.trim().toLowerCase();
  let list = current.map(lower);
  for (const value of remove.map(lower)) {
    if (!list.includes(value)) missing(value);
    list = list.filter((x) => x !== value);
  }
  return [...new Set([...list, ...add.map(lower)])];
}

/** `owner/repo[@branch]` (GitHub) or any git URL with an optional `@branch` suffix. */
export function parseRepo(spec: string): { github?: { owner: string; repo: string }; repo?: { url: string; branch?: string } } {
  const at = spec.lastIndexOf('@');
  // user@host:path has its @ before the first colon; a branch suffix comes after the last slash.
  const hasBranch = at > spec.lastIndexOf('/') && at > spec.indexOf(':');
  const target = hasBranch ? spec.slice(0, at) : spec;
  const branch = hasBranch ? spec.slice(at + 1) : undefined;
  const short = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(target);
  if (short?.[1] && short[2] && branch === undefined) return { github: { owner: short[1], repo: short[2] } };
  const url = short ? `https://github.com/${short[1]}/${short[2]}.git` : target;
  if (!short && !/^(?:(?:https?|ssh|git|file):\/\/|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)/.test(url)) {
    throw new UsageError(`--repo: "${spec}" is neither owner/repo nor a git URL (https://, ssh://, git://, file://, user@host:path)`);
  }
  return { repo: { url, ...(branch ? { branch } : {}) } };
}

function parseEnvPair(pair: string): [string, string] {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new UsageError(`--env: expected KEY=VALUE (got "${pair}")`);
  return [pair.slice(0, eq), pair.slice(eq + 1)];
}

function reposBody(specs: string[]): Pick<CreateEnvironmentInput, 'github_repos' | 'repos'> {
  const github: { owner: string; repo: string }[] = [];
  const repos: { url: string; branch?: string }[] = [];
  for (const spec of specs) {
    const parsed = parseRepo(spec);
    if (parsed.github) github.push(parsed.github);
    if (parsed.repo) repos.push(parsed.repo);
  }
  return { github_repos: github, repos };
}

const MIB = 2 ** 20;

/** How long ago, roughly: `45s`, `12m`, `3h`, `2d` (the snapshot's age). */
export function age(iso: string, now: number = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return iso;
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** `Snapshot: <key's first 12>, <size MiB>, <age>, <hits> hits`, or `-` (docs/environments.md "Snapshots"). */
export function snapshotLine(snapshot: EnvironmentItem['snapshot'], now: number = Date.now()): string {
  if (!snapshot) return '-';
  const size = `${(snapshot.size_bytes / MIB).toFixed(1)} MiB`;
  return `${snapshot.key.slice(0, 12)}, ${size}, ${age(snapshot.created_at, now)}, ${snapshot.hits} hits`;
}

const COLUMNS = [
  { header: 'ID', value: (e: EnvironmentItem) => e.uid },
  { header: 'NAME', value: (e: EnvironmentItem) => e.config.name },
  { header: 'REPOS', value: (e: EnvironmentItem) => String(e.config.repos.length) },
  { header: 'SCOPE', value: (e: EnvironmentItem) => e.scope.type },
  { header: 'UPDATED', value: (e: EnvironmentItem) => e.last_updated },
];

function fields(env: EnvironmentItem): [string, string][] {
  const c = env.config;
  const repos = c.repos.map((r) => `${r.url}${r.branch ? `@${r.branch}` : ''}`);
  return [
    ['ID', env.uid],
    ['Name', c.name],
    ['Description', str(c.description) || '-'],
    ['Docker image', str(c.docker_image) || '-'],
    ['Agent user', str(c.agent_user) || '-'],
    ['Repos', repos.join(', ') || '-'],
    ['Setup commands', c.setup_commands.join(' && ') || '-'],
    // A newer client on an older server: the field is absent there.
    ['Maintenance commands', (c.maintenance_commands ?? []).join(' && ') || '-'],
    ['Env', Object.keys(c.env).join(', ') || '-'],
    ['Secrets', c.secrets.join(', ') || '-'],
    ['Network', c.network],
    // A newer client on an older server: the fields are absent there.
    ['Allowed domains', [...(c.allow_presets ?? []).map((p) => `preset:${p}`), ...(c.allow_domains ?? [])].join(', ') || '-'],
    ['Internal ranges', (c.allow_internal_ranges ?? []).join(', ') || '-'],
    ['Host', str(c.worker_host) || '(any worker)'],
    ['Scope', env.scope.type],
    ['Updated', env.last_updated],
    ['Snapshot', snapshotLine(env.snapshot ?? null)],
  ];
}

interface CreateOptions {
  name: string;
  description?: string;
  dockerImage?: string;
  agentUser?: string;
  repo: string[];
  setupCommand: string[];
  maintenanceCommand: string[];
  devcontainer?: string;
  team?: boolean;
  personal?: boolean;
  env: string[];
  secret: string[];
  network?: NetworkPolicy;
  allowDomain: string[];
  allowPreset: string[];
  allowInternalRange: string[];
  host?: string;
}

interface UpdateOptions {
  name?: string;
  description?: string;
  removeDescription?: boolean;
  dockerImage?: string;
  agentUser?: string;
  removeAgentUser?: boolean;
  repo: string[];
  removeRepo: string[];
  setupCommand: string[];
  removeSetupCommand: string[];
  maintenanceCommand: string[];
  removeMaintenanceCommand: string[];
  env: string[];
  removeEnv: string[];
  secret: string[];
  removeSecret: string[];
  network?: NetworkPolicy;
  allowDomain: string[];
  removeAllowDomain: string[];
  allowPreset: string[];
  removeAllowPreset: string[];
  allowInternalRange: string[];
  removeAllowInternalRange: string[];
  host?: string;
  removeHost?: boolean;
  force?: boolean;
}

export function environmentCommand(context: (cmd: Command) => CliContext): Command {
  const env = new Command('environment').alias('e').description('Manage environments: where runs execute');

  env
    .command('create')
    .description('Create an environment')
    .requiredOption('-n, --name <name>', 'a name')
    .option('--description <text>', 'a description (at most 240 characters)')
    .option('-d, --docker-image <image>', 'the OCI image runs start on (docker.io short names, any registry, or a digest)')
    .option('--agent-user <user>', "on the image, whom the harness runs as (name, uid, name:group, uid:gid) instead of the image's USER; never root")
    .option('-r, --repo <repo>', 'owner/repo or any git URL, optional @branch (repeatable)', collect, [])
    .option('-c, --setup-command <cmd>', 'run after cloning, in order (repeatable)', collect, [])
    .option(
      '-m, --maintenance-command <cmd>',
      "run in every run once setup's state is in place (after setup on a cold start, instead of it on a warm one): incremental steps such as npm install, and services (repeatable)",
      collect,
      [],
    )
    .option(
      '--devcontainer <owner/repo[:path]>',
      'build the environment from a devcontainer.json on GitHub (default path .devcontainer/devcontainer.json): its image, containerEnv/remoteEnv, remoteUser and lifecycle commands; the other flags win over the file, and the repo defaults to its repository',
    )
    .option('--team', 'team-owned (default)')
    .option('--personal', 'visible only to you')
    .option('--env <KEY=VALUE>', 'a plain environment variable (repeatable)', collect, [])
    .option('--secret <name>', 'attach a secret by name (repeatable)', collect, [])
    .option('--network <policy>', `${NETWORK_HELP} (default: the server's, off unless its operator set OZ_NETWORK_DEFAULT)`, NETWORK)
    .option(
      '--allow-domain <domain>',
      'under allowlist: a host its runs may reach, example.com or *.example.com, optionally :port (default ports 80 and 443; repeatable)',
      DOMAIN('--allow-domain'),
      [],
    )
    .option(
      '--allow-preset <name>',
      "under allowlist: a named set of hosts, such as npm, pypi, crates, go, maven, rubygems, debian, github (the server's operator may change them; repeatable)",
      PRESET('--allow-preset'),
      [],
    )
    .option(
      '--allow-internal-range <cidr>',
      'admins only: an internal (private, CGNAT, unique-local) address range its runs may reach anyway, on any port, such as 10.20.0.0/16 (repeatable)',
      RANGE('--allow-internal-range'),
      [],
    )
    .option('--host <name>', `where its runs go when they name no --host themselves: ${HOST_HELP}`)
    .action(async (o: CreateOptions, cmd: Command) => {
      const ctx = context(cmd);
      if (o.team && o.personal) throw new UsageError('--team and --personal: choose one');
      if (o.description !== undefined && o.description.length > 240) throw new UsageError('--description: at most 240 characters');
      // With --devcontainer, only the flags given are sent: the others come from the file.
      const given = <T>(list: T[]): boolean => o.devcontainer === undefined || list.length > 0;
      const body: CreateEnvironmentInput = {
        name: o.name,
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.dockerImage !== undefined ? { docker_image: o.dockerImage } : {}),
        ...(o.agentUser !== undefined ? { agent_user: o.agentUser } : {}),
        ...(given(o.repo) ? reposBody(o.repo) : {}),
        ...(given(o.setupCommand) ? { setup_commands: o.setupCommand } : {}),
        ...(given(o.maintenanceCommand) ? { maintenance_commands: o.maintenanceCommand } : {}),
        ...(given(o.env) ? { env: Object.fromEntries(o.env.map(parseEnvPair)) } : {}),
        ...(o.devcontainer !== undefined ? { devcontainer: o.devcontainer } : {}),
        secrets: o.secret,
        ...(o.network !== undefined ? { network: o.network } : {}),
        ...(o.allowDomain.length > 0 ? { allow_domains: o.allowDomain } : {}),
        ...(o.allowPreset.length > 0 ? { allow_presets: o.allowPreset } : {}),
        ...(o.allowInternalRange.length > 0 ? { allow_internal_ranges: o.allowInternalRange } : {}),
        ...(o.host !== undefined ? { worker_host: o.host } : {}),
        ...(o.personal ? { team: false } : {}),
      };
      const created = await ctx.client.createEnvironment(body);
      ctx.out.result(`Created environment ${created.config.name} with ID: ${created.uid}`, created, created.uid);
      if (o.allowDomain.length > 0 || o.allowPreset.length > 0) inactiveRulesNote(ctx, created);
    });

  env
    .command('list')
    .description('List environments')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const result = await ctx.client.listEnvironments();
      ctx.out.list(result.environments, COLUMNS, result, result.environments, 'No environments.');
    });

  env
    .command('get <id>')
    .description('Show an environment')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const item = await ctx.client.getEnvironment(id);
      ctx.out.object(fields(item), item);
    });

  env
    .command('update <id>')
    .description('Change an environment (lists are edited: add with -r/-c/-m/--env/--secret, remove with --remove-*)')
    .option('-n, --name <name>', 'a new name')
    .option('--description <text>', 'a new description')
    .option('--remove-description', 'remove the description')
    .option('-d, --docker-image <image>', 'a new image')
    .option('--agent-user <user>', 'a new harness user on the image')
    .option('--remove-agent-user', "run the harness as the image's USER again")
    .option('-r, --repo <repo>', 'add a repo (repeatable)', collect, [])
    .option('--remove-repo <repo>', 'remove a repo (owner/repo or URL; repeatable)', collect, [])
    .option('-c, --setup-command <cmd>', 'append a setup command (repeatable)', collect, [])
    .option('--remove-setup-command <cmd>', 'remove a setup command, exact match (repeatable)', collect, [])
    .option('-m, --maintenance-command <cmd>', 'append a maintenance command: run in every run, after setup or the warm start (repeatable)', collect, [])
    .option('--remove-maintenance-command <cmd>', 'remove a maintenance command, exact match (repeatable)', collect, [])
    .option('--env <KEY=VALUE>', 'set a variable (repeatable)', collect, [])
    .option('--remove-env <KEY>', 'remove a variable (repeatable)', collect, [])
    .option('--secret <name>', 'attach a secret (repeatable)', collect, [])
    .option('--remove-secret <name>', 'detach a secret (repeatable)', collect, [])
    .option('--network <policy>', NETWORK_HELP, NETWORK)
    .option('--allow-domain <domain>', 'allow a host under allowlist: example.com or *.example.com, optionally :port (repeatable)', DOMAIN('--allow-domain'), [])
    .option('--remove-allow-domain <domain>', 'remove an allowed host, exact match (repeatable)', collect, [])
    .option('--allow-preset <name>', 'allow a preset under allowlist (npm, pypi, github, …; repeatable)', PRESET('--allow-preset'), [])
    .option('--remove-allow-preset <name>', 'remove a preset (repeatable)', collect, [])
    .option('--allow-internal-range <cidr>', 'admins only: let its runs reach an internal range (repeatable)', RANGE('--allow-internal-range'), [])
    .option('--remove-allow-internal-range <cidr>', 'admins only: remove an internal range, as listed (repeatable)', collect, [])
    .option('--host <name>', "a new worker name or label for the environment's runs (warp: any worker)")
    .option('--remove-host', "let the environment's runs go to any worker again")
    .option('--force', 'do not fail when a --remove-* value is not present')
    .action(async (id: string, o: UpdateOptions, cmd: Command) => {
      const ctx = context(cmd);
      if (o.description !== undefined && o.removeDescription) throw new UsageError('--description and --remove-description: choose one');
      const current = await ctx.client.getEnvironment(id);
      const c = current.config;
      const missing = (what: string, value: string) => {
        if (!o.force) throw new UsageError(`${what}: "${value}" is not in the environment (use --force to ignore)`);
      };
      const body: PatchEnvironmentInput = {};
      if (o.name !== undefined) body.name = o.name;
      if (o.description !== undefined) body.description = o.description;
      if (o.removeDescription) body.description = null;
      if (o.dockerImage !== undefined) body.docker_image = o.dockerImage;
      if (o.agentUser !== undefined && o.removeAgentUser) throw new UsageError('--agent-user and --remove-agent-user: choose one');
      if (o.agentUser !== undefined) body.agent_user = o.agentUser;
      if (o.removeAgentUser) body.agent_user = null;
      if (o.repo.length > 0 || o.removeRepo.length > 0) {
        let repos: RepoSpec[] = c.repos.slice();
        for (const spec of o.removeRepo) {
          const parsed = parseRepo(spec.replace(/@[^/@:]*$/, ''));
          const url = parsed.repo?.url ?? `https://github.com/${parsed.github?.owner}/${parsed.github?.repo}.git`;
          const before = repos.length;
          repos = repos.filter((r) => r.url !== url);
          if (repos.length === before) missing('--remove-repo', spec);
        }
        for (const spec of o.repo) {
          const parsed = parseRepo(spec);
          repos.push(parsed.repo ?? { url: `https://github.com/${parsed.github?.owner}/${parsed.github?.repo}.git` });
        }
        body.repos = repos;
        body.github_repos = [];
      }
      if (o.setupCommand.length > 0 || o.removeSetupCommand.length > 0) {
        let commands = c.setup_commands.slice();
        for (const command of o.removeSetupCommand) {
          if (!commands.includes(command)) missing('--remove-setup-command', command);
          commands = commands.filter((x) => x !== command);
        }
        body.setup_commands = [...commands, ...o.setupCommand];
      }
      if (o.maintenanceCommand.length > 0 || o.removeMaintenanceCommand.length > 0) {
        let commands = (c.maintenance_commands ?? []).slice();
        for (const command of o.removeMaintenanceCommand) {
          if (!commands.includes(command)) missing('--remove-maintenance-command', command);
          commands = commands.filter((x) => x !== command);
        }
        body.maintenance_commands = [...commands, ...o.maintenanceCommand];
      }
      if (o.env.length > 0 || o.removeEnv.length > 0) {
        const vars = { ...c.env };
        for (const key of o.removeEnv) {
          if (!(key in vars)) missing('--remove-env', key);
          delete vars[key];
        }
        for (const [k, v] of o.env.map(parseEnvPair)) vars[k] = v;
        body.env = vars;
      }
      if (o.secret.length > 0 || o.removeSecret.length > 0) {
        let secrets = c.secrets.slice();
        for (const s of o.removeSecret) {
          if (!secrets.includes(s)) missing('--remove-secret', s);
          secrets = secrets.filter((x) => x !== s);
        }
        body.secrets = [...new Set([...secrets, ...o.secret])];
      }
      if (o.network !== undefined) body.network = o.network;
      const domains = editList(c.allow_domains ?? [], o.allowDomain, o.removeAllowDomain, (v) => missing('--remove-allow-domain', v));
      if (domains) body.allow_domains = domains;
      const presets = editList(c.allow_presets ?? [], o.allowPreset, o.removeAllowPreset, (v) => missing('--remove-allow-preset', v));
      if (presets) body.allow_presets = presets;
      const ranges = editList(
        c.allow_internal_ranges ?? [],
        o.allowInternalRange.map(parseInternalRange),
        o.removeAllowInternalRange.map((r) => {
          try {
            return parseInternalRange(r);
          } catch {
            return r;
          }
        }),
        (v) => missing('--remove-allow-internal-range', v),
      );
      if (ranges) body.allow_internal_ranges = ranges;
      if (o.host !== undefined && o.removeHost) throw new UsageError('--host and --remove-host: choose one');
      if (o.host !== undefined) body.worker_host = o.host;
      if (o.removeHost) body.worker_host = null;
      if (Object.keys(body).length === 0) throw new UsageError('nothing to change: give at least one option (see --help)');
      const updated = await ctx.client.updateEnvironment(id, body);
      ctx.out.result(`Updated environment ${updated.uid}.`, updated, updated.uid);
      if (o.allowDomain.length > 0 || o.allowPreset.length > 0 || o.network !== undefined) inactiveRulesNote(ctx, updated);
    });

  env
    .command('delete <id>')
    .description('Delete an environment (runs that used it keep their history)')
    .option('--force', 'do not ask for confirmation (required when not on a terminal)')
    .action(async (id: string, o: { force?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      if (!o.force) {
        if (!interactive(ctx)) throw new UsageError('--force: required to delete without an interactive confirmation');
        if (!(await confirm(`Delete environment ${id}?`))) return ctx.out.line('Not deleted.');
      }
      await ctx.client.deleteEnvironment(id);
      ctx.out.result(`Deleted environment ${id}.`, { uid: id, deleted: true }, id);
    });

  return env;
}
