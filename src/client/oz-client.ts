import type { SuccessResponse } from '../api/common.js';
import type { ConversationResponse } from '../api/conversation.js';
import type { CreateEnvironmentInput, EnvironmentItem, ListEnvironmentsResponse, PatchEnvironmentInput } from '../api/environments.js';
import type {
  CreatedApiKey,
  CreatedWorkerToken,
  CreateTeamInput,
  CreateUserInput,
  CreateWorkerTokenInput,
  ExpireApiKeyResponse,
  ListApiKeysResponse,
  ListWorkersResponse,
  ListTeamsResponse,
  ListUsersResponse,
  ListWorkerTokensResponse,
  MeResponse,
  NewKeyInput,
  RevokeWorkerTokenResponse,
  TeamItem,
  UserItem,
} from '../api/identity.js';
import type { ListModelsResponse } from '../api/models.js';
import { parseProblem } from '../api/problem.js';
import type { RunAgentRequestInput } from '../api/run-requests.js';
import type { RunEventMessage, RunEventsEnd } from '../api/run-events.js';
import type { FollowupResponse, ListRunsResponse, RunAgentResponse, RunDiffResponse, RunNetworkResponse, RunItem } from '../api/runs.js';
import type { CreateLoginLinkInput, LoginLink, LoginLinkInfo, PeekLoginLinkInput, SignInInput, WebSession } from '../api/web.js';
import type { CreateScheduleInput, ListSchedulesResponse, ScheduleItem, UpdateScheduleInput } from '../api/schedules.js';
import type { CreateSecretInput, ListSecretsResponse, PatchSecretInput, SecretItem } from '../api/secrets.js';
import { OzClientError } from './client-error.js';
import { readSse } from './sse-reader.js';

export interface OzClientOptions {
  serverUrl: string;
  apiKey: string | null;
  /** Sent as X-Oz-Client so runs record their source (CLI vs API). */
  client?: 'cli' | 'sdk';
  /** Request/response tracing (the CLI's --debug); the key is masked. */
  trace?: (line: string) => void;
  fetch?: typeof fetch;
  /** Headers sent with every request, asked each time (the dashboard's CSRF token). */
  headers?: () => Record<string, string>;
}

export interface FollowOptions {
  after?: number;
  signal?: AbortSignal;
  onEvent: (event: RunEventMessage) => void;
  /** Reconnect after a dropped connection (resumes with Last-Event-ID). */
  reconnect?: boolean;
}

/** Fields whose values `--debug` never prints: secret values, shown-once keys and tokens. */
const SECRET_FIELDS = new Set(['value', 'key', 'token', 'api_key', 'login_token', 'csrf_token']);

