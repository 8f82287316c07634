import { Command, Option } from 'commander';
import { runAgentRequestSchema, type RunAgentRequestInput } from '../../api/run-requests.js';
import type { RunEventMessage } from '../../api/run-events.js';
import { HARNESS_TYPES, type HarnessType } from '../../core/run.js';
import { readAgentConfigFile } from '../agent-config-file.js';
import type { CliContext, GlobalOptions } from '../context.js';
import { renderEvent } from '../render-events.js';
import { collect, duration, enumOption, keyValue, positiveInt, wholeNumber } from '../parse.js';
import { namingFlags, unavailableCommand } from '../unavailable.js';
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
  skill?: string;
  host?: string;
  computerUse?: boolean;
  conversation?: string;
  wait?: boolean;
  follow?: boolean;
  idempotencyKey?: string;
  secret: string[];
  maxSteps?: number;
  maxTokens?: number;
  maxRuntime?: number;
  claudeAuthSecret?: string;
  codexAuthSecret?: string;
  /** False with --no-snapshot (commander's default for a --no-* flag is true). */
  snapshot?: boolean;
  /** `--branch REPO=REF`, repeatable: config.branches. */
  branch?: Record<string, string>;
  /** `--idle-timeout MINUTES`: config.idle_timeout_minutes. */
  idleTimeout?: number;
}

/** A JSON object as a user wrote it (a `--file`): the server validates it. */
type Json = Record<string, unknown>;

/** The model flag's help: Oz's catalog ids and provider/model both work. */
export const MODEL_HELP = 'model: an id of the catalog (`oz model list`) such as claude-4-6-opus-high, auto, or provider/model such as anthropic/claude-sonnet-4-5';

/** The --host flag's help (config.worker_host). */
export const HOST_HELP = 'run only on a worker with this name or label (`oz worker --name/--label`, `oz worker list`); warp: any worker (default)';

/** The request body's fields beside `config`, as a run config file in the API's form may have them. */
const RUN_BODY_FIELDS = Object.keys(runAgentRequestSchema.shape).filter((k) => k !== 'config');

/** The request fields each flag sets: the server's `feature_not_available` names the field, we name the flag. */
const RUN_FLAGS = {
  'config.mcp_servers': '--mcp',
  attachments: '--attach',
  skill: '--skill',
  'config.skill_spec': '--skill',
  'config.computer_use_enabled': '--computer-use',
  conversation_id: '--conversation',
  team: '--personal',
} as const;

/**
 * The config file: `-f`, else `WARP_AGENT_CONFIG_FILE`. Not the default one
 * with `--conversation`: the run keeps its own configuration (the server
 * refuses any other `config` field), so only what the user passed goes.
 */
async function readConfigFile(o: RunCloudOptions, fromEnv: string | null): Promise<{ config: Json; body: Json }> {
  const path = o.file ?? (o.conversation !== undefined ? null : fromEnv);
  if (path === null) return { config: {}, body: {} };
  return readAgentConfigFile(path, { flag: o.file !== undefined ? '--file' : 'WARP_AGENT_CONFIG_FILE', wrapper: 'config', bodyFields: RUN_BODY_FIELDS });
}

/** The request body from the config file (`-f`, else `WARP_AGENT_CONFIG_FILE`: `defaultFile`) and the flags, which win. */
export async function buildRunBody(o: RunCloudOptions, defaultFile: string | null = null): Promise<RunAgentRequestInput> {
  const file = await readConfigFile(o, defaultFile);
  const body: Json = { ...file.body };
  const config: Json = { ...file.config };
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
  if (o.snapshot === false) config.snapshot = false;
  if (o.branch !== undefined) {
    const fromFile = config.branches;
    config.branches = { ...(fromFile !== null && typeof fromFile === 'object' && !Array.isArray(fromFile) ? fromFile : {}), ...o.branch };
  }
  if (o.idleTimeout !== undefined) config.idle_timeout_minutes = o.idleTimeout;
  if (o.mcp.length > 0) config.mcp_servers = Object.fromEntries(o.mcp.map((spec, i) => [`mcp${i + 1}`, { command: spec }]));
  if (o.skill !== undefined) body.skill = o.skill;
  if (o.host !== undefined) config.worker_host = o.host;
  if (o.computerUse !== undefined) config.computer_use_enabled = o.computerUse;
  if (o.conversation !== undefined) body.conversation_id = o.conversation;
  if (o.title !== undefined) body.title = o.title;
  if (o.team && o.personal) throw new UsageError('--team and --personal: choose one');
  if (o.personal) body.team = false;
  if (o.attach.length > 5) throw new UsageError('--attach: at most 5 files');
  if (o.attach.length > 0) body.attachments = o.attach.map((path) => ({ file_name: path }));
  if (o.wait && o.follow) throw new UsageError('--wait and --follow: choose one (--follow also waits)');
  if (Object.keys(config).length > 0) body.config = config;
  // The prompt is checked above; the rest is the file's and the flags', for the server to validate.
  return body;
}

/**
 * The event a follow-up writes (a user message naming it): by its number,
 * or the first one of an execution at or after `execution`.
 */
export function followupOf(execution: number, seq?: number): (event: RunEventMessage) => boolean {
  return (e) =>
    e.type === 'message' &&
    e.data.role === 'user' &&
    typeof e.data.followup === 'number' &&
    (seq !== undefined ? e.data.followup === seq : typeof e.data.execution === 'number' && e.data.execution >= execution);
}

/**
 * Follow or wait until the run ends (its latest execution: a follow-up to an
 * ended run makes it live again); exit 1 unless it SUCCEEDED. `from`: the
 * first event to show (`oz run followup --follow` starts at its follow-up);
 * every event when absent.
 */
