import { expect } from 'vitest';
import { api, type OzServerHandle } from './oz-server-process.js';
import { until } from './until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/** The run (its RunItem) once its execution `n` has ended. */
export function executionEnded(server: OzServerHandle, id: string, n: number, timeoutMs?: number): Promise<Json> {
  return until(
    `run ${id} to end execution ${n}`,
    async () => {
      const run = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(run.state)) && run.execution === n ? run : null;
    },
    timeoutMs,
  );
}

/** Send a follow-up as the admin; the API's answer (200 expected). */
export async function sendFollowup(server: OzServerHandle, id: string, message: string): Promise<Json> {
  const res = await api(server, 'POST', `/api/v1/agent/runs/${id}/followups`, { key: server.adminKey, body: { message } });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body as Json;
}
