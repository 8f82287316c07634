import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import type { ContentBlock, ConversationMessage } from '../../api/conversation.js';
import { RUN_STATES, type RunState } from '../../core/run-state.js';
import { ARTIFACT_TYPES, EXECUTION_LOCATIONS, RUN_SORT_FIELDS, RUN_SOURCES } from '../../core/run.js';
import type { FollowupResponse } from '../../api/runs.js';
import type { CliContext } from '../context.js';
import { readAll } from '../read-secret.js';
import { enumOption, positiveInt, rfc3339 } from '../parse.js';
import { renderEvent } from '../render-events.js';
import { UsageError } from '../usage-error.js';
import { awaitRun, followupOf } from './agent.js';
import { RUN_COLUMNS, runFields, str } from './run-views.js';

interface ListOptions {
  limit: number;
  state: RunState[];
  source?: string;
  executionLocation?: string;
  environment?: string;
  schedule?: string;
  name?: string;
  model?: string;
  creator?: string;
  ancestorRun?: string;
  artifactType?: string;
  skill?: string;
  createdAfter?: string;
  createdBefore?: string;
  updatedAfter?: string;
  query?: string;
  sortBy?: string;
  sortOrder?: string;
  cursor?: string;
}

/** The enum flags of `oz run list`, in Oz's dashed spellings (the API's values as aliases). */
const STATE = enumOption('--state', RUN_STATES, { INPROGRESS: 'in-progress' });
const SOURCE = enumOption('--source', RUN_SOURCES);
const LOCATION = enumOption('--execution-location', EXECUTION_LOCATIONS);
const ARTIFACT = enumOption('--artifact-type', ARTIFACT_TYPES);
const SORT_BY = enumOption('--sort-by', RUN_SORT_FIELDS);
const SORT_ORDER = enumOption('--sort-order', ['asc', 'desc'] as const);

export function listQuery(o: ListOptions): URLSearchParams {
  const q = new URLSearchParams();
  q.set('limit', String(o.limit));
  for (const state of o.state) q.append('state', state);
  const put = (key: string, value: string | undefined) => value !== undefined && q.set(key, value);
  put('source', o.source);
  put('execution_location', o.executionLocation);
  put('environment_id', o.environment);
  put('schedule_id', o.schedule);
  put('name', o.name);
  put('model_id', o.model);
  put('creator', o.creator);
  put('ancestor_run_id', o.ancestorRun);
  put('artifact_type', o.artifactType);
  put('skill', o.skill);
  put('created_after', o.createdAfter);
  put('created_before', o.createdBefore);
  put('updated_after', o.updatedAfter);
  put('q', o.query);
  put('sort_by', o.sortBy);
  put('sort_order', o.sortOrder);
  put('cursor', o.cursor);
  return q;
}

/** A tool result in a transcript line: its first lines, abbreviated. */
function abbreviate(text: string, lines = 3, width = 200): string {
  const all = text.replace(/\n+$/, '').split('\n');
  const shown = all.slice(0, lines).map((line) => (line.length > width ? `${line.slice(0, width)}…` : line));
  return shown.join('\n    ') + (all.length > lines ? `\n    … (${all.length - lines} more lines)` : '');
}

/** `value.message` of an open JSON value (event data), if it has one. */
function messageOf(value: unknown): unknown {
  return value !== null && typeof value === 'object' && 'message' in value ? value.message : undefined;
}

