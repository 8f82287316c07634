/**
 * `oz harness-support`: how an agent inside a sandbox reports to its run
 * (docs/design.md "Sandboxes": a per-run unix socket bound into the sandbox,
 * authenticated by a run-scoped token), so it works with network off.
 *
 * This file is copied into every bwrap sandbox on its own and run by the
 * host's node (`/oz/bin/oz` → `/oz/harness-support.mjs`), where there is no
 * node_modules: it imports only Node's built-ins, and parses its few flags by
 * hand for that reason. The host CLI runs the same code.
 */
import { request } from 'node:http';
import { pathToFileURL } from 'node:url';

/** The variables the worker sets in every process of a run. */
export const SUPPORT_SOCKET_ENV = 'OZ_SUPPORT_SOCKET';
export const SUPPORT_TOKEN_ENV = 'OZ_SUPPORT_TOKEN';

export const SUPPORT_ROUTES = {
  ping: '/v1/ping',
  artifact: '/v1/artifacts',
  notify: '/v1/notify',
  finish: '/v1/finish',
  reference: '/v1/references',
  shutdown: '/v1/shutdown',
} as const;

/** The run this process belongs to, as the worker sets it. */
const RUN_ID_ENV = 'OZ_RUN_ID';

export const HARNESS_SUPPORT_USAGE = `Usage: oz harness-support [--run-id ID] <command> [options]

Report to the run this process belongs to (inside an Oz sandbox). --run-id (or
OZ_RUN_ID) names that run; it must be the run of this sandbox.

Commands:
  ping                                                     check that the run answers
  report-artifact pull-request --url URL --branch BRANCH   record a pull request the agent opened
  report-external-reference --url URL --reference-type T   record a link to something outside
      [--title TEXT] [--metadata JSON]                     (an issue, a build, a document)
  notify-user --message TEXT                               a note on the run for its user
  finish-task --status success|failure --summary TEXT      how the task ended, and its summary
  report-shutdown [--error-category C] [--error-message M] the harness is exiting; with an error,
                                                           the run fails with it
`;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

class UsageError extends Error {}

/** `--name value` (or `--name=value`) pairs; every flag must be known and given once, the required ones given. */
function flags(args: readonly string[], required: readonly string[], optional: readonly string[] = []): Record<string, string> {
  const allowed = [...required, ...optional];
  const values: Record<string, string> = {};
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] as string;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const name = flag.replace(/^--/, '');
    if (!flag.startsWith('--') || !allowed.includes(name)) {
      throw new UsageError(allowed.length === 0 ? `unexpected argument ${arg}` : `unknown option ${flag} (allowed: ${allowed.map((a) => `--${a}`).join(', ')})`);
    }
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`${flag}: a value is required`);
    if (name in values) throw new UsageError(`${flag}: given twice`);
    values[name] = value;
  }
  for (const name of required) if (!(name in values)) throw new UsageError(`--${name} is required`);
  return values;
}

/** Oz's global `--run-id ID` (before the command), checked against the run of this sandbox. */
function takeRunId(args: readonly string[], env: Record<string, string | undefined>): readonly string[] {
  let rest = args;
  let given: string | undefined;
  while (rest[0] === '--run-id' || rest[0]?.startsWith('--run-id=')) {
    const arg = rest[0];
    given = arg === '--run-id' ? rest[1] : arg.slice('--run-id='.length);
    if (!given) throw new UsageError('--run-id: a value is required');
    rest = rest.slice(arg === '--run-id' ? 2 : 1);
  }
  const own = env[RUN_ID_ENV];
  if (given !== undefined && own && given !== own) throw new UsageError(`--run-id: this process belongs to run ${own}, not ${given}`);
  return rest;
}

function parseMetadata(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError('--metadata: must be a JSON object (e.g. \'{"build":"42"}\')');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--metadata: must be a JSON object, not an array or a single value');
  return value as Record<string, unknown>;
}

/** What to send for a command line, or a usage error. */
function parse(args: readonly string[]): { route: string; body: Record<string, unknown> } {
  const [command, ...rest] = args;
  switch (command) {
    case 'report-artifact': {
      const [kind, ...options] = rest;
      if (kind !== 'pull-request') throw new UsageError(`report-artifact: the artifact type must be pull-request (got ${kind ?? 'nothing'})`);
      return { route: SUPPORT_ROUTES.artifact, body: { type: 'pull-request', ...flags(options, ['url', 'branch']) } };
    }
    case 'ping':
      return { route: SUPPORT_ROUTES.ping, body: flags(rest, []) };
    case 'report-external-reference': {
      const { metadata, ...body } = flags(rest, ['url', 'reference-type'], ['title', 'metadata']);
      return { route: SUPPORT_ROUTES.reference, body: { ...body, ...(metadata !== undefined ? { metadata: parseMetadata(metadata) } : {}) } };
    }
    case 'report-shutdown':
      return { route: SUPPORT_ROUTES.shutdown, body: flags(rest, [], ['error-category', 'error-message']) };
    case 'notify-user':
      return { route: SUPPORT_ROUTES.notify, body: flags(rest, ['message']) };
    case 'finish-task': {
      const body = flags(rest, ['status', 'summary']);
      if (body.status !== 'success' && body.status !== 'failure') throw new UsageError(`--status: must be success or failure (got ${body.status})`);
      return { route: SUPPORT_ROUTES.finish, body };
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'a command is required');
  }
}

function post(socketPath: string, token: string, path: string, body: unknown): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      {
        socketPath,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: `Bearer ${token}` },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('the run did not answer in 30 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Run one command; resolves to the exit code (0 done, 1 refused or unreachable, 2 usage). */
export async function runHarnessSupport(
  args: readonly string[],
  env: Record<string, string | undefined> = process.env,
  io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
): Promise<number> {
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
    io.out(HARNESS_SUPPORT_USAGE);
    return args.length === 0 ? 2 : 0;
  }
  let call: { route: string; body: Record<string, unknown> };
  try {
    call = parse(takeRunId(args, env));
  } catch (error) {
    io.err(`oz harness-support: ${(error as Error).message}\n\n${HARNESS_SUPPORT_USAGE}`);
    return 2;
  }
  const socket = env[SUPPORT_SOCKET_ENV];
  const token = env[SUPPORT_TOKEN_ENV];
  if (!socket || !token) {
    io.err(`oz harness-support: ${SUPPORT_SOCKET_ENV} and ${SUPPORT_TOKEN_ENV} are not set: this only works inside an Oz run\n`);
    return 1;
  }
  try {
    const { status, text } = await post(socket, token, call.route, call.body);
    if (status === 200) {
      if (call.route === SUPPORT_ROUTES.ping) io.out('ok\n');
      return 0;
    }
    let detail = text;
    try {
      detail = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      // Not JSON: print it as it is.
    }
    io.err(`oz harness-support: the run refused it (${status}): ${detail}\n`);
    return status === 400 ? 2 : 1;
  } catch (error) {
    io.err(`oz harness-support: cannot reach the run at ${socket}: ${(error as Error).message}\n`);
    return 1;
  }
}

// Run as the sandbox's `oz` (a file of its own): `oz harness-support …` is all it does.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'harness-support') {
    void runHarnessSupport(rest).then((code) => (process.exitCode = code));
  } else {
    process.stderr.write(`oz: inside a sandbox only \`oz harness-support\` is available${command ? ` (not ${command})` : ''}\n\n${HARNESS_SUPPORT_USAGE}`);
    process.exitCode = 2;
  }
}
