import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { until } from '../support/until.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
/** Long enough that its halves are no secret form the redactor knows. */
const SECRET = `chatty-${randomBytes(16).toString('hex')}`;

/**
 * Runs that print a lot, through the real server and its embedded worker with
 * the DEFAULT limits (no output_mb): what a verbose build does must end that
 * run the ordinary way, never the worker or the server.
 */
describe('chatty runs with the default limits', () => {
  let server: OzServerHandle;

  const start = async (prompt: string, config: Json = {}): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key: server.adminKey, body: { prompt, config: { harness: { type: 'command' }, ...config } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const settle = (id: string): Promise<Json> =>
    until(
      `run ${id} to end`,
      async () => {
        const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
        return TERMINAL.includes(String(body.state)) ? body : null;
      },
      120_000,
    );

  beforeAll(async () => {
    server = await startOzServer('sqlite', { env: { OZ_TEAM_MAX_CONCURRENT_RUNS: '10', OZ_WORKER_CONCURRENCY: '3' } });
    expect((await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'CHATTY_TOKEN', value: SECRET } })).status).toBe(201);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('a run printing 4 MB succeeds while another run goes on, and the server stays up', async () => {
    const other = await start('sleep 2; echo the other run');
    const chatty = await start('head -c 3000000 /dev/urandom | base64 -w 0; echo; head -c 3000000 /dev/zero | tr "\\0" x | fold -w 100 | head -c 1200000');
    const [chattyRun, otherRun] = [await settle(chatty), await settle(other)];
    expect(chattyRun.state, JSON.stringify(chattyRun.status_message)).toBe('SUCCEEDED');
    expect(otherRun.state).toBe('SUCCEEDED');
    expect(alive(server.pid)).toBe(true);
    const { output } = await runEvents(server.storeSpec, chatty);
    // Every byte of a 4 MB print is kept: the default stored maximum is 8 MiB.
    expect(output.length).toBeGreaterThan(4_000_000);
    expect((await runEvents(server.storeSpec, other)).output).toBe('the other run\n');
  });

  it('a run that calls notify-user hundreds of times with long notes succeeds, and the server stays up', async () => {
    const note = 'n'.repeat(9000);
    // Sixteen at a time: notes arrive faster than one batch a round trip.
    const id = await start(`seq 1 300 | xargs -P 16 -I{} oz harness-support notify-user --message "{} ${note}" && echo done`);
    const run = await settle(id);
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    expect(alive(server.pid)).toBe(true);
    const { events } = await runEvents(server.storeSpec, id);
    expect(events.filter((e) => e.type === 'notice' && e.data.reason === 'agent_notification')).toHaveLength(300);
  });

  it('a secret in a long line that straddles an output event boundary is stored redacted, not as two halves', async () => {
    // 16 KiB is the output event size: the value sits across the first boundary, in a line with no newline.
    const id = await start(`printf '%16370s' '' | tr ' ' x; printf '%s' "$CHATTY_TOKEN"; printf '%20000s' '' | tr ' ' y`, { secrets: ['CHATTY_TOKEN'] });
    const run = await settle(id);
    expect(run.state).toBe('SUCCEEDED');
    const { events, output } = await runEvents(server.storeSpec, id);
    expect(output).toBe(`${'x'.repeat(16370)}***${'y'.repeat(20000)}`);
    const stored = JSON.stringify(events);
    expect(stored).not.toContain(SECRET.slice(0, 20));
    expect(stored).not.toContain(SECRET.slice(-20));
  });

  it('a failed setup command quotes its output redacted before it is cut', async () => {
    // The tail quoted in the status message is 2,000 characters: the value starts just before its cut.
    const env = await api(server, 'POST', '/api/v1/agent/environments', {
      key: server.adminKey,
      body: { name: `tail-${randomBytes(3).toString('hex')}`, setup_commands: [`printf '%s' "$CHATTY_TOKEN"; printf '%1970s' '' | tr ' ' z; exit 3`], secrets: ['CHATTY_TOKEN'] },
    });
    expect(env.status, JSON.stringify(env.body)).toBe(201);
    const id = await start('echo never', { environment_id: (env.body as { uid: string }).uid });
    const run = await settle(id);
    expect(run.state).toBe('FAILED');
    const message = JSON.stringify(run.status_message);
    expect(message).toContain('environment_setup_failed');
    for (let n = 0; n + 12 <= SECRET.length; n++) expect(message).not.toContain(SECRET.slice(n, n + 12));
  });
});
