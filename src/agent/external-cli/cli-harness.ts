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
  /** The command line: a new session, or (`resume`: its id) the CLI's own resume of that session with a new prompt on stdin. */
  argv: (bin: string, port: number, resume: string | null) => string[];
  /** `home`: the CLI's state directory in the workspace (its sessions travel with the workspace snapshot). */
  env: (port: number, token: string, home: string) => Record<string, string>;
  /** The session id a JSON line names, if it does (claude: `session_id`; codex: `thread.started`'s `thread_id`). */
  sessionOf: (event: Record<string, unknown>) => string | null;
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

/** The CLI's state directory and its last session's id, in the workspace (relative paths). */
const stateDir = (spec: CliSpec): string => `.oz/${spec.name}`;
const sessionFile = (spec: CliSpec): string => `.oz/${spec.name}-session`;

/** The session the run's last turn left (a later execution, or the next follow-up), or null. */
async function lastSession(spec: CliSpec, input: HarnessInput): Promise<string | null> {
  let text = '';
  const read = await input.sandbox.exec(['/bin/sh', '-c', 'cat -- "$1" 2>/dev/null', 'oz-session', sessionFile(spec)], {
    env: { PATH: input.env.PATH ?? '/usr/bin:/bin' },
    onOutput: (stream, chunk) => (stream === 'stdout' ? (text += chunk.toString()) : undefined),
  });
  const id = text.trim();
  return read.exitCode === 0 && /^[A-Za-z0-9._:-]{1,200}$/.test(id) ? id : null;
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
  const home = `${input.sandbox.workspacePath}/${stateDir(spec)}`;
  await input.sandbox.writeFile(`${stateDir(spec)}/.keep`, ''); // through the init: no mkdir needed in the image
  let session = input.continuing ? await lastSession(spec, input) : null;
  // A later execution resumes the run's session; each follow-up that arrives during a turn is the next turn, resumed the same way.
  for (let prompt = input.prompt; ;) {
    const turn = await runTurn(spec, input, state, { bin, port, prompt, home, resume: session });
    if (turn.session && turn.session !== session) {
      session = turn.session;
      await input.sandbox.writeFile(sessionFile(spec), `${session}\n`).catch(() => {});
    }
    if (turn.result) return turn.result;
    const more = input.followups?.take() ?? [];
    if (more.length === 0 || input.signal.aborted) break;
    prompt = more.join('\n\n');
  }
  return { ok: true, summary: state.summary || `${spec.name} finished.`, usage: state.usage };
}

interface TurnInput {
  bin: string;
  port: number;
  prompt: string;
  home: string;
  resume: string | null;
}

/** One turn of the CLI (one process): a result when it ended the run (failed, out of time), else null; and the session it named. */
async function runTurn(spec: CliSpec, input: HarnessInput, state: CliState, turn: TurnInput): Promise<{ result: HarnessResult | null; session: string | null }> {
  let session: string | null = null;
  state.failed = false;
  state.failure = '';
  let pending = '';
  const onLine = (line: string): void => {
    let event: unknown;
    try {
      event = JSON.parse(line);
    } catch {
      input.sink.output('stdout', Buffer.from(`${line}\n`));
      return;
    }
    if (!event || typeof event !== 'object' || Array.isArray(event)) return;
    session = spec.sessionOf(event as Record<string, unknown>) ?? session;
    spec.map(event as Record<string, unknown>, state, input);
  };
  const result = await input.sandbox.exec(spec.argv(turn.bin, turn.port, turn.resume), {
    env: { ...input.env, ...spec.env(turn.port, (input.modelProxy as { token: string }).token, turn.home) },
    cwd: workingDir(input.repoDirs, input.imageWorkingDir),
    stdin: turn.prompt,
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
      session,
      result: {
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
      },
    };
  }
  if (state.failed || result.exitCode !== 0) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    return { session, result: failed(state.failure || state.summary || `${spec.name} ${how}.`, `${spec.name}_failed`, state) };
  }
  return { session, result: null };
}
