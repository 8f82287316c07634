import { describe, expect, it } from 'vitest';
import { loadCliEnvironment, loadServerConfig, loadWorkerCommand, loadWorkerConfig } from '../../src/core/config.js';
import type { Setting } from '../../src/core/settings/setting.js';
import { SETTINGS } from '../../src/core/settings/table.js';
import { BAD_VALUES, SETTING_NAMES, badSettings, envWith } from './settings-bad-values.js';

const readers = (name: (typeof SETTING_NAMES)[number]): ReadonlySet<string> => (SETTINGS[name] as Setting).readBy;

describe('each process reads only its own settings', () => {
  it('has an invalid value, or says there is none, for every setting of the table', () => {
    expect(Object.keys(BAD_VALUES).sort()).toEqual(SETTING_NAMES.map((name) => SETTINGS[name].env).sort());
  });

  it('a worker does not fail on a bad server-only variable (OZ_PORT=bad)', () => {
    expect(() => loadServerConfig({}, envWith('OZ_PORT', 'bad'))).toThrow(/--port \/ OZ_PORT/);
    expect(loadWorkerConfig({}, envWith('OZ_PORT', 'bad')).workerConcurrency).toBe(2);
    expect(loadWorkerCommand({}, envWith('OZ_PORT', 'bad')).launch.sandboxBackend).toBe('bwrap');
  });

  it('a server does not fail on a bad worker-only variable (OZ_WORKER_CONCURRENCY=0)', () => {
    expect(() => loadWorkerConfig({}, envWith('OZ_WORKER_CONCURRENCY', '0'))).toThrow(/--concurrency \/ OZ_WORKER_CONCURRENCY/);
    expect(loadServerConfig({}, envWith('OZ_WORKER_CONCURRENCY', '0')).port).toBe(7420);
  });

  it.each(badSettings())('$variable=$value is refused by the processes that read it, and only those', ({ name, variable, value }) => {
    const env = envWith(variable, value);
    const read = readers(name);
    const loaders = { server: () => loadServerConfig({}, env), worker: () => loadWorkerCommand({}, env) };
    for (const [process, load] of Object.entries(loaders)) {
      if (read.has(process)) expect(load, `${process} accepted ${variable}=${JSON.stringify(value)}`).toThrow(variable);
      else expect(load, `${process} refused ${variable}, which it does not read`).not.toThrow();
    }
    // The CLI's loader never refuses: its commands validate what they use, after the flags.
    expect(() => loadCliEnvironment(env)).not.toThrow();
  });

  it('reads the CLI settings, the API key also from OZ_API_KEY', () => {
    expect(loadCliEnvironment({ HOME: '/h', OZ_API_KEY: 'k1', OZ_SERVER_URL: 'http://s', WARP_OUTPUT_FORMAT: 'json' })).toMatchObject({
      apiKey: 'k1',
      serverUrl: 'http://s',
      outputFormat: 'json',
      configPath: '/h/.config/oz/config.json',
    });
    expect(loadCliEnvironment({ HOME: '/h', WARP_API_KEY: '', OZ_API_KEY: 'k1' }).apiKey).toBe('k1');
    expect(loadCliEnvironment({ HOME: '/h', WARP_API_KEY: 'k2', OZ_API_KEY: 'k1' }).apiKey).toBe('k2');
    expect(loadCliEnvironment({ HOME: '/h' })).toMatchObject({ apiKey: null, serverUrl: null, outputFormat: null });
  });

  it('gives the worker its backend and token, a blank token being none', () => {
    expect(loadWorkerCommand({ sandboxBackend: 'direct' }, { HOME: '/h', OZ_SANDBOX_BACKEND: 'bwrap', OZ_WORKER_TOKEN: ' ozw_x \n' }).launch).toEqual({
      sandboxBackend: 'direct',
      workerToken: 'ozw_x',
    });
    expect(loadWorkerCommand({}, { HOME: '/h', OZ_WORKER_TOKEN: '  ' }).launch.workerToken).toBeNull();
    expect(() => loadWorkerCommand({}, { HOME: '/h', OZ_SANDBOX_BACKEND: 'lxc' })).toThrow(/^--backend \/ OZ_SANDBOX_BACKEND: must be one of bwrap, docker, direct/);
  });

  it('never echoes a credential in an error', () => {
    expect(() => loadServerConfig({}, envWith('OZ_MASTER_KEY', 'short-secret'))).toThrow(/^OZ_MASTER_KEY: must be 32 bytes/);
    let message = '';
    try {
      loadServerConfig({}, envWith('OZ_MASTER_KEY', 'short-secret'));
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toContain('short-secret');
  });
});
