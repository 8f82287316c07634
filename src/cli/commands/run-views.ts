import type { Json } from '../../client/oz-client.js';
import { cliStateName, isRunState } from '../../core/run-state.js';
import type { Column } from '../output.js';

export const str = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));

export function stateOf(run: Json): string {
  return isRunState(run.state) ? cliStateName(run.state) : str(run.state);
}

export const RUN_COLUMNS: Column<Json>[] = [
  { header: 'ID', value: (r) => str(r.run_id) },
  { header: 'STATE', value: stateOf },
  { header: 'SOURCE', value: (r) => str(r.source) },
  { header: 'CREATED', value: (r) => str(r.created_at) },
  { header: 'TITLE', value: (r) => str(r.title) },
];

export function runFields(run: Json): [string, string][] {
  const config = (run.agent_config ?? {}) as Json;
  const status = run.status_message as Json | undefined;
  const usage = (run.usage ?? {}) as Json;
  const fields: [string, string][] = [
    ['ID', str(run.run_id)],
    ['Title', str(run.title)],
    ['State', stateOf(run)],
    ['Source', str(run.source)],
    ['Prompt', str(run.prompt)],
    ['Environment', str(config.environment_id) || '(none)'],
    ['Harness', str((config.harness as Json | undefined)?.type)],
    ['Model', str(config.model_id) || '(default)'],
    ['Created', str(run.created_at)],
    ['Updated', str(run.updated_at)],
    ['Started', str(run.started_at) || '-'],
    ['Usage', `${str(usage.input_tokens)} in / ${str(usage.output_tokens)} out tokens, ${str(usage.steps)} steps`],
  ];
  if (status) {
    fields.push(['Status', `${str(status.message)}${status.error_code ? ` [${str(status.error_code)}${status.reason ? `/${str(status.reason)}` : ''}]` : ''}`]);
  }
  return fields;
}
