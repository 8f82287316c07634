import { Command } from 'commander';
import { OzClientError } from '../client/client-error.js';

/**
 * What Oz's CLI offers and this server does not (yet): the command or option
 * still parses, so an existing script fails with one clear line naming it,
 * never with commander's "unknown option" or "unknown command".
 */
export class NotAvailableError extends Error {
  override name = 'NotAvailableError';
}

/** The commands made by `unavailableCommand`: they print nothing, so they take no `--jq`. */
export const UNAVAILABLE_COMMANDS = new WeakSet<Command>();

/**
 * A command of Oz's that we do not have (`path`: its words after `oz`): it
 * takes any arguments and options and answers one line,
 * "<path>: not available on this server; <why>".
 */
export function unavailableCommand(path: string, aliases: readonly string[], description: string, why: string): Command {
  const cmd = new Command(path.split(' ').at(-1) ?? path)
    .aliases(aliases)
    .description(`${description} (not available on this server)`)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(() => {
      throw new NotAvailableError(`${path}: not available on this server; ${why}`);
    });
  UNAVAILABLE_COMMANDS.add(cmd);
  return cmd;
}

/**
 * Run an API call; when the server answers `feature_not_available` for a
 * field a flag sets, name the flag (what the user typed), and the field.
 */
export async function namingFlags<T>(flags: Readonly<Record<string, string>>, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof OzClientError && error.code === 'feature_not_available' && error.reason !== undefined) {
      const flag = flags[error.reason];
      if (flag) throw new NotAvailableError(`${flag}: not available on this server (the API's ${error.reason})`);
    }
    throw error;
  }
}
