import type { CreateEnvironmentInput, EnvironmentItem, LimitsItem, PatchEnvironmentInput } from '../../../../src/api/environments.js';
import type { NetworkPolicy } from '../../../../src/core/environment.js';
import { lines } from '../../ui/components.js';
import { repoLine, repoOfLine } from './repos.js';

export type LimitKey = keyof LimitsItem;

/** The limits the form offers, in the API's units (docs/api.md "Limits"). */
export const LIMITS: readonly { key: LimitKey; label: string; hint?: string }[] = [
  { key: 'max_runtime_seconds', label: 'Max runtime (seconds)' },
  { key: 'cpus', label: 'CPUs', hint: 'Cores; fractional: 0.5 is half a core.' },
  { key: 'memory_mb', label: 'Memory (MiB)' },
  { key: 'disk_mb', label: 'Disk (MiB)' },
  { key: 'pids', label: 'Processes' },
  { key: 'output_mb', label: 'Output (MiB)' },
];

/** The environment form as typed: text, turned into the API's shapes only on submit. */
export interface EnvironmentForm {
  name: string;
  description: string;
  repos: string;
  setup: string;
  maintenance: string;
  image: string;
  agentUser: string;
  network: NetworkPolicy;
  /** Under `allowlist`: domain rules and preset names, separated by commas, spaces or lines. */
  allowDomains: string;
  allowPresets: string;
  secrets: string;
  vars: string;
  workerHost: string;
  limits: Record<LimitKey, string>;
  /** Create only: team-wide (true) or personal. */
  team: boolean;
  /** Create only: `owner/repo[:path]` of a devcontainer.json. */
  devcontainer: string;
}

const noLimits = (): Record<LimitKey, string> => ({ max_runtime_seconds: '', cpus: '', memory_mb: '', disk_mb: '', pids: '', output_mb: '' });

