import { Command, CommanderError } from 'commander';
import { loadConfig } from '../core/config.js';
import { isOzError } from '../core/errors.js';
import { openStore } from './open-store.js';

/**
 * The `oz` command line. Usage errors exit 2, failures 1 (commander's
 * `exitOverride` turns its own exits into exceptions handled below).
 */
export function buildProgram(): Command {
  const program = new Command('oz')
    .description('Oz: open, self-hosted orchestration for cloud coding agents')
    .version('0.1.0')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('server')
    .description('Start the platform: API server, scheduler and an embedded worker')
    .option('--data-dir <dir>', 'where the embedded store lives (env OZ_DATA_DIR; default $XDG_DATA_HOME/oz)')
    .action(async (options: { dataDir?: string }) => {
      const config = loadConfig({ ...(options.dataDir ? { dataDir: options.dataDir } : {}) });
      const store = await openStore(config);
      const where = config.databaseUrl ? 'PostgreSQL' : `SQLite in ${config.dataDir}`;
      await store.close();
      process.stderr.write(
        `oz server: the store (${where}) is migrated and ready, but the API server is not built yet.\n`,
      );
      process.exitCode = 1;
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with exit code 0.
      process.exitCode = error.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`oz: ${isOzError(error) ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv);
