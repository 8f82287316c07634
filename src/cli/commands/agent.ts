import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { Command } from 'commander';
import type { RunAgentRequestInput } from '../../api/run-requests.js';
import { HARNESS_TYPES, type HarnessType } from '../../core/run.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { renderEvent } from '../render-events.js';
import { collect, duration, oneOf, positiveInt } from '../parse.js';
import { UsageError } from '../usage-error.js';
import { stateOf } from './run-views.js';

interface RunCloudOptions {
  prompt?: string;
  environment?: string | false;
  model?: string;
  harness?: HarnessType;
  harnessCommand?: string;
  name?: string;
  title?: string;
  file?: string;
  team?: boolean;
  personal?: boolean;
  mcp: string[];
  attach: string[];
  wait?: boolean;
  follow?: boolean;
  idempotencyKey?: string;
  secret: string[];
  maxSteps?: number;
  maxTokens?: number;
  maxRuntime?: number;
  claudeAuthSecret?: string;
  codexAuthSecret?: string;
}

/** A JSON object as a user wrote it (a `--file`): the server validates it. */
type Json = Record<string, unknown>;

/** A run config file (`-f agent.yaml|json`): the API's request body, flags override it. */
async function readRunFile(path: string): Promise<Json> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--file: cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    // yaml is loaded only when a YAML file is given: it costs CLI start-up time.
    const value: unknown = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? (await import('yaml')).parse(text) : JSON.parse(text);
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('must contain an object');
    return value as Json;
  } catch (error) {
    throw new UsageError(`--file: ${path} is not a valid run config: ${(error as Error).message}`);
  }
}

export async function buildRunBody(o: RunCloudOptions): Promise<RunAgentRequestInput> {
  const body: Json = o.file ? await readRunFile(o.file) : {};
  const config: Json = { ...((body.config as Json | undefined) ?? {}) };
  if (o.prompt !== undefined) body.prompt = o.prompt;
  if (typeof body.prompt !== 'string' || body.prompt.trim() === '') throw new UsageError('--prompt: a prompt is required (-p TEXT or "prompt" in --file)');
  if (o.environment === false) delete config.environment_id;
  else if (o.environment !== undefined) config.environment_id = o.environment;
  if (o.model !== undefined) config.model_id = o.model;
  if (o.harness !== undefined || o.harnessCommand !== undefined) {
    const type = o.harness ?? 'command';
    if (o.harnessCommand !== undefined && type !== 'command') throw new UsageError('--harness-command: only with --harness command');
    config.harness = o.harnessCommand !== undefined ? { type, command: o.harnessCommand } : { type };
  }
  if (o.name !== undefined) config.name = o.name;
  if (o.secret.length > 0) config.secrets = o.secret;
  if (o.maxSteps !== undefined) config.max_steps = o.maxSteps;
  if (o.maxTokens !== undefined) config.max_tokens = o.maxTokens;
  if (o.maxRuntime !== undefined) config.max_runtime_seconds = o.maxRuntime;
  if (o.claudeAuthSecret !== undefined || o.codexAuthSecret !== undefined) {
    config.harness_auth_secrets = {
      ...(config.harness_auth_secrets ?? {}),
      ...(o.claudeAuthSecret !== undefined ? { claude_auth_secret_name: o.claudeAuthSecret } : {}),
      ...(o.codexAuthSecret !== undefined ? { codex_auth_secret_name: o.codexAuthSecret } : {}),
    };
  }
  if (o.mcp.length > 0) config.mcp_servers = Object.fromEntries(o.mcp.map((spec, i) => [`mcp${i + 1}`, { command: spec }]));
  if (o.title !== undefined) body.title = o.title;
  if (o.team && o.personal) throw new UsageError('--team and --personal: choose one');
  if (o.personal) body.team = false;
  if (o.attach.length > 5) throw new UsageError('--attach: at most 5 files');
  if (o.attach.length > 0) body.attachments = o.attach.map((path) => ({ file_name: path }));
  if (o.wait && o.follow) throw new UsageError('--wait and --follow: choose one (--follow also waits)');
  if (Object.keys(config).length > 0) body.config = config;
  // The prompt is checked above; the rest is the file's and the flags', for the server to validate.
  return body as RunAgentRequestInput;
}

