import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { cleanEnv, OZ_BIN } from '../support/oz-server-process.js';

/** A bad value for each variable the configuration reads (one at a time). */
const BAD: Record<string, string> = {
  OZ_DATABASE_URL: 'mysql://db',
  OZ_LEASE_TTL_MS: '5',
  OZ_HOST: '',
  OZ_PORT: '70000',
  OZ_DEFAULT_MODEL: 'nope',
  OZ_MODELS: 'nope',
  OZ_TEAM_MAX_CONCURRENT_RUNS: '0',
  OZ_WORKER_CONCURRENCY: '99',
  OZ_KILL_GRACE_MS: '-1',
  OZ_DRAIN_GRACE_MS: 'x',
  OZ_MAX_OUTPUT_BYTES: '1',
  OZ_MASTER_KEY: 'short',
  OZ_NEW_MASTER_KEY: 'short',
  OZ_CACHE_DIR: 'relative',
  OZ_SANDBOX_ROOT: 'relative',
  OZ_FILE_REPO_ROOTS: 'relative',
  OZ_CLAUDE_BIN: 'relative',
  OZ_CODEX_BIN: 'relative',
  OZ_SANDBOX_PIDS: '3',
  OZ_SANDBOX_MEMORY_MB: '1',
  OZ_SANDBOX_DISK_MB: '1',
  OZ_SANDBOX_OUTPUT_MB: '0',
  OZ_SANDBOX_CPUS: '0',
  OZ_SANDBOX_MAX_PIDS: '3',
  OZ_EVENT_POLL_MS: '1',
  OZ_EVENT_STREAM_HEARTBEAT_MS: '1',
  OZ_EVENT_STREAMS_PER_KEY: '0',
  OZ_SWEEP_INTERVAL_MS: '1',
  OZ_LOG_LEVEL: 'loud',
  OZ_MODEL_MAX_RETRIES: '-1',
  OZ_AGENT_MAX_STEPS: '0',
  OZ_AGENT_MAX_TOKENS: '1',
  OZ_AGENT_MAX_MINUTES: '0',
  OZ_HOST_GIT_MEMORY_MB: '1',
  OZ_GIT_ALLOWED_HOSTS: 'a b',
};

function help(command: string): string {
  const result = spawnSync(process.execPath, [OZ_BIN, command, '--help'], { env: cleanEnv(), encoding: 'utf8' });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

describe('configuration errors', () => {
  const shown = `${help('server')}\n${help('worker')}`;

  it.each(Object.entries(BAD))('%s=bad is refused naming the variable, and only flags that oz server or oz worker shows', (variable, value) => {
    let message = '';
    try {
      loadConfig({}, { HOME: '/home/u', [variable]: value });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message, `${variable}=${JSON.stringify(value)} was accepted`).toContain(variable);
    for (const flag of message.match(/--[a-z][a-z-]+/g) ?? []) expect(shown, `${variable}'s error names ${flag}`).toMatch(new RegExp(`${flag}\\b`));
  });
});
