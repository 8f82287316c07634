import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelProviderSettings } from '../core/config.js';
import type { ModelProxyProtocol } from '../agent/harness.js';
import { startModelProxy } from './model-proxy.js';
import type { SocketServer } from './socket-server.js';
import { startSupportServer, type SupportHandlers } from './support-server.js';

export interface RunSocketsInput {
  runId: string;
  /** Where the run's directory is made. */
  root: string;
  /** The run's token: what `oz harness-support` and the agent CLI present. */
  token: string;
  handlers: SupportHandlers;
  /** The harness's model proxy protocol, or null for none. */
  modelProxy: ModelProxyProtocol | null;
  /** The run's keys: the harness's auth secret, else the run's typed secrets; else the worker's. */
  keys: { harnessAuth?: string | undefined; anthropic?: string | undefined; openai?: string | undefined };
  /** Where the harness's own key is to be used (a `codex-api-key` secret's base URL), checked and pinned; else the worker's provider URL. */
  harnessBase?: { url: string; addresses: readonly string[] } | undefined;
  providers: ModelProviderSettings;
  redact: (text: string) => string;
}

/**
 * One run's unix sockets, in a directory of its own that is bound into the
 * sandbox: `sock` (harness-support: artifacts, notes, finish-task) and, for
 * harnesses that run a model client in the sandbox, `model.sock` (the model
 * proxy that swaps the run's token for the real key).
 */
export class RunSockets {
  private support: SocketServer | null = null;
  private modelProxy: SocketServer | null = null;

  private constructor(readonly dir: string) {}

  get hasModelProxy(): boolean {
    return this.modelProxy !== null;
  }

  /** `dir`: an idle sandbox's own directory (bound into it already), taken up by the run's next execution; else a new one. */
  static async start(input: RunSocketsInput, dir?: string): Promise<RunSockets> {
    if (dir === undefined) {
      dir = mkdtempSync(join(input.root, `${input.runId}-`));
      chmodSync(dir, 0o711);
    }
    const sockets = new RunSockets(dir);
    try {
      sockets.support = await startSupportServer(join(dir, 'sock'), input.token, input.handlers);
      if (input.modelProxy) {
        const { providers, keys } = input;
        const withoutV1 = (url: string | undefined, fallback: string): string => (url ?? fallback).replace(/\/v1\/?$/, '');
        const auth = (protocol: ModelProxyProtocol): string | undefined => (input.modelProxy === protocol ? keys.harnessAuth : undefined);
        const harnessBase = (protocol: ModelProxyProtocol) => (input.modelProxy === protocol && keys.harnessAuth !== undefined ? input.harnessBase : undefined);
        sockets.modelProxy = await startModelProxy(
          join(dir, 'model.sock'),
          input.token,
          {
            anthropic: {
              base: withoutV1(harnessBase('anthropic')?.url ?? providers.anthropicBaseUrl, 'https://api.anthropic.com'),
              key: auth('anthropic') ?? keys.anthropic ?? providers.anthropicApiKey,
              header: 'x-api-key',
              pinned: harnessBase('anthropic')?.addresses,
            },
            openai: {
              base: withoutV1(harnessBase('openai')?.url ?? providers.openaiBaseUrl, 'https://api.openai.com'),
              key: auth('openai') ?? keys.openai ?? providers.openaiApiKey,
              header: 'authorization',
              pinned: harnessBase('openai')?.addresses,
            },
          },
          input.redact,
        );
      }
      return sockets;
    } catch (error) {
      await sockets.close();
      throw error;
    }
  }

  /** Stop both servers and remove the directory. Idempotent. */
  async close(): Promise<void> {
    await this.stopServers();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stop both servers, keeping the directory (an idle sandbox's: the next execution serves it again, with its own token). */
  async stopServers(): Promise<void> {
    await this.modelProxy?.close().catch(() => {});
    this.modelProxy = null;
    await this.support?.close().catch(() => {});
    this.support = null;
  }
}
