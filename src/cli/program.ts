import { runHarnessSupport } from '../in-sandbox/harness-support-client.js';
import { Command, CommanderError, Option } from 'commander';
import type { SettingOverrides } from '../core/settings/load.js';
import { choicesOf, plainText, shownDefault, type CommandName, type Setting } from '../core/settings/setting.js';
import { COMMAND_LINE_OPTIONS, SETTINGS, type SettingName } from '../core/settings/table.js';
import { OzClientError } from '../client/client-error.js';
import { isOzError } from '../core/errors.js';
import { OZ_VERSION } from '../core/version.js';
import { agentCommand } from './commands/agent.js';
import { completionsCommand } from './commands/completions.js';
import { environmentCommand } from './commands/environment.js';
import { secretCommand } from './commands/secret.js';
import { bareScheduleMeansCreate, scheduleCommand } from './commands/schedule.js';
import { openCommand } from './commands/open.js';
import { adminCommand, apiKeyCommand, modelCommand, whoamiCommand, workerListCommand, workerTokenCommand } from './commands/identity.js';
import { runCommand } from './commands/run.js';
import { buildContext, type CliContext, type GlobalOptions } from './context.js';
import { applyJq } from './jq.js';
import type { Output } from './output.js';
import { safeWriter } from './safe-text.js';
import { UNAVAILABLE_COMMANDS, unavailableCommand } from './unavailable.js';
import { UsageError } from './usage-error.js';

/** `oz server`'s options: the embedded worker on or off, and the flags of its settings. */
export interface ServerCommandOptions {
  worker: boolean;
  settings: SettingOverrides;
}

/** `oz worker`'s options: its server and token (no settings), and the flags of its settings. */
export interface WorkerCommandOptions {
  server: string;
  /** Deprecated: visible in the process list (src/cli/worker-token.ts). */
  token?: string | undefined;
  tokenFile?: string | undefined;
  allowInsecureHttp?: boolean | undefined;
  settings: SettingOverrides;
}

/** The options of a command made from the settings table, and how to read their values back as overrides. */
interface SettingOptions {
  readonly options: readonly Option[];
  overrides(parsed: Record<string, unknown>): SettingOverrides;
}

/**
 * One option per setting with a flag on `command`; its help names the
 * variable and the default. Defaults are not given to commander: the loader
 * applies them (and so knows a flag from a variable). `choices` adds what
 * the table cannot say (the CLI's output formats).
 */
function settingOptions(command: CommandName, choices: { readonly [N in SettingName]?: readonly string[] } = {}): SettingOptions {
  const made: { name: SettingName; option: Option }[] = [];
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const entry: Setting = SETTINGS[name];
    if (!entry.flag?.on.has(command)) continue;
    const variables = [entry.env, ...(entry.alsoEnv ?? [])].join(' or ');
    const option = new Option(`${entry.flag.name} <${entry.flag.arg}>`, `${plainText(entry.doc)} (env ${variables}; default ${plainText(shownDefault(entry))})`);
    const allowed = choices[name] ?? choicesOf(entry);
    if (allowed) option.choices(allowed);
    // Every value kept, in order; the loader reads them as one comma-separated list.
    if (entry.flag.repeatable) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    made.push({ name, option });
  }
  return {
    options: made.map(({ option }) => option),
    overrides(parsed) {
      const overrides: { [N in SettingName]?: string } = {};
      for (const { name, option } of made) {
        const value = parsed[option.attributeName()];
        if (typeof value === 'string') overrides[name] = value;
        else if (Array.isArray(value)) overrides[name] = value.join(',');
      }
      return overrides;
    },
  };
}

/**
 * The options of `command` that are no setting (src/core/settings/table.ts
 * `COMMAND_LINE_OPTIONS`). Commander checks a mandatory option of every
 * ancestor of the command that runs, so a command with subcommands
 * (`oz worker list`) checks its required options in its own action instead
 * (`requireOptions`).
 */
function commandLineOptions(command: CommandName, { mandatory = true } = {}): Option[] {
  return COMMAND_LINE_OPTIONS.filter((o) => o.on === command).map((o) => {
    const option = new Option(o.arg ? `${o.flag} <${o.arg}>` : o.flag, plainText(o.doc));
    return o.required && mandatory ? option.makeOptionMandatory() : option;
  });
}