export async function awaitRun(ctx: CliContext, runId: string, follow: boolean, from?: (event: RunEventMessage) => boolean): Promise<void> {
  let showing = from === undefined;
  const onEvent = (event: RunEventMessage): void => {
    showing ||= from?.(event) === true;
    if (follow && showing) renderEvent(ctx.out, event);
  };
  const final = await ctx.client.followRun(runId, { reconnect: true, onEvent });
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
    .aliases(['ra', 'run-ambient'])
    .description('Dispatch an agent run in the cloud (an isolated sandbox on a worker)')
    .option('-p, --prompt <text>', 'what the agent should do')
    .option('-e, --environment <id>', 'environment to run in (repos, setup commands, secrets)')
    .option('--no-environment', 'run without an environment')
    .option('--model <id>', MODEL_HELP)
    .option('--harness <type>', `what drives the run: ${HARNESS_TYPES.join(', ')} (default oz)`, enumOption('--harness', HARNESS_TYPES))
    .option('--harness-command <cmd>', 'for --harness command: the command to run (default: the prompt as a shell script)')
    .option('-n, --name <name>', 'a label for grouping and filtering runs')
    .option('--title <text>', 'a title (default: the first line of the prompt)')
    .option(
      '-f, --file <path>',
      "agent config file (.json, .yaml): the agent config's fields at the top level (Oz's form), or the API request body; flags override it (default: WARP_AGENT_CONFIG_FILE)",
    )
    .option('--team', 'a team-owned run (default)')
    .option('--personal', 'a personal run')
    .option('--mcp <spec>', 'an MCP server for the run (repeatable)', collect, [])
    .option('--attach <path>', 'attach a file (repeatable, at most 5)', collect, [])
    .option('--skill <spec>', 'a skill to run')
    .option('--host <name>', HOST_HELP)
    .option('--computer-use', 'let the agent use a computer')
    .addOption(new Option('--no-computer-use', 'no computer use (default)'))
    .option(
      '--conversation <id>',
      "continue a conversation (its id is its run's): the prompt goes to that run as a follow-up (as `oz run followup`); the run keeps its configuration, so other config flags are refused",
    )
    .option('--wait', 'wait until the run ends; exit 1 unless it succeeded')
    .option('--follow', 'stream the run live until it ends; exit 1 unless it succeeded')
    .option('--idempotency-key <key>', 'retry-safe creation: the same key and request return the same run')
    .option('--secret <name>', "limit the run's secrets to these names (repeatable)", collect, [])
    .option('--max-steps <n>', 'oz harness: model calls before the run ends FAILED budget_exceeded (worker default 100)', positiveInt('--max-steps', 10_000))
    .option('--max-tokens <n>', 'oz harness: input+output tokens before the run ends FAILED budget_exceeded (worker default 5000000)', positiveInt('--max-tokens', 1_000_000_000))
    .option('--max-runtime <duration>', 'end the run FAILED after this long, e.g. 30m, 2h', duration('--max-runtime'))
    .option('--claude-auth-secret <name>', 'claude harness: the secret holding the Anthropic key Claude Code uses (through the model proxy)')
    .option('--codex-auth-secret <name>', 'codex harness: the secret holding the OpenAI key Codex uses (through the model proxy)')
    .option(
      '--no-snapshot',
      "a cold start: run the environment's setup commands even when a worker has a snapshot of them (default: a warm start from a matching snapshot, then the maintenance commands)",
    )
    .option(
      '--branch <repo=ref>',
      'start a repository of the environment (its URL, owner/name or name) from this branch or commit, e.g. acme/web=release-2 (repeatable; needs -e)',
      keyValue('--branch', 'REPO=REF'),
    )
    .option(
      '--idle-timeout <minutes>',
      'keep the sandbox alive this many minutes (0-60) after an execution ends, so a follow-up continues in it',
      wholeNumber('--idle-timeout', 0, 60),
    )
    .action(async (options: RunCloudOptions, cmd: Command) => {
      const ctx = context(cmd);
      const body = await buildRunBody(options, ctx.env.agentConfigFile);
      const created = await namingFlags(RUN_FLAGS, () => ctx.client.createRun(body, options.idempotencyKey));
      const runId = created.run_id;
      // The id ends its line (scripts take the last word); the queued note has its own line.
      const queued = created.at_capacity
        ? '\nQueued: the team is at its concurrency limit; the run starts when a slot frees up.'
        : created.state === 'QUEUED'
          ? `\nQueued: no worker seen lately has the name or label ${body.config?.worker_host !== undefined ? JSON.stringify(body.config.worker_host) : 'its environment names'}; the run starts when one comes (oz run get ${runId} says what it waits for).`
          : '';
      const sentence = options.conversation !== undefined ? `Follow-up sent to the conversation of run ID: ${runId}` : `Spawned agent with run ID: ${runId}`;
      ctx.out.result(`${sentence}${queued}`, created, runId);
      if (options.wait || options.follow) {
        // A follow-up to the conversation: its events from the follow-up on, as `oz run followup --follow` shows them.
        const from = options.conversation !== undefined && options.follow ? followupOf((await ctx.client.getRun(runId)).execution) : undefined;
        await awaitRun(ctx, runId, Boolean(options.follow), from);
      }
    });
  // Oz's local runs (in the current directory) need a local agent; this server only dispatches runs to its workers.
  agent.addCommand(
    unavailableCommand('agent run', ['r'], 'Run the agent locally in the current directory', 'it runs runs in sandboxes on its workers only; use `oz agent run-cloud`'),
  );
  return agent;
}

export type { GlobalOptions };
