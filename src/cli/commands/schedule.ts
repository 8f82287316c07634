import { Command } from 'commander';
import { createScheduleSchema, type CreateScheduleInput, type ScheduleItem, type UpdateScheduleInput } from '../../api/schedules.js';
import { HARNESS_TYPES, type HarnessType } from '../../core/run.js';
import { OVERLAP_POLICIES, type OverlapPolicy } from '../../core/schedule.js';
import { readAgentConfigFile } from '../agent-config-file.js';
import type { CliContext } from '../context.js';
import { collect, enumOption } from '../parse.js';
import { namingFlags } from '../unavailable.js';
import { UsageError } from '../usage-error.js';
import { HOST_HELP, MODEL_HELP } from './agent.js';
import { str } from './run-views.js';

const OVERLAP = enumOption('--overlap', OVERLAP_POLICIES);

/** The request fields each flag sets: the server's `feature_not_available` names the field, we name the flag. */
const SCHEDULE_FLAGS = {
  'agent_config.mcp_servers': '--mcp',
  'agent_config.skill_spec': '--skill',
  'config.mcp_servers': '--mcp',
  'config.skill_spec': '--skill',
  team: '--personal',
} as const;

/** A schedule body's fields beside `agent_config`, as a file in the API's form may have them. */
const SCHEDULE_BODY_FIELDS = Object.keys(createScheduleSchema.shape).filter((k) => k !== 'agent_config');

interface ScheduleOptions {
  name?: string;
  cron?: string;
  prompt?: string;
  skill?: string;
  model?: string;
  environment?: string | false;
  file?: string;
  team?: boolean;
  personal?: boolean;
  mcp: string[];
  host?: string;
  timezone?: string;
  overlap?: OverlapPolicy;
  harness?: HarnessType;
  harnessCommand?: string;
  secret: string[];
  enabled?: boolean;
  removeEnvironment?: boolean;
}

/** A JSON object as a user wrote it (a `--file`), with the flags applied: the server validates it. */
type Json = Record<string, unknown>;

const COLUMNS = [
  { header: 'ID', value: (s: ScheduleItem) => s.id },
  { header: 'NAME', value: (s: ScheduleItem) => s.name },
  { header: 'SCHEDULE', value: (s: ScheduleItem) => `${s.cron_schedule} (${s.cron_description}${s.timezone && s.timezone !== 'UTC' ? `, ${s.timezone}` : ''})` },
  { header: 'PAUSED', value: (s: ScheduleItem) => (s.enabled ? 'no' : 'yes') },
  {
    header: 'LAST RAN',
    value: (s: ScheduleItem) => {
      const last = s.last_run;
      const when = str(s.history.last_ran);
      return last ? `${when} ${last.run_id} ${last.state}` : s.last_spawn_error ? `failed: ${s.last_spawn_error}` : 'never';
    },
  },
  { header: 'NEXT RUN', value: (s: ScheduleItem) => str(s.history.next_run) || '-' },
  { header: 'SCOPE', value: (s: ScheduleItem) => s.scope.type },
];

function templateOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'a name for the schedule')
    .option('--cron <expr>', 'when: five fields "minute hour day-of-month month day-of-week", e.g. "0 9 * * 1" (UTC unless --timezone)')
    .option('-p, --prompt <text>', 'what the agent should do each time')
    .option('--skill <spec>', 'a skill instead of a prompt')
    .option('--model <id>', MODEL_HELP)
    .option('-e, --environment <id>', 'environment the runs use')
    .option('--no-environment', 'runs without an environment')
    .option('-f, --file <path>', "agent config file (.json, .yaml): the agent config's fields at the top level (Oz's form), or the API request body; flags override it")
    .option('--team', 'a team schedule (default)')
    .option('--personal', 'a personal schedule')
    .option('--mcp <spec>', 'an MCP server for the runs (repeatable)', collect, [])
    .option('--host <name>', `the runs' worker: ${HOST_HELP}`)
    .option('--timezone <iana>', 'read the cron in this time zone, e.g. Europe/Berlin (default UTC)')
    .option('--overlap <policy>', `when a run is still going: ${OVERLAP.choices.join(', ')} (default allow)`, OVERLAP)
    .option('--harness <type>', `what drives the runs: ${HARNESS_TYPES.join(', ')} (default oz)`, enumOption('--harness', HARNESS_TYPES))
    .option('--harness-command <cmd>', 'for --harness command: the command to run (default: the prompt as a shell script)')
    .option('--secret <name>', "limit the runs' secrets to these names (repeatable)", collect, []);
}

