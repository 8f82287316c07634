import { describe, expect, it } from 'vitest';
import { DEFAULT_EVENT_STREAMS, loadConfig } from '../../src/core/config.js';

describe('event stream settings', () => {
  it('default to a 15 s heartbeat, 30 s unwritable and 15 min idle timeouts, 20 streams per key and 100 per team', () => {
    expect(loadConfig({}, { HOME: '/h' }).eventStreams).toEqual(DEFAULT_EVENT_STREAMS);
    expect(DEFAULT_EVENT_STREAMS).toEqual({ heartbeatMs: 15_000, unwritableTimeoutMs: 30_000, idleTimeoutMs: 900_000, maxPerKey: 20, maxPerTeam: 100 });
  });

  it('are read from their variables and refused, naming the variable, when out of range', () => {
    const env = {
      HOME: '/h',
      OZ_EVENT_STREAM_HEARTBEAT_MS: '200',
      OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS: '1500',
      OZ_EVENT_STREAM_IDLE_TIMEOUT_MS: '60000',
      OZ_EVENT_STREAMS_PER_KEY: '2',
      OZ_EVENT_STREAMS_PER_TEAM: '3',
    };
    expect(loadConfig({}, env).eventStreams).toEqual({ heartbeatMs: 200, unwritableTimeoutMs: 1500, idleTimeoutMs: 60_000, maxPerKey: 2, maxPerTeam: 3 });
    expect(() => loadConfig({}, { HOME: '/h', OZ_EVENT_STREAMS_PER_KEY: '0' })).toThrow(/OZ_EVENT_STREAMS_PER_KEY: must be 1\.\.100000/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_EVENT_STREAMS_PER_TEAM: 'many' })).toThrow(/OZ_EVENT_STREAMS_PER_TEAM/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS: '5' })).toThrow(/OZ_EVENT_STREAM_UNWRITABLE_TIMEOUT_MS/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_EVENT_STREAM_IDLE_TIMEOUT_MS: '-1' })).toThrow(/OZ_EVENT_STREAM_IDLE_TIMEOUT_MS/);
    expect(() => loadConfig({}, { HOME: '/h', OZ_EVENT_STREAM_HEARTBEAT_MS: '10' })).toThrow(/OZ_EVENT_STREAM_HEARTBEAT_MS/);
  });
});
