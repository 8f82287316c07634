import type { ExecutionItem, RunItem, RunStatusMessageItem } from '../../api/runs.js';
import { cliStateName, isRunState } from '../../core/run-state.js';
import type { Column } from '../output.js';

export const str = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));

/** The CLI's name of the state; a state this CLI does not know (a newer server's) as it came. */
export function stateOf(run: Pick<RunItem, 'state'>): string {
  return isRunState(run.state) ? cliStateName(run.state) : str(run.state);
}

export const RUN_COLUMNS: Column<RunItem>[] = [
  { header: 'ID', value: (r) => r.run_id },
  { header: 'STATE', value: stateOf },
  { header: 'SOURCE', value: (r) => r.source },
  { header: 'CREATED', value: (r) => r.created_at },
  { header: 'TITLE', value: (r) => r.title },
];

/** A status message with its error code and reason: `Budget exceeded [budget_exceeded/max_steps]`, `… [harness_failed]`. */
function statusText(status: RunStatusMessageItem): string {
  const why = [status.error_code, status.reason].filter((part) => part !== undefined && part !== '').join('/');
  return `${status.message}${why ? ` [${why}]` : ''}`;
}

/** One execution on one line: its state, its worker, when it started and ended, and how it ended. */
export function executionLine(e: ExecutionItem): string {
  const worker = e.worker ? `${e.worker.name ?? '(unnamed)'} (${e.worker.id})` : 'no worker yet';
  const ended = e.ended_at ?? (e.started_at ? 'running' : '');
  const times = e.started_at ? `${e.started_at} → ${ended}` : `not started${e.ended_at ? `, ended ${e.ended_at}` : ''}`;
  return `${stateOf(e)}, ${worker}, ${times}${e.status_message ? `: ${statusText(e.status_message)}` : ''}`;
}

export function runFields(run: RunItem): [string, string][] {
  const config = run.agent_config;
  const status = run.status_message;
  const usage = run.usage;
  const fields: [string, string][] = [
    ['ID', run.run_id],
    ['Title', run.title],
    ['State', stateOf(run)],
    ['Source', run.source],
    ['Prompt', run.prompt],
    ['Environment', str(config.environment_id) || '(none)'],
    ['Harness', config.harness.type],
    ['Model', str(config.model_id) || '(default)'],
    ['Host', str(config.worker_host) || '(any worker)'],
    ['Worker', run.worker ? `${run.worker.name ?? '(unnamed)'} (${run.worker.id})` : '-'],
    ['Created', run.created_at],
    ['Updated', run.updated_at],
    ['Started', str(run.started_at) || '-'],
    ['Usage', `${usage.input_tokens} in / ${usage.output_tokens} out tokens, ${usage.steps} steps`],
  ];
  if (status) fields.push(['Status', statusText(status)]);
  // A run a follow-up continued: each execution on its line (one execution is the run's own fields above).
  const executions = run.executions;
  if (executions.length > 1) {
    for (const e of executions) fields.push([`Execution ${e.number}`, executionLine(e)]);
  }
  return fields;
}