/**
 * A schedule file (src/cli/agent-config-file.ts): the API's body form
 * (`agent_config` beside the schedule's fields), or Oz's form (the agent
 * config's fields at the top level, and a `prompt`; its `name` names the
 * schedule too, unless the schedule's own is given).
 */
async function readFileBody(path: string): Promise<Json> {
  const file = await readAgentConfigFile(path, { flag: '--file', wrapper: 'agent_config', bodyFields: SCHEDULE_BODY_FIELDS });
  const { title, ...body } = file.body;
  if (title !== undefined) throw new UsageError(`--file: ${path}: a schedule has no title (its runs take theirs from the prompt)`);
  if (body.name === undefined && typeof file.config.name === 'string') body.name = file.config.name;
  return Object.keys(file.config).length > 0 ? { ...body, agent_config: file.config } : body;
}

/** Apply the flags onto a schedule body (the API's shape). */
function applyFlags(body: Json, o: ScheduleOptions): Json {
  const config: Json = { ...((body.agent_config as Json | undefined) ?? {}) };
  if (o.name !== undefined) body.name = o.name;
  if (o.cron !== undefined) body.cron_schedule = o.cron;
  if (o.prompt !== undefined) body.prompt = o.prompt;
  if (o.skill !== undefined) config.skill_spec = o.skill;
  if (o.model !== undefined) config.model_id = o.model;
  if (o.environment === false || o.removeEnvironment) delete config.environment_id;
  else if (o.environment !== undefined) config.environment_id = o.environment;
  if (o.mcp.length > 0) config.mcp_servers = Object.fromEntries(o.mcp.map((spec, i) => [`mcp${i + 1}`, { command: spec }]));
  if (o.host !== undefined) config.worker_host = o.host;
  if (o.harness !== undefined || o.harnessCommand !== undefined) {
    const type = o.harness ?? 'command';
    if (o.harnessCommand !== undefined && type !== 'command') throw new UsageError('--harness-command: only with --harness command');
    config.harness = o.harnessCommand !== undefined ? { type, command: o.harnessCommand } : { type };
  }
  if (o.secret.length > 0) config.secrets = o.secret;
  if (o.timezone !== undefined) body.timezone = o.timezone;
  if (o.overlap !== undefined) body.overlap_policy = o.overlap;
  // Set even when emptied: --remove-environment may have removed its last field.
  if (Object.keys(config).length > 0 || body.agent_config !== undefined) body.agent_config = config;
  return body;
}

async function create(ctx: CliContext, o: ScheduleOptions): Promise<void> {
  const body = applyFlags(o.file ? await readFileBody(o.file) : {}, o);
  if (!body.name) throw new UsageError('--name: required');
  if (!body.cron_schedule) throw new UsageError('--cron: required (five fields, e.g. "0 9 * * *")');
  if (!body.prompt && (body.agent_config as Json | undefined)?.skill_spec === undefined) throw new UsageError('--prompt: required (or --skill)');
  if (o.team && o.personal) throw new UsageError('--team and --personal: choose one');
  if (o.personal) body.team = false;
  // The required fields are checked above; the rest is the file's and the flags', for the server to validate.
  const schedule = await namingFlags(SCHEDULE_FLAGS, () => ctx.client.createSchedule(body as CreateScheduleInput));
  const next = str(schedule.history.next_run);
  ctx.out.result(`Created schedule ${schedule.id} (${schedule.cron_description}; next run ${next || 'never'}).`, schedule, schedule.id);
}

function show(ctx: CliContext, schedule: ScheduleItem): void {
  const row = COLUMNS.map((c) => `${c.header}: ${c.value(schedule)}`).join('\n');
  ctx.out.result(`${row}\nPROMPT: ${schedule.prompt}`, schedule, COLUMNS.map((c) => c.value(schedule)).join('\t'));
}

