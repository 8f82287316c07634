import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { UsageError } from './usage-error.js';

/**
 * An agent config file (`oz agent run-cloud -f`, `oz schedule create|update
 * -f`, `WARP_AGENT_CONFIG_FILE`), in JSON or YAML. Oz's form has the agent
 * config's fields at the top level (`name`, `model_id`, `environment_id`,
 * `base_prompt` or `system_prompt`, `mcp_servers`, …), optionally with a
 * `prompt`; the API's request body form (`{ prompt, config: { … } }`, or a
 * schedule's `agent_config`) is read too. Values are checked by the server,
 * which names the field; here only the shape is: an unknown top-level field
 * is an error naming it, never silently dropped.
 */
export interface AgentConfigFile {
  /** The agent config (the API's `config` / `agent_config`). */
  config: Record<string, unknown>;
  /** The rest of a request body form, or the top-level `prompt`/`title` of Oz's form. */
  body: Record<string, unknown>;
}

/** The agent config's fields (the spec's AmbientAgentConfig, plus ours). */
const CONFIG_FIELDS = [
  'name',
  'model_id',
  'base_prompt',
  'environment_id',
  'skill_spec',
  'mcp_servers',
  'computer_use_enabled',
  'idle_timeout_minutes',
  'worker_host',
  'harness',
  'harness_auth_secrets',
  'secrets',
  'max_runtime_seconds',
  'max_steps',
  'max_tokens',
] as const;
/** Oz's other spellings. */
const ALIASES: Record<string, (typeof CONFIG_FIELDS)[number]> = { system_prompt: 'base_prompt' };
/** Top-level fields of Oz's form that are not agent config. */
const BODY_FIELDS = ['prompt', 'title'] as const;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function parseText(path: string, text: string): Promise<unknown> {
  const ext = extname(path).toLowerCase();
  if (ext === '.json') return JSON.parse(text);
  // YAML (a superset of JSON) for .yaml, .yml and anything else; loaded only
  // when needed: it costs the CLI start-up time.
  const { parse } = await import('yaml');
  return parse(text);
}

/** The agent config of Oz's form, with aliases folded in; unknown fields refused. */
function agentConfig(value: Json, flag: string, file: string, extra: readonly string[]): { config: Json; rest: Json } {
  const config: Json = {};
  const rest: Json = {};
  for (const [key, field] of Object.entries(value)) {
    const name = ALIASES[key] ?? key;
    if ((CONFIG_FIELDS as readonly string[]).includes(name)) {
      if (name in config) throw new UsageError(`${flag}: ${file} sets ${name} twice (${key} is another name for it)`);
      config[name] = name === 'harness' && typeof field === 'string' ? { type: field } : field;
    } else if (extra.includes(key)) {
      rest[key] = field;
    } else {
      const allowed = [...CONFIG_FIELDS, ...Object.keys(ALIASES), ...extra].join(', ');
      throw new UsageError(`${flag}: ${file} has an unknown field ${JSON.stringify(key)} (allowed: ${allowed})`);
    }
  }
  return { config, rest };
}

/**
 * Read an agent config file. `wrapper` is the request body's field that holds
 * the agent config in the API form (`config` for runs, `agent_config` for
 * schedules); `bodyFields` are the other fields that form may have.
 */
export async function readAgentConfigFile(path: string, options: { flag: string; wrapper: 'config' | 'agent_config'; bodyFields: readonly string[] }): Promise<AgentConfigFile> {
  const { flag, wrapper, bodyFields } = options;
  const file = basename(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  let value: unknown;
  try {
    value = await parseText(path, text);
  } catch (error) {
    throw new UsageError(`${flag}: ${file} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML or JSON'}: ${(error as Error).message.split('\n')[0]}`);
  }
  if (!isObject(value)) throw new UsageError(`${flag}: ${file} must hold an object (the agent config's fields at the top level)`);
  if (wrapper in value) {
    // The API's request body form.
    const { [wrapper]: inner, ...body } = value;
    if (!isObject(inner)) throw new UsageError(`${flag}: ${file}: ${wrapper} must be an object`);
    for (const key of Object.keys(body)) {
      if (!bodyFields.includes(key)) throw new UsageError(`${flag}: ${file} has an unknown field ${JSON.stringify(key)} (allowed beside ${wrapper}: ${bodyFields.join(', ')})`);
    }
    return { config: agentConfig(inner, flag, `${file} (${wrapper})`, []).config, body };
  }
  const { config, rest } = agentConfig(value, flag, file, BODY_FIELDS);
  return { config, body: rest };
}