/** One conversation block as a transcript line: who said what, which tool with which input, its result. */
function transcriptLine(role: ConversationMessage['role'], block: ContentBlock): string {
  switch (block.type) {
    case 'text':
      return `${role}: ${block.text}`;
    case 'action': {
      const input = block.input;
      if (block.name !== 'setup_command') return `→ ${block.name} ${JSON.stringify(input ?? {})}`;
      return `setup: ${str(input !== null && typeof input === 'object' && 'command' in input ? input.command : undefined)}`;
    }
    case 'action_result': {
      const output = block.output;
      if (block.name === 'setup_command') return `setup ${block.state}${output.exit_code !== undefined && output.exit_code !== null ? ` (exit ${str(output.exit_code)})` : ''}`;
      return `← ${block.name}${block.state === 'failed' ? ' (error)' : ''}: ${abbreviate(str(output.text))}`;
    }
    default: {
      const data = block.data;
      if (block.name === 'output') return abbreviate(str(data.text), 20);
      if (block.name === 'state_changed') {
        const message = str(messageOf(data.status_message));
        return `state: ${data.from ? `${str(data.from)} → ` : ''}${str(data.to)}${message ? ` (${message})` : ''}`;
      }
      if (block.name === 'usage') return `usage: ${str(data.input_tokens)} in / ${str(data.output_tokens)} out tokens, ${str(data.steps)} steps`;
      return `${str(block.name)}: ${str(data.message) || JSON.stringify(data)}`;
    }
  }
}

async function printConversation(ctx: CliContext, runId: string): Promise<void> {
  const conversation = await ctx.client.getConversation(runId);
  if (ctx.out.format === 'json' || ctx.out.format === 'ndjson') return ctx.out.result('', conversation, '');
  for (const step of conversation.steps) {
    for (const message of step.messages) {
      for (const block of message.content) {
        const line = transcriptLine(message.role, block);
        ctx.out.line(ctx.out.format === 'pretty' ? line : `${message.role}\t${block.type}\t${line.replace(/\s+/g, ' ')}`);
      }
    }
  }
}

interface FollowupOptions {
  prompt?: string;
  promptFile?: string;
  follow?: boolean;
}

