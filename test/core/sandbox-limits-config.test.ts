import { describe, expect, it } from 'vitest';
import { defaultSandboxLimits, loadConfig } from '../../src/core/config.js';

const MIB = 1024 ** 2;

describe('per-run limits: OZ_SANDBOX_* defaults and OZ_SANDBOX_MAX_* ceilings', () => {
  it('each ceiling defaults to four times its default, within the absolute bound', () => {
    const config = loadConfig({}, { HOME: '/h', OZ_SANDBOX_MEMORY_MB: '1000', OZ_SANDBOX_CPUS: '0.5', OZ_SANDBOX_OUTPUT_MB: '5000', OZ_SANDBOX_RUNTIME_MINUTES: '30' });
    expect(config.sandboxDefaults).toMatchObject({ memoryBytes: 1000 * MIB, cpus: 0.5, outputBytes: 5000 * MIB, maxRuntimeMs: 30 * 60_000 });
    expect(config.sandboxMaxima).toMatchObject({ memoryBytes: 4000 * MIB, cpus: 2, outputBytes: 10_240 * MIB, maxRuntimeMs: 120 * 60_000 });
    expect(defaultSandboxLimits()).toEqual({ defaults: loadConfig({}, { HOME: '/h' }).sandboxDefaults, maxima: loadConfig({}, { HOME: '/h' }).sandboxMaxima });
  });

  it('takes explicit ceilings, fractional cores, and refuses a ceiling below its default naming both variables', () => {
    const config = loadConfig({}, { HOME: '/h', OZ_SANDBOX_MAX_PIDS: '2048', OZ_SANDBOX_MAX_CPUS: '3.5' });
    expect(config.sandboxMaxima).toMatchObject({ pids: 2048, cpus: 3.5 });
    expect(() => loadConfig({}, { HOME: '/h', OZ_SANDBOX_MAX_MEMORY_MB: '1024' })).toThrow(/OZ_SANDBOX_MAX_MEMORY_MB \(1024\) is below OZ_SANDBOX_MEMORY_MB \(4096\)/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_SANDBOX_CPUS: '0' })).toThrow(/OZ_SANDBOX_CPUS/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_SANDBOX_MAX_RUNTIME_MINUTES: '99999' })).toThrow(/^OZ_SANDBOX_MAX_RUNTIME_MINUTES: must be 1\.\.10080/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_SANDBOX_PIDS: '1.5' })).toThrow(/OZ_SANDBOX_PIDS/);
  });
});