export function formOf(env?: EnvironmentItem): EnvironmentForm {
  if (!env) {
    return {
      name: '',
      description: '',
      repos: '',
      setup: '',
      maintenance: '',
      image: '',
      agentUser: '',
      network: 'off',
      allowDomains: '',
      allowPresets: '',
      secrets: '',
      vars: '',
      workerHost: '',
      limits: noLimits(),
      team: true,
      devcontainer: '',
    };
  }
  const c = env.config;
  const limits = noLimits();
  for (const { key } of LIMITS) {
    const value = c.limits[key];
    if (value !== undefined) limits[key] = String(value);
  }
  return {
    name: c.name,
    description: c.description ?? '',
    repos: c.repos.map(repoLine).join('\n'),
    setup: c.setup_commands.join('\n'),
    maintenance: c.maintenance_commands.join('\n'),
    image: c.docker_image ?? '',
    agentUser: c.agent_user ?? '',
    network: c.network,
    allowDomains: (c.allow_domains ?? []).join('\n'),
    allowPresets: (c.allow_presets ?? []).join(', '),
    secrets: c.secrets.join(', '),
    vars: Object.entries(c.env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    workerHost: c.worker_host ?? '',
    limits,
    team: env.scope.type === 'Team',
    devcontainer: '',
  };
}

/** Names separated by commas, spaces or lines. */
export const names = (text: string): string[] => text.split(/[\s,]+/).filter(Boolean);

/**
 * `NAME=value` lines as the API's `env`. The value is kept as typed (after the
 * first `=`); a line without a name and `=` cannot be read, and is reported
 * by its line number (the only check made here: the API never sees the text).
 */
export function parseVars(text: string): { vars: Record<string, string>; problem: string | null } {
  const vars: Record<string, string> = {};
  const all = text.split('\n');
  for (const [i, raw] of all.entries()) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) continue;
    const eq = line.indexOf('=');
    if (eq <= 0 || !line.slice(0, eq).trim()) return { vars, problem: `Line ${i + 1} is not NAME=value.` };
    vars[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return { vars, problem: null };
}

/** A number as typed: empty is "not set"; anything else goes as it is, for the API to judge. */
const num = (text: string): number | undefined => (text.trim() === '' ? undefined : Number(text));

function limitsOf(form: Record<LimitKey, string>): LimitsItem {
  const out: LimitsItem = {};
  for (const { key } of LIMITS) {
    const value = num(form[key]);
    if (value !== undefined) out[key] = value;
  }
  return out;
}

/** Every field in the API's terms; `null` where the form is empty and the API removes with null. */
function apiValues(f: EnvironmentForm) {
  return {
    name: f.name.trim(),
    description: f.description.trim() || null,
    repos: lines(f.repos).map(repoOfLine),
    setup_commands: lines(f.setup),
    maintenance_commands: lines(f.maintenance),
    docker_image: f.image.trim() || null,
    agent_user: f.agentUser.trim() || null,
    network: f.network,
    allow_domains: names(f.allowDomains),
    allow_presets: names(f.allowPresets),
    secrets: names(f.secrets),
    env: parseVars(f.vars).vars,
    worker_host: f.workerHost.trim() || null,
    limits: limitsOf(f.limits),
  };
}

/** The create body: only what the form sets (with a devcontainer.json, what is given wins over the file's). */
export function createBody(f: EnvironmentForm): CreateEnvironmentInput {
  const v = apiValues(f);
  const body: CreateEnvironmentInput = { name: f.name, team: f.team, network: v.network };
  if (v.description !== null) body.description = v.description;
  if (v.repos.length > 0) body.repos = v.repos;
  if (v.setup_commands.length > 0) body.setup_commands = v.setup_commands;
  if (v.maintenance_commands.length > 0) body.maintenance_commands = v.maintenance_commands;
  if (v.docker_image !== null) body.docker_image = v.docker_image;
  if (v.agent_user !== null) body.agent_user = v.agent_user;
  if (v.allow_domains.length > 0) body.allow_domains = v.allow_domains;
  if (v.allow_presets.length > 0) body.allow_presets = v.allow_presets;
  if (v.secrets.length > 0) body.secrets = v.secrets;
  if (Object.keys(v.env).length > 0) body.env = v.env;
  if (v.worker_host !== null) body.worker_host = v.worker_host;
  if (Object.keys(v.limits).length > 0) body.limits = v.limits;
  if (f.devcontainer.trim()) body.devcontainer = f.devcontainer.trim();
  return body;
}

/**
 * The PATCH body: only the fields that changed from `initial` (each given
 * field replaces the stored one; an emptied description, image, agent user
 * or worker host is `null`, which removes it). Empty when nothing changed.
 */
export function patchBody(f: EnvironmentForm, initial: EnvironmentForm): PatchEnvironmentInput {
  const now = apiValues(f);
  const before = apiValues(initial);
  const changed = (key: keyof typeof now): boolean => JSON.stringify(now[key]) !== JSON.stringify(before[key]);
  const body: PatchEnvironmentInput = {};
  if (changed('name')) body.name = f.name;
  if (changed('description')) body.description = now.description;
  if (changed('repos')) {
    // Every repository goes as `repos`, so `repos[i]` in an error is the form's i-th line; no GitHub ones are kept aside.
    body.repos = now.repos;
    body.github_repos = [];
  }
  if (changed('setup_commands')) body.setup_commands = now.setup_commands;
  if (changed('maintenance_commands')) body.maintenance_commands = now.maintenance_commands;
  if (changed('docker_image')) body.docker_image = now.docker_image;
  if (changed('agent_user')) body.agent_user = now.agent_user;
  if (changed('network')) body.network = now.network;
  if (changed('allow_domains')) body.allow_domains = now.allow_domains;
  if (changed('allow_presets')) body.allow_presets = now.allow_presets;
  if (changed('secrets')) body.secrets = now.secrets;
  if (changed('env')) body.env = now.env;
  if (changed('worker_host')) body.worker_host = now.worker_host;
  if (changed('limits')) body.limits = now.limits;
  return body;
}