/** Follow or wait until the run ends; exit 1 unless it SUCCEEDED. */
export async function awaitRun(ctx: CliContext, runId: string, follow: boolean): Promise<void> {
  const final = await ctx.client.followRun(runId, { reconnect: true, onEvent: (e) => (follow ? renderEvent(ctx.out, e) : undefined) });
  const run = await ctx.client.getRun(runId);
  if (!follow) {
    ctx.out.result(`Run ${runId} ended ${stateOf(run)}${run.status_message ? `: ${run.status_message.message}` : ''}`, run, `${runId}\t${run.state}`);
  }
  if ((final ?? run.state) !== 'SUCCEEDED') process.exitCode = 1;
}

export function agentCommand(context: (cmd: Command) => CliContext): Command {
  const agent = new Command('agent').description('Dispatch and run agents');
  agent
    .command('run-cloud')
    .alias('ra')
    .description('Dispatch an agent run in the cloud (an isolated sandbox on a worker)')
    .option('-p, --prompt <text>', 'what the agent should do')
    .option('-e, --environment <id>', 'environment to run in (repos, setup commands, secrets)')
    .option('--no-environment', 'run without an environment')
    .option('--model <id>', 'model id, e.g. anthropic/claude-sonnet-4-5')
    .option('--harness <type>', `what drives the run: ${HARNESS_TYPES.join(', ')} (default oz)`, oneOf('--harness', HARNESS_TYPES))
    .option('--harness-command <cmd>', 'for --harness command: the command to run (default: the prompt as a shell script)')
    .option('-n, --name <name>', 'a label for grouping and filtering runs')
    .option('--title <text>', 'a title (default: the first line of the prompt)')
    .option('-f, --file <path>', 'run config file (.json, .yaml): the API request body; flags override it')
    .option('--team', 'a team-owned run (default)')
    .option('--personal', 'a personal run')
    .option('--mcp <spec>', 'an MCP server for the run (repeatable)', collect, [])
    .option('--attach <path>', 'attach a file (repeatable, at most 5)', collect, [])
    .option('--wait', 'wait until the run ends; exit 1 unless it succeeded')
    .option('--follow', 'stream the run live until it ends; exit 1 unless it succeeded')
    .option('--idempotency-key <key>', 'retry-safe creation: the same key and request return the same run')
    .option('--secret <name>', "limit the run's secrets to these names (repeatable)", collect, [])
    .option('--max-steps <n>', 'oz harness: model calls before the run ends FAILED budget_exceeded (worker default 100)', positiveInt('--max-steps', 10_000))
    .option('--max-tokens <n>', 'oz harness: input+output tokens before the run ends FAILED budget_exceeded (worker default 5000000)', positiveInt('--max-tokens', 1_000_000_000))
    .option('--max-runtime <duration>', 'end the run FAILED after this long, e.g. 30m, 2h', duration('--max-runtime'))
    .option('--claude-auth-secret <name>', 'claude harness: the secret holding the Anthropic key Claude Code uses (through the model proxy)')
    .option('--codex-auth-secret <name>', 'codex harness: the secret holding the OpenAI key Codex uses (through the model proxy)')
    .action(async (options: RunCloudOptions, cmd: Command) => {
      const ctx = context(cmd);
      const body = await buildRunBody(options);
      const created = await ctx.client.createRun(body, options.idempotencyKey);
      const runId = created.run_id;
      ctx.out.result(`Spawned agent with run ID: ${runId}${created.at_capacity ? ' (queued: the team is at its concurrency limit)' : ''}`, created, runId);
      if (options.wait || options.follow) await awaitRun(ctx, runId, Boolean(options.follow));
    });
  return agent;
}

export type { GlobalOptions };
