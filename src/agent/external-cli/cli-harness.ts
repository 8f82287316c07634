import type { RunUsage } from '../../core/run.js';
import type { HarnessInput, HarnessResult } from '../harness.js';
import { workingDir } from '../working-dir.js';

/** The in-sandbox bridge to the model proxy (a worker-provided tool). */
export const MODEL_BRIDGE_TOOL = 'model-bridge.mjs';
const BRIDGE_START_MS = 10_000;
/** A CLI's JSON line longer than this is not parsed (it goes to the output, cut); the sandbox writes that pipe too. */
const MAX_LINE = 4 * 1024 * 1024;
/** A text mapped into the conversation (a tool's output) is cut to this. */
export const MAX_EVENT_TEXT = 64 * 1024;

/** `text` cut to {@link MAX_EVENT_TEXT}, saying so. */
export function capText(text: string): string {
  return text.length > MAX_EVENT_TEXT ? `${text.slice(0, MAX_EVENT_TEXT)}\n[… ${text.length - MAX_EVENT_TEXT} more characters]` : text;
}

/** What a CLI's JSON lines made of the run so far; each harness's mapper fills it. */
export interface CliState {
  summary: string;
  usage: RunUsage;
  /** The CLI said it failed (claude: `is_error`; codex: `turn.failed`). */
  failed: boolean;
  failure: string;
  finished: boolean;
}

export interface CliSpec {
  /** The executable's name: the worker's tool of that name, else the sandbox's PATH. */
  name: 'claude' | 'codex';
  /** What to install, for the missing-CLI message. */
  install: string;
  argv: (bin: string, port: number) => string[];
  env: (port: number, token: string) => Record<string, string>;
  /** One JSON line of the CLI's output, mapped into conversation events and `state`. */
  map: (event: Record<string, unknown>, state: CliState, input: HarnessInput) => void;
}

function failed(message: string, reason: string, state?: CliState): HarnessResult {
  return { ok: false, summary: message, ...(state ? { usage: state.usage } : {}), failure: { state: 'FAILED', message: { message, reason } } };
}

/** The CLI to run: the worker's read-only copy, else one the environment's setup installed. */
async function locate(spec: CliSpec, input: HarnessInput): Promise<string | null> {
  const provided = input.sandbox.toolPaths[spec.name];
  if (provided) return provided;
  let found = '';
  const probe = await input.sandbox.exec(['/bin/sh', '-c', `command -v ${spec.name}`], {
    env: input.env,
    onOutput: (stream, chunk) => (stream === 'stdout' ? (found += chunk.toString()) : undefined),
  });
  return probe.exitCode === 0 && found.trim() ? found.trim() : null;
}

/** Start the bridge from the sandbox's loopback to the model proxy; resolves to its port. */
async function startBridge(input: HarnessInput, socketPath: string): Promise<number> {
  const script = input.sandbox.toolPaths[MODEL_BRIDGE_TOOL];
  if (!script) throw new Error('the model bridge is not provided to this sandbox');
  return new Promise<number>((resolve, reject) => {
    let text = '';
    let ready = false;
    const timer = setTimeout(() => reject(new Error('the model bridge did not start')), BRIDGE_START_MS);
    // Runs until the sandbox ends; its exec settles then (and is ignored).
    input.sandbox
      .exec([input.sandbox.nodePath, script, socketPath], {
        env: { PATH: input.env.PATH ?? '/usr/bin:/bin' },
        onOutput: (stream, chunk) => {
          if (stream !== 'stdout' || ready) return;
          text = (text + chunk.toString()).slice(-200);
          const port = /ready (\d+)/.exec(text)?.[1];
          if (port) {
            ready = true;
            clearTimeout(timer);
            resolve(Number(port));
          }
        },
      })
      .then(
        () => reject(new Error('the model bridge exited')),
        (error: Error) => reject(error),
      )
      .finally(() => clearTimeout(timer));
  });
}

/**
 * Run an agent CLI headlessly in the sandbox (docs/design.md "Harnesses and
 * models"): the prompt on stdin, JSON lines out, each mapped into the
 * conversation; its model traffic goes to the per-run model proxy through the
 * bridge, authenticated by the run's token, so the provider key stays with
 * the worker. It starts in the run's working directory
 * (src/agent/working-dir.ts). The time budget kills it.
 */
export async function runCli(spec: CliSpec, input: HarnessInput): Promise<HarnessResult> {
  const bin = await locate(spec, input);
  if (!bin) {
    return failed(
      `The ${spec.name} CLI is not available in this sandbox: install it in the environment's setup (${spec.install}) or give the worker OZ_${spec.name.toUpperCase()}_BIN.`,
      `${spec.name}_cli_missing`,
    );
  }
  if (!input.modelProxy) return failed(`The ${spec.name} harness needs the model proxy, which this worker did not start.`, 'model_proxy_unavailable');
  const port = await startBridge(input, input.modelProxy.socketPath);
  const state: CliState = { summary: '', usage: { input_tokens: 0, output_tokens: 0, steps: 0 }, failed: false, failure: '', finished: false };
  let pending = '';
  const onLine = (line: string): void => {
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      input.sink.output('stdout', Buffer.from(`${line}\n`));
      return;
    }
    if (event && typeof event === 'object' && !Array.isArray(event)) spec.map(event as Record<string, unknown>, state, input);
  };
  const result = await input.sandbox.exec(spec.argv(bin, port), {
    env: { ...input.env, ...spec.env(port, input.modelProxy.token) },
    cwd: workingDir(input.repoDirs, input.imageWorkingDir),
    stdin: input.prompt,
    timeoutMs: input.budgets.maxTimeMs,
    onOutput: (stream, chunk) => {
      if (stream === 'stderr') return input.sink.output('stderr', chunk);
      pending += chunk.toString();
      if (pending.length > MAX_LINE && !pending.includes('\n')) {
        input.sink.output('stdout', Buffer.from(`${pending.slice(0, 1000)}… [a line of more than ${MAX_LINE} bytes, cut]\n`));
        pending = '';
        return;
      }
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line) onLine(line);
        newline = pending.indexOf('\n');
      }
    },
  });
  if (pending.trim()) onLine(pending.trim());
  input.sink.event('usage', { ...state.usage });
  if (result.timedOut) {
    return {
      ok: false,
      summary: 'time',
      usage: state.usage,
      failure: {
        state: 'FAILED',
        message: {
          message: `The run used its time budget (${Math.round(input.budgets.maxTimeMs / 1000)} s) before ${spec.name} finished.`,
          error_code: 'budget_exceeded',
          reason: 'time_budget_exceeded',
        },
      },
    };
  }
  if (state.failed || result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    return failed(state.failure || state.summary || `${spec.name} ${how}.`, `${spec.name}_failed`, state);
  }
  return { ok: true, summary: state.summary || `${spec.name} finished.`, usage: state.usage };
}
