import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRotationConfig, loadServerCommand, loadWorkerCommand } from '../../src/core/config.js';
import { COMMANDS, type CommandName, type ProcessName, type Setting } from '../../src/core/settings/setting.js';
import { COMMAND_LINE_OPTIONS, SETTINGS } from '../../src/core/settings/table.js';
import { cleanEnv, OZ_BIN } from '../support/oz-server-process.js';
import { SETTING_NAMES, badSettings, envWith } from '../core/settings-bad-values.js';

/** Each command that loads a config: the processes whose settings it reads (`oz server` embeds a worker), and its loader. */
const LOADERS: Record<Exclude<CommandName, 'oz'>, { reads: readonly ProcessName[]; load: (env: Record<string, string>) => unknown }> = {
  server: { reads: ['server', 'worker'], load: (env) => loadServerCommand({}, env) },
  'server rotate-master-key': { reads: ['server', 'worker'], load: (env) => loadRotationConfig({}, env) },
  worker: { reads: ['worker'], load: (env) => loadWorkerCommand({}, env) },
};

const configHome = mkdtempSync(join(tmpdir(), 'oz-config-errors-'));
afterAll(() => rmSync(configHome, { recursive: true, force: true }));

/** The real CLI (bin/oz.js on dist/), without the host's settings or CLI config. */
function oz(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [OZ_BIN, ...args], { env: { ...cleanEnv(), XDG_CONFIG_HOME: configHome, ...env }, encoding: 'utf8', timeout: 30_000 });
}

function help(command: CommandName): string {
  const result = oz([...(command === 'oz' ? [] : command.split(' ')), '--help']);
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

const HELP = {} as Record<CommandName, string>;
beforeAll(() => {
  for (const command of COMMANDS) HELP[command] = help(command);
});

const flagPattern = (flag: string): RegExp => new RegExp(`(^|\\s)${flag}\\b`, 'm');

function messageOf(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

const cases = badSettings().flatMap((bad) =>
  (Object.keys(LOADERS) as (keyof typeof LOADERS)[])
    .filter((command) => LOADERS[command].reads.some((process) => (SETTINGS[bad.name] as Setting).readBy.has(process)))
    .map((command) => ({ ...bad, command })),
);

describe('configuration errors name only flags the command has', () => {
  it('shows in --help every flag the table gives a command', () => {
    for (const command of COMMANDS) {
      const flags = [
        ...SETTING_NAMES.flatMap((name) => {
          const entry: Setting = SETTINGS[name];
          return entry.flag?.on.has(command) ? [entry.flag.name] : [];
        }),
        ...COMMAND_LINE_OPTIONS.filter((option) => option.on === command).map((option) => option.flag),
      ];
      for (const flag of flags) expect(HELP[command], `oz ${command} --help lacks ${flag}`).toMatch(flagPattern(flag));
    }
  });

  it.each(cases)('oz $command: $variable=$value is refused naming the flag only where the command has it', ({ name, variable, value, command }) => {
    const entry: Setting = SETTINGS[name];
    const message = messageOf(() => LOADERS[command].load(envWith(variable, value)));
    expect(message, `${variable}=${JSON.stringify(value)} was accepted`).toContain(variable);
    if (entry.flag?.on.has(command)) {
      expect(message.startsWith(`${entry.flag.name} / ${variable}: `), message).toBe(true);
      expect(HELP[command], `the error names ${entry.flag.name}, which oz ${command} --help does not show`).toMatch(flagPattern(entry.flag.name));
    } else {
      expect(message.startsWith(variable), message).toBe(true);
      expect(message, 'names a flag').not.toMatch(/(^|\s)--[a-z]/);
    }
  });

  it('the CLI refuses its bad variables naming the global flag it shows', () => {
    for (const { name, variable, value } of badSettings().filter(({ name }) => (SETTINGS[name] as Setting).readBy.has('cli'))) {
      const entry: Setting = SETTINGS[name];
      const result = oz(['whoami'], { [variable]: value });
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr).toContain(entry.flag ? `${entry.flag.name} / ${variable}` : variable);
      if (entry.flag) expect(HELP.oz).toMatch(flagPattern(entry.flag.name));
    }
  });

  it('oz worker does not read the server settings: OZ_PORT=bad gets as far as its own flags', () => {
    const result = oz(['worker', '--server', 'ftp://example.com', '--token', 'ozw_x'], { OZ_PORT: 'bad', OZ_CACHE_DIR: configHome });
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toContain('--server: must be http:// or https://');
    const bad = oz(['worker', '--server', 'ftp://example.com', '--token', 'ozw_x'], { OZ_WORKER_CONCURRENCY: '0' });
    expect(bad.stderr).toContain('--concurrency / OZ_WORKER_CONCURRENCY: must be 1..64');
  });

  it('oz server names no worker flag it lacks: --concurrency is oz worker’s', () => {
    const result = oz(['server', '--port', '0'], { OZ_WORKER_CONCURRENCY: '0', OZ_DATA_DIR: join(configHome, 'data') });
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toContain('oz: OZ_WORKER_CONCURRENCY: must be 1..64');
  });
});
