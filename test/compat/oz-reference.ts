/**
 * What Oz publishes, copied here so the conformance test needs nothing outside
 * the repository: the operations of its OpenAPI document ("Oz Agent API"
 * 1.0.0, paths relative to /api/v1) as method, path and operationId, and the
 * command paths of its `oz` CLI (with our additions) that the conformance
 * table in docs/api.md must cover. Update both when Oz publishes a new version.
 */
export type SpecOperation = readonly [method: string, path: string, operationId: string];

/** Every operation of the spec, in the spec's order (`listAgents` is the operationId of two paths there). */
export const SPEC_OPERATIONS: readonly SpecOperation[] = [
  ['GET', '/agent', 'listAgents'],
  ['GET', '/agent/runs/{runId}/transcript', 'getRunTranscript'],
  ['POST', '/agent/run', 'runAgent'],
  ['POST', '/agent/runs', 'createRun'],
  ['GET', '/agent/runs', 'listRuns'],
  ['GET', '/agent/runs/{runId}', 'getRun'],
  ['GET', '/agent/runs/{runId}/conversation', 'getRunConversation'],
  ['POST', '/agent/runs/{runId}/cancel', 'cancelRun'],
  ['GET', '/agent/conversations/{conversation_id}', 'getConversation'],
  ['POST', '/agent/messages', 'sendAgentMessage'],
  ['GET', '/agent/messages/{runId}', 'listAgentMessages'],
  ['POST', '/agent/messages/{messageId}/read', 'readAgentMessage'],
  ['POST', '/agent/messages/{messageId}/delivered', 'markAgentMessageDelivered'],
  ['GET', '/agent/events', 'pollAgentEvents'],
  ['POST', '/agent/events/{runId}', 'reportAgentEvent'],
  ['POST', '/agent/schedules', 'createScheduledAgent'],
  ['GET', '/agent/schedules', 'listScheduledAgents'],
  ['GET', '/agent/schedules/{scheduleId}', 'getScheduledAgent'],
  ['PUT', '/agent/schedules/{scheduleId}', 'updateScheduledAgent'],
  ['DELETE', '/agent/schedules/{scheduleId}', 'deleteScheduledAgent'],
  ['POST', '/agent/schedules/{scheduleId}/pause', 'pauseScheduledAgent'],
  ['POST', '/agent/schedules/{scheduleId}/resume', 'resumeScheduledAgent'],
  ['GET', '/agent/environments', 'listEnvironments'],
  ['GET', '/agent/models', 'listModels'],
  ['GET', '/agent/artifacts/{artifactUid}', 'getArtifact'],
  ['POST', '/agent/identities', 'createAgent'],
  ['GET', '/agent/identities', 'listAgents'],
  ['PUT', '/agent/identities/{uid}', 'updateAgent'],
  ['DELETE', '/agent/identities/{uid}', 'deleteAgent'],
  ['GET', '/agent/sessions/{sessionUuid}/redirect', 'getSessionRedirect'],
];

/** Every command path of Oz's command tree, with the harness-support commands an agent calls inside a run. */
export const OZ_COMMANDS: readonly string[] = [
  'oz agent run-cloud',
  'oz agent run',
  'oz run list',
  'oz run get',
  'oz run cancel',
  'oz run conversation get',
  'oz environment create',
  'oz environment list',
  'oz environment get',
  'oz environment update',
  'oz environment delete',
  'oz schedule create',
  'oz schedule list',
  'oz schedule get',
  'oz schedule update',
  'oz schedule pause',
  'oz schedule unpause',
  'oz schedule delete',
  'oz secret create',
  'oz secret update',
  'oz secret delete',
  'oz secret list',
  'oz api-key create',
  'oz api-key list',
  'oz api-key expire',
  'oz model list',
  'oz whoami',
  'oz completions',
  'oz harness-support report-artifact',
  'oz harness-support notify-user',
  'oz harness-support finish-task',
];

/** The commands the reference adds as ours (Oz has no such command). */
export const OUR_REFERENCE_COMMANDS: readonly string[] = [
  'oz schedule run-now',
  'oz admin team create',
  'oz admin user create',
  'oz worker-token create',
  'oz worker-token list',
  'oz worker-token revoke',
  'oz server',
  'oz worker',
];

export const REFERENCE_COMMANDS: readonly string[] = [...OZ_COMMANDS, ...OUR_REFERENCE_COMMANDS];

/** The reference's aliases: a path prefix and the prefix it stands for. */
export const REFERENCE_ALIASES: readonly (readonly [alias: string, of: string])[] = [
  ['oz agent ra', 'oz agent run-cloud'],
  ['oz agent r', 'oz agent run'],
  ['oz task', 'oz run'],
  ['oz e', 'oz environment'],
  ['oz schedule resume', 'oz schedule unpause'],
];
