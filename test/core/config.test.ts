import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, loadConfig } from '../../src/core/config.js';
import { workerNameFromHost } from '../../src/core/worker-pool.js';

describe('configuration', () => {
  it('defaults to the XDG data directory and the embedded database', () => {
    const config = loadConfig({}, { HOME: '/home/u' });
    expect(config).toEqual({
      dataDir: '/home/u/.local/share/oz',
      databaseUrl: null,
      leaseTtlMs: 30_000,
      host: '127.0.0.1',
      port: 7420,
      defaultModel: null,
      modelCatalog: null,
      models: [],
      agent: { providers: {}, maxRetries: 2, maxSteps: 100, maxTokens: 5_000_000, maxTimeMs: 3_600_000 },
      claudeBin: null,
      codexBin: null,
      results: {
        branchPrefix: 'oz/',
        authorName: 'Oz',
        authorEmail: 'oz@localhost',
        githubUrl: 'https://github.com',
        githubGitUrl: 'https://github.com',
        githubApiUrl: 'https://api.github.com',
      },
      teamMaxConcurrentRuns: 4,
      followups: { idleTimeoutMinutes: 0, workspaceMaxBytes: 64 * 1024 * 1024, workspaceRetentionMs: 14 * 24 * 3600_000 },
      trustProxy: false,
      webSessionTtlMs: 12 * 3600_000,
      network: { defaultPolicy: 'off', defaultPresets: [], presetsFile: null },
      cliConfigPath: '/home/u/.config/oz/config.json',
      logLevel: 'info',
      workerConcurrency: 2,
      spareSandboxes: 2,
      workerName: workerNameFromHost(hostname()),
      workerLabels: [],
      killGraceMs: 2000,
      drainGraceMs: 30_000,
      maxOutputBytes: 8 * 1024 * 1024,
      sandboxRoot: null,
      sweepIntervalMs: 2000,
      eventPollMs: 1000,
      eventStreams: { heartbeatMs: 15_000, unwritableTimeoutMs: 30_000, idleTimeoutMs: 900_000, maxPerKey: 20, maxPerTeam: 100 },
      masterKey: null,
      newMasterKey: null,
      hostPath: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      insecureRegistries: [],
      registryAllowedHosts: [],
      imageStoreBytes: 20 * 1024 * 1024 * 1024,
      snapshotStoreBytes: 20 * 1024 * 1024 * 1024,
      // Root keeps mirrors where sandbox uids can search the path; others in the XDG cache.
      cacheDir: process.getuid?.() === 0 ? '/var/cache/oz' : '/home/u/.cache/oz',
      fileRepoRoots: [],
      hostGit: { memoryBytes: 2 * 1024 ** 3, maxFileBytes: 16 * 1024 ** 3, allowedHosts: [] },
      sandboxDefaults: { pids: 1024, memoryBytes: 4 * 1024 ** 3, diskBytes: 10 * 1024 ** 3, outputBytes: 256 * 1024 ** 2, cpus: 2, maxRuntimeMs: 4 * 3_600_000 },
      sandboxMaxima: { pids: 4096, memoryBytes: 16 * 1024 ** 3, diskBytes: 40 * 1024 ** 3, outputBytes: 1024 ** 3, cpus: 8, maxRuntimeMs: 16 * 3_600_000 },
    });
    expect(defaultDataDir({ XDG_DATA_HOME: '/x/data', HOME: '/home/u' })).toBe('/x/data/oz');
    expect(defaultDataDir({ XDG_DATA_HOME: 'relative', HOME: '/home/u' })).toBe('/home/u/.local/share/oz');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('validates the worker settings, naming the flag and the variable', () => {
    expect(() => loadConfig({}, { HOME: '/h', OZ_CACHE_DIR: 'relative' })).toThrow(/--cache-dir \/ OZ_CACHE_DIR: "relative" must be an absolute path/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_FILE_REPO_ROOTS: '/ok:rel' })).toThrow(/OZ_FILE_REPO_ROOTS/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_SANDBOX_PIDS: '3' })).toThrow(/OZ_SANDBOX_PIDS/);
    expect(loadConfig({ cacheDir: '/flag' }, { HOME: '/h', OZ_CACHE_DIR: '/env', OZ_FILE_REPO_ROOTS: '/a:/b/' }).cacheDir).toBe('/flag');
    expect(loadConfig({}, { HOME: '/h', OZ_FILE_REPO_ROOTS: '/a:/b/', OZ_SANDBOX_MEMORY_MB: '512' })).toMatchObject({
      fileRepoRoots: ['/a', '/b'],
      sandboxDefaults: { memoryBytes: 512 * 1024 ** 2 },
    });
  });

  it('takes flags over environment variables', () => {
    const config = loadConfig({ dataDir: '/flag' }, { OZ_DATA_DIR: '/env', OZ_DATABASE_URL: 'postgres://h/db' });
    expect(config.dataDir).toBe('/flag');
    expect(config.databaseUrl).toBe('postgres://h/db');
  });

  it('lists the default model first among the configured models', () => {
    const config = loadConfig({}, { HOME: '/h', OZ_DEFAULT_MODEL: 'anthropic/claude-sonnet-4-5', OZ_MODELS: 'openai/gpt-5, anthropic/claude-sonnet-4-5' });
    expect(config.models).toEqual(['anthropic/claude-sonnet-4-5', 'openai/gpt-5']);
    expect(() => loadConfig({}, { OZ_MODELS: 'gpt-5' })).toThrow(/OZ_MODELS: must be provider\/model/);
  });

  it('names the flag and the variable when a value is wrong', () => {
    expect(() => loadConfig({ port: '70000' })).toThrow(/--port \/ OZ_PORT: must be 0..65535/);
    expect(() => loadConfig({}, { OZ_DATABASE_URL: 'mysql://h/db' })).toThrow(/^OZ_DATABASE_URL: must be a postgres/);
    expect(() => loadConfig({}, { OZ_LEASE_TTL_MS: 'soon' })).toThrow(/OZ_LEASE_TTL_MS/);
    expect(() => loadConfig({}, { OZ_LEASE_TTL_MS: '10' })).toThrow(/OZ_LEASE_TTL_MS/);
  });
});