/** The follow-up's text: `-p`, or `--prompt-file` (`-`: stdin); exactly one of them. */
async function followupText(o: FollowupOptions, stdin: NodeJS.ReadableStream = process.stdin): Promise<string> {
  if (o.prompt !== undefined && o.promptFile !== undefined) throw new UsageError('-p/--prompt and --prompt-file: choose one');
  if (o.prompt === undefined && o.promptFile === undefined) {
    throw new UsageError('-p/--prompt: a follow-up message is required (-p TEXT, or --prompt-file PATH; --prompt-file - reads stdin)');
  }
  let text: string;
  if (o.prompt !== undefined) text = o.prompt;
  else if (o.promptFile === '-') text = await readAll(stdin);
  else {
    try {
      text = readFileSync(o.promptFile ?? '', 'utf8');
    } catch (error) {
      throw new UsageError(`--prompt-file: cannot read ${o.promptFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (text.trim() === '') throw new UsageError(`${o.prompt !== undefined ? '-p/--prompt' : '--prompt-file'}: the follow-up message is empty`);
  return text;
}

/** Where the follow-up went, as a sentence (a delivery this CLI does not know, a newer server's, by its execution). */
function deliveryText(sent: FollowupResponse): string {
  const n = sent.execution;
  const texts: Record<string, string> = {
    with_start: `the agent gets it with the prompt in execution ${n}`,
    running: `it reaches the running agent at its next step in execution ${n}`,
    new_execution: `continues in execution ${n}`,
  };
  return texts[sent.delivery] ?? `execution ${n}`;
}

export function runCommand(name: 'run' | 'task', context: (cmd: Command) => CliContext): Command {
  const run = new Command(name).description(name === 'run' ? 'Inspect and control runs (alias: task)' : 'Alias of "oz run"');

  run
    .command('list')
    .description('List runs, most recently updated first')
    .option('-L, --limit <n>', 'how many runs (1-500)', positiveInt('--limit', 500), 10)
    .option('--state <state>', `only runs in this state (repeatable: ${STATE.choices.join(', ')})`, STATE.repeatable, [])
    .option('--source <source>', `only runs from this source (${SOURCE.choices.join(', ')})`, SOURCE)
    .option('--execution-location <where>', `only runs executed here (${LOCATION.choices.join(', ')})`, LOCATION)
    .option('--environment <id>', 'only runs in this environment')
    .option('--schedule <id>', 'only runs spawned by this schedule')
    .option('--name <name>', 'only runs with this config name')
    .option('--model <id>', 'only runs with this model')
    .option('--creator <uid>', 'only runs created by this user')
    .option('--ancestor-run <id>', 'only runs descending from this run')
    .option('--artifact-type <type>', `only runs that produced this artifact (${ARTIFACT.choices.join(', ')})`, ARTIFACT)
    .option('--skill <spec>', 'only runs of this skill')
    .option('--created-after <time>', 'only runs created after this RFC 3339 time', rfc3339('--created-after'))
    .option('--created-before <time>', 'only runs created before this RFC 3339 time', rfc3339('--created-before'))
    .option('--updated-after <time>', 'only runs updated after this RFC 3339 time', rfc3339('--updated-after'))
    .option('-q, --query <text>', 'search titles and prompts')
    .option('--sort-by <field>', `sort field: ${SORT_BY.choices.join(', ')}`, SORT_BY)
    .option('--sort-order <order>', 'asc or desc', SORT_ORDER)
    .option('--cursor <cursor>', 'continue a previous listing (printed as next_cursor)')
    .action(async (options: ListOptions, cmd: Command) => {
      const ctx = context(cmd);
      const page = await ctx.client.listRuns(listQuery(options));
      ctx.out.list(page.runs, RUN_COLUMNS, page, page.runs, 'No runs.');
      if (ctx.out.format === 'pretty' && page.page_info.has_next_page) ctx.out.line(`More: --cursor ${str(page.page_info.next_cursor)}`);
    });

  run
    .command('get <runId>')
    .description('Show a run')
    .option('--conversation', 'show its conversation instead')
    .option('--follow', 'stream its events live until it ends')
    .option('--network', 'show what its network did instead: hosts contacted, bytes each way, refusals')
    .action(async (runId: string, options: { conversation?: boolean; follow?: boolean; network?: boolean }, cmd: Command) => {
      const ctx = context(cmd);
      if ([options.conversation, options.follow, options.network].filter(Boolean).length > 1) throw new UsageError('--conversation, --follow and --network: choose one');
      if (options.conversation) return printConversation(ctx, runId);
      if (options.network) return printNetwork(ctx, runId);
      if (options.follow) {
        await ctx.client.followRun(runId, { reconnect: true, onEvent: (e) => renderEvent(ctx.out, e) });
        const final = await ctx.client.getRun(runId);
        if (ctx.out.format === 'pretty') ctx.out.line(`Run ${runId} is ${final.state.toLowerCase()}.`);
        return;
      }
      const item = await ctx.client.getRun(runId);
      ctx.out.object(runFields(item), item);
    });

  run
    .command('followup <runId>')
    .description('Send a follow-up message to a run: a waiting run gets it with its prompt, a working agent at its next step, an ended run continues in a new execution')
    .option('-p, --prompt <text>', 'the follow-up message')
    .option('--prompt-file <path>', 'read the message from this file (- for stdin)')
    .option('--follow', "stream the run's events from the follow-up until the execution it lands in ends; exit 1 unless it succeeded")
    .action(async (runId: string, options: FollowupOptions, cmd: Command) => {
      const message = await followupText(options);
      const ctx = context(cmd);
      const sent = await ctx.client.followUp(runId, message);
      const seq = sent.followup.seq;
      ctx.out.result(`Follow-up ${seq} sent to run ${sent.run_id}: ${deliveryText(sent)} (${sent.delivery}).`, sent, `${sent.run_id}\t${seq}\t${sent.execution}\t${sent.delivery}`);
      if (options.follow) {
        // From the follow-up's own event (the server writes it as a user message naming it) to the end.
        await awaitRun(ctx, sent.run_id, true, followupOf(sent.execution, seq));
      }
    });

  run
    .command('cancel <runId>')
    .description('Cancel a run (a waiting run at once; a running one within a second)')
    .action(async (runId: string, _options: unknown, cmd: Command) => {
      const ctx = context(cmd);
      const id = await ctx.client.cancelRun(runId);
      const now = await ctx.client.getRun(runId);
      const pretty = now.state === 'CANCELLED' ? `Cancelled run ${id}.` : `Cancel requested for run ${id}; the worker is stopping it.`;
      ctx.out.result(pretty, { run_id: id, state: now.state }, `${id}\t${now.state}`);
    });

  run
    .command('diff <runId>')
    .description("Print the patch of the run's changes, per repository, as its worker published it (cut at 1 MiB each; the branch holds the rest)")
    .option('--repo <repository>', "only this repository's patch (its URL, or a name it ends with)")
    .action(async (runId: string, options: { repo?: string }, cmd: Command) => {
      const ctx = context(cmd);
      const { diffs } = await ctx.client.getRunDiff(runId);
      const wanted = options.repo;
      const shown = wanted === undefined ? diffs : diffs.filter((d) => d.repository === wanted || d.repository.replace(/\.git$/, '').endsWith(`/${wanted.replace(/\.git$/, '')}`));
      if (wanted !== undefined && shown.length === 0) {
        throw new UsageError(`--repo: the run changed no repository "${wanted}"${diffs.length ? ` (it changed ${diffs.map((d) => d.repository).join(', ')})` : ''}`);
      }
      if (ctx.out.format === 'json' || ctx.out.format === 'ndjson') return ctx.out.json({ diffs: shown });
      if (shown.length === 0) return ctx.out.line('No changes published.');
      for (const d of shown) {
        if (ctx.out.format === 'pretty') {
          ctx.out.line(
            `# ${d.repository} ${d.base.slice(0, 12)}..${d.head.slice(0, 12)} (execution ${d.execution}, ${d.created_at})${d.truncated ? `, cut at 1 MiB of ${d.bytes} bytes` : ''}`,
          );
        }
        ctx.out.line(d.patch.replace(/\n$/, ''));
      }
    });

  const conversation = run.command('conversation').description("A run's conversation");
  conversation
    .command('get <conversationId>')
    .description('Show a conversation (its id is the run id)')
    .action(async (id: string, _options: unknown, cmd: Command) => printConversation(context(cmd), id));

  return run;
}

