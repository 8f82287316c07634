import { runHarnessSupport } from '../in-sandbox/harness-support-client.js';
import { Command, CommanderError, Option } from 'commander';
import { OzClientError } from '../client/client-error.js';
import { isOzError } from '../core/errors.js';
import { agentCommand } from './commands/agent.js';
import { completionsCommand } from './commands/completions.js';
import { environmentCommand } from './commands/environment.js';
import { secretCommand } from './commands/secret.js';
import { bareScheduleMeansCreate, scheduleCommand } from './commands/schedule.js';
import { adminCommand, apiKeyCommand, modelCommand, whoamiCommand, workerTokenCommand } from './commands/identity.js';
import { runCommand } from './commands/run.js';
import { buildContext, type CliContext, type GlobalOptions } from './context.js';
import { OUTPUT_FORMATS } from './output.js';
import { safeWriter } from './safe-text.js';
import { UsageError } from './usage-error.js';

export interface ServerCommandOptions {
  worker: boolean;
  port?: string;
  host?: string;
  dataDir?: string;
  backend: SandboxBackendName;
  cacheDir?: string;
}

export const SANDBOX_BACKENDS = ['bwrap', 'direct'] as const;
export type SandboxBackendName = (typeof SANDBOX_BACKENDS)[number];

const backendOption = (): Option =>
  new Option('--backend <backend>', 'sandbox backend: "bwrap" (bubblewrap jails) or "direct" (no isolation, trusted code only)')
    .choices(SANDBOX_BACKENDS)
    .env('OZ_SANDBOX_BACKEND')
    .default('bwrap');
const cacheDirOption = (): Option => new Option('--cache-dir <dir>', 'repository mirrors (env OZ_CACHE_DIR; default /var/cache/oz as root, else $XDG_CACHE_HOME/oz)');

export interface WorkerCommandOptions {
  server: string;
  /** Deprecated: visible in the process list (src/cli/worker-token.ts). */
  token?: string;
  tokenFile?: string;
  concurrency?: string;
  backend: SandboxBackendName;
  cacheDir?: string;
  drainGraceMs?: string;
  allowInsecureHttp?: boolean;
}

/** What the CLI cannot build itself: the composition roots live in src/main. */
export interface ProgramDeps {
  runServer(options: ServerCommandOptions): Promise<void>;
  runWorker(options: WorkerCommandOptions): Promise<void>;
  rotateMasterKey(options: { dataDir?: string }): Promise<void>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const VERSION = '0.1.0';

function everyCommand(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(everyCommand)];
}

/** The same dependencies, printing only safe text (src/cli/safe-text.ts): nothing a command writes can forget it. */
function safeDeps(deps: ProgramDeps): ProgramDeps {
  return { ...deps, stdout: safeWriter(deps.stdout), stderr: safeWriter(deps.stderr) };
}