/** `oz schedule`: cron-triggered agents. Bare `oz schedule --name … --cron …` creates one. */
export function scheduleCommand(context: (cmd: Command) => CliContext): Command {
  // The bare form (`oz schedule --name …`) is rewritten to `oz schedule create …` before parsing (see bareScheduleMeansCreate).
  const cmd = new Command('schedule').description('Run agents on a cron schedule (bare `oz schedule --name … --cron …` creates one)');
  templateOptions(cmd.command('create').description('Create a schedule')).action(async (o: ScheduleOptions, c: Command) => create(context(c), o));
  cmd
    .command('list')
    .description('List schedules: cron and its reading, paused, last ran, next run, scope')
    .action(async (_o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.listSchedules();
      ctx.out.list(result.schedules, COLUMNS, result, result.schedules, 'No schedules.');
    });
  cmd
    .command('get <id>')
    .description('Show a schedule')
    .action(async (id: string, _o: unknown, c: Command) => {
      const ctx = context(c);
      show(ctx, await ctx.client.getSchedule(id));
    });
  templateOptions(cmd.command('update <id>').description('Change a schedule: the flags given replace those fields, the rest stay'))
    .option('--remove-environment', 'runs without an environment from now on')
    .action(async (id: string, o: ScheduleOptions, c: Command) => {
      const ctx = context(c);
      const current = await ctx.client.getSchedule(id);
      const base: Json = {
        name: current.name,
        cron_schedule: current.cron_schedule,
        prompt: current.prompt,
        enabled: current.enabled,
        agent_config: current.agent_config,
        timezone: current.timezone,
        overlap_policy: current.overlap_policy,
      };
      // A file's agent config changes the fields it names; the others stay.
      const file = o.file ? await readFileBody(o.file) : {};
      const merged: Json = { ...base, ...file, agent_config: { ...current.agent_config, ...(file.agent_config ?? {}) } };
      const body = applyFlags(merged, o);
      show(ctx, await namingFlags(SCHEDULE_FLAGS, () => ctx.client.replaceSchedule(id, body as UpdateScheduleInput)));
    });
  for (const [name, action, verb, alias] of [
    ['pause', 'pause', 'Paused', undefined],
    ['unpause', 'resume', 'Resumed', 'resume'],
  ] as const) {
    const sub = cmd
      .command(`${name} <id>`)
      .description(name === 'pause' ? 'Pause a schedule (no runs until unpaused)' : 'Unpause a schedule: it continues from its next slot, without catching up')
      .action(async (id: string, _o: unknown, c: Command) => {
        const ctx = context(c);
        const schedule = await ctx.client.scheduleAction(id, action);
        ctx.out.result(`${verb} schedule ${id}.`, schedule, id);
      });
    if (alias) sub.alias(alias);
  }
  cmd
    .command('delete <id>')
    .description('Delete a schedule (its runs stay)')
    .action(async (id: string, _o: unknown, c: Command) => {
      const ctx = context(c);
      const result = await ctx.client.deleteSchedule(id);
      ctx.out.result(`Deleted schedule ${id}.`, result, id);
    });
  cmd
    .command('run-now <id>')
    .description('Run a schedule now, outside its cron')
    .action(async (id: string, _o: unknown, c: Command) => {
      const ctx = context(c);
      const created = await ctx.client.scheduleAction(id, 'run-now');
      ctx.out.result(`Spawned agent with run ID: ${created.run_id}`, created, created.run_id);
    });
  return cmd;
}

/** Root options that take a value: their value is not the command name. */
const ROOT_VALUE_OPTIONS = new Set(['--api-key', '--output-format', '--server-url']);

/**
 * `oz schedule --name … --cron …` means `oz schedule create …` (as Oz). Done
 * on argv before commander parses it: commander hands a parent's options to
 * it wherever they appear, so the parent cannot share `create`'s flags.
 */
export function bareScheduleMeansCreate(argv: string[]): string[] {
  let i = 2;
  while (i < argv.length && (argv[i] ?? '').startsWith('-')) i += ROOT_VALUE_OPTIONS.has(argv[i] ?? '') ? 2 : 1;
  const next = argv[i + 1];
  if (argv[i] !== 'schedule' || next === undefined || !next.startsWith('-') || next === '-h' || next === '--help') return argv;
  return [...argv.slice(0, i + 1), 'create', ...argv.slice(i + 1)];
}