function maskSecrets(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (SECRET_FIELDS.has(key)) return '***';
  // A login link's token rides in its fragment.
  return key === 'url' && value.includes('/login#') ? value.replace(/#.*/, '#***') : value;
}

function traceText(text: string): string {
  let shown = text;
  try {
    shown = JSON.stringify(JSON.parse(text), maskSecrets);
  } catch {
    // Not JSON: as it is.
  }
  return shown.length > 2000 ? `${shown.slice(0, 2000)}…` : shown;
}

/**
 * The typed HTTP client for the Oz API, used by the CLI. Its methods take and
 * return the contract's types (src/api): the server encodes every answer
 * through the same schemas, so a body is trusted to be what its type says.
 */
export class OzClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: OzClientOptions) {
    this.base = options.serverUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      accept: 'application/json',
      ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      ...(this.options.client ? { 'x-oz-client': this.options.client } : {}),
      ...this.options.headers?.(),
      ...extra,
    };
  }

  private async request<T>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    const url = `${this.base}${path}`;
    const headers = this.headers(body === undefined ? extraHeaders : { 'content-type': 'application/json', ...extraHeaders });
    this.options.trace?.(`> ${method} ${url}${body === undefined ? '' : ` ${JSON.stringify(body, maskSecrets)}`} (authorization: ${this.options.apiKey ? 'Bearer ***' : 'none'})`);
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    } catch (error) {
      throw new OzClientError(`cannot reach the Oz server at ${this.base}: ${String((error as Error).cause ?? (error as Error).message)}`, null, null);
    }
    const text = await response.text();
    this.options.trace?.(`< ${response.status} ${traceText(text)}`);
    if (!response.ok) {
      const problem = parseProblem(response.status, text);
      throw new OzClientError(problem.detail ?? `HTTP ${response.status} ${response.statusText}`, response.status, problem);
    }
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    return parsed as T;
  }

  get api(): string {
    return '/api/v1';
  }

  // Runs
  createRun(body: RunAgentRequestInput, idempotencyKey?: string): Promise<RunAgentResponse> {
    return this.request('POST', `${this.api}/agent/runs`, body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }
  listRuns(query: URLSearchParams): Promise<ListRunsResponse> {
    const qs = query.toString();
    return this.request('GET', `${this.api}/agent/runs${qs ? `?${qs}` : ''}`);
  }
  getRun(id: string): Promise<RunItem> {
    return this.request('GET', `${this.api}/agent/runs/${encodeURIComponent(id)}`);
  }
  getRunDiff(id: string): Promise<RunDiffResponse> {
    return this.request('GET', `${this.api}/agent/runs/${encodeURIComponent(id)}/diff`);
  }
  getRunNetwork(id: string): Promise<RunNetworkResponse> {
    return this.request('GET', `${this.api}/agent/runs/${encodeURIComponent(id)}/network`);
  }
  getConversation(id: string): Promise<ConversationResponse> {
    return this.request('GET', `${this.api}/agent/conversations/${encodeURIComponent(id)}`);
  }
  /** The run's id. */
  cancelRun(id: string): Promise<string> {
    return this.request('POST', `${this.api}/agent/runs/${encodeURIComponent(id)}/cancel`);
  }

  /** Send a follow-up message to a run (docs/api.md): with its start, to the working agent, or as its next execution. */
  followUp(id: string, message: string): Promise<FollowupResponse> {
    return this.request('POST', `${this.api}/agent/runs/${encodeURIComponent(id)}/followups`, { message });
  }

  /**
   * Follow a run's events until the stream's `end` event (the run is terminal).
   * On a dropped connection it reconnects with Last-Event-ID, so nothing is
   * lost or repeated. Returns the run's final state.
   */
  async followRun(id: string, options: FollowOptions): Promise<string | null> {
    let after = options.after ?? 0;
    for (let attempt = 0; ; attempt++) {
      const url = `${this.base}${this.api}/agent/runs/${encodeURIComponent(id)}/events`;
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          headers: this.headers({ accept: 'text/event-stream', 'last-event-id': String(after) }),
          ...(options.signal ? { signal: options.signal } : {}),
        });
      } catch (error) {
        if (options.signal?.aborted) return null;
        if (options.reconnect && attempt < 30) {
          await new Promise((r) => setTimeout(r, 1000));
          continue;
        }
        throw new OzClientError(`cannot reach the Oz server at ${this.base}: ${(error as Error).message}`, null, null);
      }
      if (!response.ok || !response.body) {
        const problem = parseProblem(response.status, await response.text());
        throw new OzClientError(problem.detail ?? `HTTP ${response.status}`, response.status, problem);
      }
      try {
        for await (const message of readSse(response.body)) {
          if (message.event === 'end') return (JSON.parse(message.data) as RunEventsEnd).state;
          const event = JSON.parse(message.data) as RunEventMessage;
          if (event.seq <= after) continue;
          after = event.seq;
          options.onEvent(event);
        }
      } catch (error) {
        if (options.signal?.aborted) return null;
        if (!options.reconnect) throw error;
      }
      if (options.signal?.aborted) return null;
      if (!options.reconnect) return null;
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  // Schedules
  listSchedules(): Promise<ListSchedulesResponse> {
    return this.request('GET', `${this.api}/agent/schedules`);
  }
  createSchedule(body: CreateScheduleInput): Promise<ScheduleItem> {
    return this.request('POST', `${this.api}/agent/schedules`, body);
  }
  getSchedule(id: string): Promise<ScheduleItem> {
    return this.request('GET', `${this.api}/agent/schedules/${encodeURIComponent(id)}`);
  }
  replaceSchedule(id: string, body: UpdateScheduleInput): Promise<ScheduleItem> {
    return this.request('PUT', `${this.api}/agent/schedules/${encodeURIComponent(id)}`, body);
  }
  deleteSchedule(id: string): Promise<SuccessResponse> {
    return this.request('DELETE', `${this.api}/agent/schedules/${encodeURIComponent(id)}`);
  }
  scheduleAction(id: string, action: 'pause' | 'resume'): Promise<ScheduleItem>;
  scheduleAction(id: string, action: 'run-now'): Promise<RunAgentResponse>;
  scheduleAction(id: string, action: 'pause' | 'resume' | 'run-now'): Promise<ScheduleItem | RunAgentResponse> {
    return this.request('POST', `${this.api}/agent/schedules/${encodeURIComponent(id)}/${action}`);
  }

  // Secrets
  listSecrets(): Promise<ListSecretsResponse> {
    return this.request('GET', `${this.api}/secrets`);
  }
  createSecret(body: CreateSecretInput): Promise<SecretItem> {
    return this.request('POST', `${this.api}/secrets`, body);
  }
  updateSecret(name: string, scope: 'team' | 'personal', body: PatchSecretInput): Promise<SecretItem> {
    return this.request('PATCH', `${this.api}/secrets/${encodeURIComponent(name)}?scope=${scope}`, body);
  }
  /** 204: nothing comes back. */
  deleteSecret(name: string, scope: 'team' | 'personal'): Promise<void> {
    return this.request('DELETE', `${this.api}/secrets/${encodeURIComponent(name)}?scope=${scope}`);
  }

  // Environments
  listEnvironments(): Promise<ListEnvironmentsResponse> {
    return this.request('GET', `${this.api}/agent/environments`);
  }
  createEnvironment(body: CreateEnvironmentInput): Promise<EnvironmentItem> {
    return this.request('POST', `${this.api}/agent/environments`, body);
  }
  getEnvironment(id: string): Promise<EnvironmentItem> {
    return this.request('GET', `${this.api}/agent/environments/${encodeURIComponent(id)}`);
  }
  updateEnvironment(id: string, body: PatchEnvironmentInput): Promise<EnvironmentItem> {
    return this.request('PATCH', `${this.api}/agent/environments/${encodeURIComponent(id)}`, body);
  }
  deleteEnvironment(id: string): Promise<SuccessResponse> {
    return this.request('DELETE', `${this.api}/agent/environments/${encodeURIComponent(id)}`);
  }

  // Models, identity, admin
  listModels(): Promise<ListModelsResponse> {
    return this.request('GET', `${this.api}/agent/models`);
  }
  whoami(): Promise<MeResponse> {
    return this.request('GET', `${this.api}/me`);
  }
  createApiKey(body: NewKeyInput): Promise<CreatedApiKey> {
    return this.request('POST', `${this.api}/api-keys`, body);
  }
  listApiKeys(): Promise<ListApiKeysResponse> {
    return this.request('GET', `${this.api}/api-keys`);
  }
  expireApiKey(id: string): Promise<ExpireApiKeyResponse> {
    return this.request('POST', `${this.api}/api-keys/${encodeURIComponent(id)}/expire`);
  }
  createTeam(body: CreateTeamInput): Promise<TeamItem> {
    return this.request('POST', `${this.api}/admin/teams`, body);
  }
  createUser(body: CreateUserInput): Promise<UserItem> {
    return this.request('POST', `${this.api}/admin/users`, body);
  }
  createUserApiKey(user: string, body: NewKeyInput): Promise<CreatedApiKey> {
    return this.request('POST', `${this.api}/admin/users/${encodeURIComponent(user)}/api-keys`, body);
  }
  createWorkerToken(body: CreateWorkerTokenInput): Promise<CreatedWorkerToken> {
    return this.request('POST', `${this.api}/worker-tokens`, body);
  }
  listWorkerTokens(): Promise<ListWorkerTokensResponse> {
    return this.request('GET', `${this.api}/worker-tokens`);
  }
  revokeWorkerToken(id: string): Promise<RevokeWorkerTokenResponse> {
    return this.request('POST', `${this.api}/worker-tokens/${encodeURIComponent(id)}/revoke`);
  }
  listWorkers(): Promise<ListWorkersResponse> {
    return this.request('GET', `${this.api}/admin/workers`);
  }
  listTeams(): Promise<ListTeamsResponse> {
    return this.request('GET', `${this.api}/admin/teams`);
  }
  listUsers(team?: string): Promise<ListUsersResponse> {
    return this.request('GET', `${this.api}/admin/users${team === undefined ? '' : `?team=${encodeURIComponent(team)}`}`);
  }

  // The dashboard's session (docs/dashboard.md)
  signIn(body: SignInInput): Promise<WebSession> {
    return this.request('POST', `${this.api}/web/session`, body);
  }
  webSession(): Promise<WebSession> {
    return this.request('GET', `${this.api}/web/session`);
  }
  signOut(): Promise<{ signed_out: boolean }> {
    return this.request('DELETE', `${this.api}/web/session`);
  }
  peekLoginLink(body: PeekLoginLinkInput): Promise<LoginLinkInfo> {
    return this.request('POST', `${this.api}/web/login-links/peek`, body);
  }
  createLoginLink(body: CreateLoginLinkInput): Promise<LoginLink> {
    return this.request('POST', `${this.api}/web/login-links`, body);
  }
}