export function buildProgram(unsafeDeps: ProgramDeps): Command {
  const deps = safeDeps(unsafeDeps);
  const program = new Command('oz')
    .description('Oz: open, self-hosted orchestration for cloud coding agents')
    .version(VERSION)
    .addOption(new Option('--api-key <key>', 'API key (env WARP_API_KEY; default: the one `oz server` wrote to the CLI config)'))
    .addOption(new Option('--output-format <format>', 'pretty, json, ndjson or text (env WARP_OUTPUT_FORMAT)').choices(OUTPUT_FORMATS))
    .option('--debug', 'trace requests and responses to stderr (keys masked)')
    .option('--server-url <url>', 'the Oz server (env OZ_SERVER_URL; default from the CLI config, else http://127.0.0.1:7420)');

  const context = (cmd: Command): CliContext => buildContext(cmd.optsWithGlobals<GlobalOptions>(), deps.stdout, deps.stderr);

  const server = program
    .command('server')
    .description('Start the platform: the API and an embedded worker')
    .option('--no-worker', 'do not run the embedded worker (scaled deployments)')
    .option('--port <port>', 'port to listen on (env OZ_PORT; default 7420; 0 = any free port)')
    .option('--host <host>', 'address to bind (env OZ_HOST; default 127.0.0.1)')
    .option('--data-dir <dir>', 'embedded store location (env OZ_DATA_DIR; default $XDG_DATA_HOME/oz)')
    .addOption(backendOption())
    .addOption(cacheDirOption())
    .action(async (options: ServerCommandOptions) => deps.runServer(options));
  server
    .command('rotate-master-key')
    .description(
      'Re-wrap every secret under a new master key (OZ_NEW_MASTER_KEY, else a random one), in one transaction. ' +
        'Stop every server of the deployment first. With the key file in the data dir the new key replaces it; ' +
        'with OZ_MASTER_KEY, the new key is printed and you set OZ_MASTER_KEY to it.',
    )
    .option('--data-dir <dir>', 'embedded store location (env OZ_DATA_DIR)')
    .action(async (options: { dataDir?: string }) => deps.rotateMasterKey(options));

  program
    .command('worker')
    .description(
      'Run a standalone worker: claims runs from a server and executes them. ' +
        'The worker token (`oz worker-token create NAME`) comes from OZ_WORKER_TOKEN or --token-file, never from the command line ' +
        '(which every user of the host can read in the process list).',
    )
    .requiredOption('--server <url>', 'the Oz server, e.g. https://oz.example.com')
    .option('--token-file <file>', 'read the worker token from this file (one line; it must not be readable by others: chmod 600)')
    .option('--token <token>', 'deprecated: the worker token itself, visible to every local user in the process list; use OZ_WORKER_TOKEN or --token-file')
    .option('--concurrency <n>', 'runs at once (env OZ_WORKER_CONCURRENCY; default 2)')
    .addOption(backendOption())
    .addOption(cacheDirOption())
    .option('--drain-grace-ms <ms>', 'on SIGTERM, how long running runs may finish (env OZ_DRAIN_GRACE_MS; default 30000)')
    .option('--allow-insecure-http', 'allow a plain-HTTP server URL that is not loopback')
    .action(async (options: WorkerCommandOptions) => deps.runWorker(options));

  program
    .command('harness-support')
    .description('Report to the run this process belongs to, from inside its sandbox (report-artifact, notify-user, finish-task)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]', 'the command and its options (oz harness-support --help)')
    .action(async (args: string[]) => {
      process.exitCode = await runHarnessSupport(args, undefined, { out: deps.stdout, err: deps.stderr });
    });

  program.addCommand(agentCommand(context));
  program.addCommand(runCommand('run', context));
  program.addCommand(runCommand('task', context));
  program.addCommand(environmentCommand(context));
  program.addCommand(secretCommand(context));
  program.addCommand(scheduleCommand(context));
  program.addCommand(apiKeyCommand(context));
  program.addCommand(adminCommand(context));
  program.addCommand(workerTokenCommand(context));
  program.addCommand(modelCommand(context));
  program.addCommand(whoamiCommand(context));
  program.addCommand(completionsCommand(program));

  for (const cmd of everyCommand(program)) {
    cmd.exitOverride().showHelpAfterError('(add --help for usage)');
    cmd.configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr });
  }
  return program;
}

/** Run the CLI; returns the exit code (usage errors 2, failures 1). */
export async function runCli(argv: string[], unsafeDeps: ProgramDeps): Promise<number> {
  // Error messages carry server strings (names, a run's status) too.
  const deps = safeDeps(unsafeDeps);
  const program = buildProgram(deps);
  try {
    await program.parseAsync(bareScheduleMeansCreate(argv));
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof UsageError) {
      deps.stderr(`oz: ${error.message}\n`);
      return 2;
    }
    if (error instanceof OzClientError) {
      const code = error.code ? ` [${error.code}]` : '';
      deps.stderr(`oz: ${error.message}${code}\n`);
      if (error.status === 401) deps.stderr('hint: pass --api-key or set WARP_API_KEY (a local `oz server` writes one to the CLI config)\n');
      return 1;
    }
    deps.stderr(`oz: ${isOzError(error) ? error.message : error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