/** Refuse, as commander would, when a required option of `command` is missing from `parsed`. */
function requireOptions(cmd: Command, command: CommandName, parsed: Record<string, unknown>): void {
  for (const o of COMMAND_LINE_OPTIONS.filter((o) => o.on === command && o.required)) {
    const option = cmd.options.find((candidate) => candidate.long === o.flag);
    if (option && parsed[option.attributeName()] === undefined) {
      cmd.error(`error: required option '${option.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
    }
  }
}

function addOptions(cmd: Command, options: readonly Option[]): Command {
  for (const option of options) cmd.addOption(option);
  return cmd;
}

/** What the CLI cannot build itself: the composition roots live in src/main. */
export interface ProgramDeps {
  runServer(options: ServerCommandOptions): Promise<void>;
  runWorker(options: WorkerCommandOptions): Promise<void>;
  rotateMasterKey(options: { settings: SettingOverrides }): Promise<void>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const VERSION = OZ_VERSION;

/** The command groups whose commands print a JSON result: each of their commands takes `--jq`. */
const JSON_GROUPS = ['agent', 'run', 'task', 'environment', 'secret', 'schedule', 'api-key', 'admin', 'worker-token', 'worker', 'model', 'whoami', 'open'];
const JQ_HELP = "print the JSON output through a jq filter (implies --output-format json; strings print unquoted), e.g. --jq '.run_id'";

function everyCommand(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(everyCommand)];
}

/** The same dependencies, printing only safe text (src/cli/safe-text.ts): nothing a command writes can forget it. */
function safeDeps(deps: ProgramDeps): ProgramDeps {
  return { ...deps, stdout: safeWriter(deps.stdout), stderr: safeWriter(deps.stderr) };
}

export function buildProgram(unsafeDeps: ProgramDeps): Command {
  const deps = safeDeps(unsafeDeps);
  // No commander choices for --output-format: the context reads Oz's spellings and their aliases (src/cli/parse.ts enumOption).
  const globalSettings = settingOptions('oz');
  const program = addOptions(new Command('oz').description('Oz: open, self-hosted orchestration for cloud coding agents').version(VERSION), [
    ...commandLineOptions('oz'),
    ...globalSettings.options,
  ]);

  // Every command's output, so the values still going through --jq are printed before the process ends.
  const outputs: Output[] = [];
  const context = (cmd: Command): CliContext => {
    const ctx = buildContext(cmd.optsWithGlobals<GlobalOptions>(), deps.stdout, deps.stderr);
    outputs.push(ctx.out);
    return ctx;
  };

  const serverSettings = settingOptions('server');
  const server = addOptions(program.command('server').description('Start the platform: the API and an embedded worker'), [
    ...commandLineOptions('server'),
    ...serverSettings.options,
  ]).action(async (parsed: { worker: boolean }) => deps.runServer({ worker: parsed.worker, settings: serverSettings.overrides(parsed) }));
  const rotationSettings = settingOptions('server rotate-master-key');
  addOptions(
    server
      .command('rotate-master-key')
      .description(
        'Re-wrap every secret under a new master key (OZ_NEW_MASTER_KEY, else a random one), in one transaction. ' +
          'Stop every server of the deployment first. With the key file in the data dir the new key replaces it; ' +
          'with OZ_MASTER_KEY, the new key is printed and you set OZ_MASTER_KEY to it.',
      ),
    [...commandLineOptions('server rotate-master-key'), ...rotationSettings.options],
  ).action(async (parsed: Record<string, unknown>) => deps.rotateMasterKey({ settings: rotationSettings.overrides(parsed) }));

  const workerSettings = settingOptions('worker');
  const worker = addOptions(
    program
      .command('worker')
      .description(
        'Run a standalone worker: claims runs from a server and executes them. ' +
          'Its name and labels (--name, --label) say which routed runs (`oz agent run-cloud --host NAME`) it may take; `oz worker list` shows the workers. ' +
          `The worker token (\`oz worker-token create NAME\`) comes from ${SETTINGS.workerToken.env} or --token-file, never from the command line ` +
          '(which every user of the host can read in the process list).',
      ),
    [...commandLineOptions('worker', { mandatory: false }), ...workerSettings.options],
  ).action(async (parsed: { server?: string; token?: string; tokenFile?: string; allowInsecureHttp?: boolean }, cmd: Command) => {
    requireOptions(cmd, 'worker', parsed);
    await deps.runWorker({
      server: parsed.server ?? '',
      token: parsed.token,
      tokenFile: parsed.tokenFile,
      allowInsecureHttp: parsed.allowInsecureHttp,
      settings: workerSettings.overrides(parsed),
    });
  });
  worker.addCommand(workerListCommand(context));

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
  program.addCommand(openCommand(context));
  program.addCommand(completionsCommand(program));
  program.addCommand(
    unavailableCommand(
      'integration',
      ['i'],
      'Connect Slack, Linear and other integrations',
      'integrations (Slack, Linear, …) need Warp; dispatch runs with `oz agent run-cloud` or the API',
    ),
  );

  for (const cmd of JSON_GROUPS.flatMap((name) => program.commands.filter((c) => c.name() === name)).flatMap(everyCommand)) {
    if (cmd.commands.length === 0 && !UNAVAILABLE_COMMANDS.has(cmd)) cmd.addOption(new Option('--jq <filter>', JQ_HELP));
  }
  // A filter that does not compile is refused before the command does anything (creates a run, say).
  program.hook('preAction', async (_program, action) => {
    const filter = action.opts<{ jq?: string }>().jq;
    if (filter !== undefined) await applyJq(null, filter).catch((error: unknown) => (error instanceof UsageError ? Promise.reject(error) : undefined));
  });
  program.hook('postAction', async () => {
    for (const out of outputs) await out.flush();
  });

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