/** `oz run get --network`: the run's network audit, one row per destination. */
async function printNetwork(ctx: CliContext, runId: string): Promise<void> {
  const audit = await ctx.client.getRunNetwork(runId);
  if (ctx.out.format === 'pretty') {
    ctx.out.line(audit.policy === null ? 'Network: nothing reported yet.' : `Network: ${audit.policy}`);
  }
  const rows = audit.hosts.map((h) => ({ ...h }));
  ctx.out.list(
    rows,
    [
      { header: 'HOST', value: (h) => `${h.host}:${h.port}` },
      { header: 'CONNECTIONS', value: (h) => String(h.connections) },
      { header: 'DENIED', value: (h) => (h.denied > 0 ? `${h.denied} (${h.denied_reason ?? 'refused'})` : '0') },
      { header: 'SENT', value: (h) => formatBytes(h.bytes_sent) },
      { header: 'RECEIVED', value: (h) => formatBytes(h.bytes_received) },
    ],
    audit,
    rows,
    audit.policy === 'on' ? 'No refused destinations (under "on" hosts are not named; the totals follow).' : 'No hosts contacted.',
  );
  const o = audit.other;
  if (ctx.out.format === 'pretty' && (o.connections > 0 || o.denied > 0 || o.bytes_sent > 0 || o.bytes_received > 0)) {
    ctx.out.line(
      `${audit.policy === 'on' ? 'All traffic' : 'Other hosts'}: ${o.connections} connections, ${o.denied} denied, ${formatBytes(o.bytes_sent)} sent, ${formatBytes(o.bytes_received)} received`,
    );
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}
