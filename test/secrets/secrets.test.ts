import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFromSpec, resolveTestPostgres } from '../support/store-factories.js';
import { bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { runEvents } from '../support/run-events.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];

/** Characters that make every encoding differ from the raw value. */
const SECRET = `s3cr3t/Value+with="quotes" & more-${randomBytes(4).toString('hex')}`;
const MULTI = `first-line-${randomBytes(4).toString('hex')}\nsecond-line-${randomBytes(4).toString('hex')}`;
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');

/** Every form of the values the redaction must catch; none may appear anywhere a user or a log can read. */
function leaks(text: string): string[] {
  const bytes = Buffer.from(SECRET);
  const forms = [
    SECRET,
    bytes.toString('base64'),
    bytes.toString('base64url'),
    bytes.toString('hex'),
    encodeURIComponent(SECRET),
    JSON.stringify(SECRET).slice(1, -1),
    ...MULTI.split('\n'),
  ];
  return forms.filter((form) => text.includes(form));
}

function harness(server: OzServerHandle) {
  const createSecret = async (body: Json, key = server.adminKey) => api(server, 'POST', '/api/v1/secrets', { key, body });
  const createEnvironment = async (body: Json, key = server.adminKey): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key, body: { name: `env-${randomBytes(3).toString('hex')}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (prompt: string, config: Json, key = server.adminKey): Promise<{ id: string; run: Json; output: string; events: { type: string; data: Json }[] }> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt, config: { harness: { type: 'command' }, ...config } } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id}`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    return { id, run: result, output, events };
  };
  const newMember = async (teamName: string): Promise<string> => {
    const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { email: `${randomBytes(4).toString('hex')}@example.test`, team: teamName } });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const key = await api(server, 'POST', `/api/v1/admin/users/${(user.body as { uid: string }).uid}/api-keys`, { key: server.adminKey, body: { name: 'k' } });
    return (key.body as { key: string }).key;
  };
  return { createSecret, createEnvironment, run, newMember };
}

describe('secrets on sqlite', () => {
  let server: OzServerHandle;
  let h: ReturnType<typeof harness>;

  beforeAll(async () => {
    server = await startOzServer('sqlite', { env: { OZ_LOG_LEVEL: 'debug', OZ_TEAM_MAX_CONCURRENT_RUNS: '10' } });
    h = harness(server);
    expect((await h.createSecret({ name: 'API_TOKEN', value: SECRET, description: 'for the redaction test' })).status).toBe(201);
    expect((await h.createSecret({ name: 'MULTI_KEY', value: MULTI })).status).toBe(201);
  });
  afterAll(async () => {
    expect(await server?.stop()).toBe(0);
  });

  it('refuses bad input with a 4xx naming the field, and writes nothing', async () => {
    const cases: [Json, number, RegExp][] = [
      [{ name: 'PATH', value: 'long-enough-value' }, 400, /name: is reserved/],
      [{ name: 'OZ_THING', value: 'long-enough-value' }, 400, /name: is reserved/],
      [{ name: 'LD_PRELOAD', value: 'long-enough-value' }, 400, /name: is reserved/],
      [{ name: '1BAD', value: 'long-enough-value' }, 400, /name: must be an environment variable name/],
      [{ name: 'EMPTY', value: '' }, 400, /value: must not be empty/],
      [{ name: 'SHORT', value: 'short' }, 400, /value: must be at least 8 characters/],
      [{ name: 'HUGE', value: 'x'.repeat(128 * 1024) }, 400, /value: HUGE=value must be under 128 KiB/],
      [{ name: 'TYPED', value: 'long-enough-value', type: 'aws-key' }, 400, /type: must be one of raw-value, anthropic-api-key/],
      [{ name: 'API_TOKEN', value: 'another-long-value' }, 409, /name: a team secret named API_TOKEN already exists/],
      [{ name: 'EXTRA', value: 'long-enough-value', shown: true }, 400, /shown/],
    ];
    for (const [body, status, detail] of cases) {
      const res = await h.createSecret(body);
      expect(res.status, JSON.stringify(body).slice(0, 100)).toBe(status);
      expect(String((res.body as Json).detail)).toMatch(detail);
    }
    const list = (await api(server, 'GET', '/api/v1/secrets', { key: server.adminKey })).body as { secrets: Json[] };
    expect(list.secrets.map((s) => s.name)).toEqual(['API_TOKEN', 'MULTI_KEY']);
    expect(JSON.stringify(list)).not.toContain(SECRET.slice(0, 12));
  });

  it('a run uses the value while every output hides it: conversation, SSE, the API in every format, and the server log', async () => {
    const envId = await h.createEnvironment({ secrets: ['API_TOKEN', 'MULTI_KEY'] });
    const prompt = [
      'echo "raw: $API_TOKEN"',
      'printf %s "$API_TOKEN" | base64 -w0; echo',
      "printf %s \"$API_TOKEN\" | base64 -w0 | tr '+/' '-_' | tr -d '='; echo",
      'printf %s "$API_TOKEN" | od -An -tx1 | tr -d \' \\n\'; echo',
      'node -e "process.stdout.write(encodeURIComponent(process.env.API_TOKEN) + \'\\n\')"',
      'node -e "console.log(JSON.stringify({ token: process.env.API_TOKEN }))"',
      'printf %s "${API_TOKEN:0:9}"; sleep 0.3; printf "%s\\n" "${API_TOKEN:9}"',
      'echo "$MULTI_KEY"',
      'echo "$MULTI_KEY" | sed -n 2p',
      'echo "raw to stderr: $API_TOKEN" >&2',
      'echo "sha=$(printf %s "$API_TOKEN" | sha256sum | cut -c1-64) multi=$(printf %s "$MULTI_KEY" | sha256sum | cut -c1-64)"',
    ].join('\n');
    const { id, run, output } = await h.run(prompt, { environment_id: envId });
    expect(run.state, JSON.stringify(run.status_message)).toBe('SUCCEEDED');
    // The run had the values…
    expect(output).toContain(`sha=${sha(SECRET)} multi=${sha(MULTI)}`);
    expect(output).toContain('raw: ***\n');
    // …and nothing shows them.
    expect(leaks(output)).toEqual([]);
    const conversation = await api(server, 'GET', `/api/v1/agent/runs/${id}/conversation`, { key: server.adminKey });
    expect(leaks(JSON.stringify(conversation.body))).toEqual([]);
    const sse = await fetch(`${server.url}/api/v1/agent/runs/${id}/events`, { headers: { authorization: `Bearer ${server.adminKey}` } });
    const stream = await sse.text();
    expect(stream).toContain('raw: ***');
    expect(leaks(stream)).toEqual([]);
    for (const format of ['pretty', 'json', 'ndjson', 'text']) {
      const cli = await runOz(['run', 'get', id, '--conversation', '--output-format', format], server.cliEnv);
      expect(cli.code, cli.stderr).toBe(0);
      expect(leaks(cli.stdout + cli.stderr), format).toEqual([]);
    }
    const debug = await runOz(['--debug', 'secret', 'list'], server.cliEnv);
    expect(leaks(debug.stdout + debug.stderr)).toEqual([]);
    expect(leaks(server.logs())).toEqual([]);
  });

  it('stores no plaintext value in the SQLite file', async () => {
    const file = (server.storeSpec as { file: string }).file;
    const bytes = Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
    expect(bytes.includes(Buffer.from(SECRET))).toBe(false);
    expect(bytes.includes(Buffer.from(MULTI.split('\n')[0] as string))).toBe(false);
    expect(readFileSync(join(server.dataDir, 'master.key'), 'utf8').trim()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a personal secret reaches its owner only; the run list replaces the environment list; unknown names are reported', async () => {
    const personal = await h.createSecret({ name: 'MY_OWN', value: `personal-${randomBytes(6).toString('hex')}`, team: false });
    expect(personal.status).toBe(201);
    expect((personal.body as Json).scope).toBe('personal');
    const teammate = await h.newMember('default');
    const envId = await h.createEnvironment({ secrets: ['MY_OWN', 'API_TOKEN'] });
    const probe = 'echo "own=${MY_OWN:+set} token=${API_TOKEN:+set}"';

    const mine = await h.run(probe, { environment_id: envId });
    expect(mine.output).toBe('own=set token=set\n');
    const theirs = await h.run(probe, { environment_id: envId }, teammate);
    expect(theirs.run.state).toBe('SUCCEEDED');
    expect(theirs.output).toBe('own= token=set\n');
    expect(theirs.events.filter((e) => e.type === 'notice').map((e) => String(e.data.message))).toEqual([expect.stringContaining('MY_OWN')]);
    // The teammate cannot see, change or delete it either.
    expect(((await api(server, 'GET', '/api/v1/secrets', { key: teammate })).body as { secrets: Json[] }).secrets.map((s) => s.name)).toEqual(['API_TOKEN', 'MULTI_KEY']);
    expect((await api(server, 'DELETE', '/api/v1/secrets/MY_OWN?scope=personal', { key: teammate })).status).toBe(404);

    const none = await h.run(probe, { environment_id: envId, secrets: [] });
    expect(none.output).toBe('own= token=\n');
    const own = await h.run(probe, { environment_id: envId, secrets: ['MY_OWN'] });
    expect(own.output).toBe('own=set token=\n');
    const noEnv = await h.run(probe, {});
    expect(noEnv.output).toBe('own= token=\n');
  });

  it("another team's key sees none of the team's secrets", async () => {
    const team = await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name: `other-${randomBytes(3).toString('hex')}` } });
    const outsider = await h.newMember(String((team.body as Json).name));
    expect(((await api(server, 'GET', '/api/v1/secrets', { key: outsider })).body as { secrets: Json[] }).secrets).toEqual([]);
    for (const [method, body] of [
      ['GET', undefined],
      ['PATCH', { description: 'x' }],
      ['DELETE', undefined],
    ] as const) {
      expect((await api(server, method, '/api/v1/secrets/API_TOKEN', { key: outsider, ...(body ? { body } : {}) })).status).toBe(404);
    }
    // Attaching the other team's secret by name gets nothing.
    const envId = await h.createEnvironment({ secrets: ['API_TOKEN'] }, outsider);
    expect((await h.run('echo "token=${API_TOKEN:+set}"', { environment_id: envId }, outsider)).output).toBe('token=\n');
  });

  it("a setup-only secret reaches setup commands only: not the harness's environment, nor any /proc/*/environ it can read", async () => {
    expect((await h.createSecret({ name: 'SETUP_TOKEN', value: `setup-only-${randomBytes(6).toString('hex')}`, setup_only: true })).status).toBe(201);
    const envId = await h.createEnvironment({
      secrets: ['SETUP_TOKEN', 'API_TOKEN'],
      setup_commands: ['test -n "$SETUP_TOKEN" && echo "setup has it"', 'sleep 4321 &'],
    });
    const { run, events, output } = await h.run(
      [
        'echo "harness=[${SETUP_TOKEN:-}]"',
        'echo "holders=$(grep -l -a "$(printf "setup-%s-" only)" /proc/[0-9]*/environ 2>/dev/null | wc -l)"',
        'echo "sleepers=$(ps ax -o args | grep -c "[s]leep 4321")"',
      ].join('\n'),
      { environment_id: envId },
    );
    expect(run.state).toBe('SUCCEEDED');
    expect(events.some((e) => e.type === 'output' && String(e.data.text).includes('setup has it'))).toBe(true);
    expect(output).toBe('harness=[]\nholders=0\nsleepers=0\n');
  });

  it("with a setup-only secret, the harness runs under a new init: the one that was sent setup's environment is gone", async (ctx) => {
    if (!bwrapInstalled()) {
      console.log('skipped: the direct backend has no init');
      ctx.skip();
    }
    expect((await h.createSecret({ name: 'SETUP_ONLY_INIT', value: `init-${randomBytes(8).toString('hex')}`, setup_only: true })).status).toBe(201);
    // The init is the parent of every exec; its start time tells one init from the next.
    const initStart = "cut -d' ' -f22 /proc/$PPID/stat";
    const plain = await h.createEnvironment({ setup_commands: [`${initStart} > /tmp/setup-init`] });
    const withSecret = await h.createEnvironment({ secrets: ['SETUP_ONLY_INIT'], setup_commands: [`${initStart} > /tmp/setup-init`] });
    const compare = `test "$(cat /tmp/setup-init)" = "$(${initStart})" && echo init=same || echo init=new`;
    // Without a snapshot to keep (keeping one relaunches the jail too: test/sandbox/warm-starts.test.ts).
    expect((await h.run(compare, { environment_id: plain, snapshot: false })).output).toBe('init=same\n');
    const { run, output } = await h.run(compare, { environment_id: withSecret });
    expect(run.state).toBe('SUCCEEDED');
    expect(output).toBe('init=new\n');
  });

  it('a harness-time clash of two secrets on one variable fails the run, naming both', async () => {
    expect((await h.createSecret({ name: 'KEY_A', value: 'anthropic-key-aaaaaaaa', type: 'anthropic-api-key' })).status).toBe(201);
    expect((await h.createSecret({ name: 'KEY_B', value: 'anthropic-key-bbbbbbbb', type: 'anthropic-api-key' })).status).toBe(201);
    const { run } = await h.run('true', { secrets: ['KEY_A', 'KEY_B'] });
    expect(run.state).toBe('FAILED');
    expect(run.status_message).toMatchObject({ error_code: 'invalid_request', reason: 'secret_variable_conflict' });
    expect(String((run.status_message as Json).message)).toContain('KEY_A and KEY_B would both set ANTHROPIC_API_KEY');
    const single = await h.run('echo "${ANTHROPIC_API_KEY:+set}"', { secrets: ['KEY_A'] });
    expect(single.output).toBe('set\n');
  });

  it('the CLI takes values from a file, stdin or nowhere else, and never prints them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oz-secret-cli-'));
    try {
      const file = join(dir, 'value');
      writeFileSync(file, 'from-a-file-value\n');
      const fromFile = await runOz(['secret', 'create', 'FROM_FILE', '-f', file, '-d', 'a file'], server.cliEnv);
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(fromFile.stdout).toBe('Created team secret FROM_FILE (FROM_FILE in runs).\n');
      const fromStdin = await runOz(['secret', 'create', 'FROM_STDIN', '--personal', '--setup-only'], server.cliEnv, { input: 'from-stdin-value\n' });
      expect(fromStdin.code, fromStdin.stderr).toBe(0);
      const typed = await runOz(['secret', 'create', '-t', 'github-token', '--output-format', 'json'], server.cliEnv, { input: 'ghp_exampleexample' });
      expect(typed.code, typed.stderr).toBe(0);
      expect(JSON.parse(typed.stdout)).toMatchObject({ name: 'GITHUB_TOKEN', type: 'github-token', variable: 'GITHUB_TOKEN', scope: 'team' });
      const list = await runOz(['secret', 'list', '--output-format', 'text'], server.cliEnv);
      expect(list.stdout).toContain('FROM_STDIN\traw-value\tFROM_STDIN\tpersonal\tyes');
      expect(list.stdout).not.toContain('from-a-file-value');
      expect(list.stdout).not.toContain('from-stdin-value');
      const run = await h.run('printf %s "$FROM_FILE" | sha256sum | cut -c1-64', { secrets: ['FROM_FILE'] });
      expect(run.output).toBe(`${sha('from-a-file-value')}\n`);

      const updated = await runOz(['secret', 'update', 'FROM_FILE'], server.cliEnv, { input: 'a-new-value-from-stdin\n' });
      expect(updated.code, updated.stderr).toBe(0);
      const described = await runOz(['secret', 'update', 'FROM_FILE', '-d', 'only the description'], server.cliEnv);
      expect(described.code, described.stderr).toBe(0);
      expect((await h.run('printf %s "$FROM_FILE" | sha256sum | cut -c1-64', { secrets: ['FROM_FILE'] })).output).toBe(`${sha('a-new-value-from-stdin')}\n`);

      expect((await runOz(['secret', 'create', 'X_NAME', '--team', '--personal'], server.cliEnv, { input: 'long-enough-value' })).code).toBe(2);
      expect((await runOz(['secret', 'create'], server.cliEnv, { input: 'long-enough-value' })).code).toBe(2);
      expect((await runOz(['secret', 'create', 'X_NAME', '--value', 'long-enough-value'], server.cliEnv)).code).toBe(2);
      const short = await runOz(['secret', 'create', 'X_NAME'], server.cliEnv, { input: 'short\n' });
      expect(short.code).toBe(1);
      expect(short.stderr).toContain('value: must be at least 8 characters');
      const deleted = await runOz(['secret', 'delete', 'FROM_STDIN', '--personal'], server.cliEnv);
      expect(deleted.code, deleted.stderr).toBe(0);
      expect((await runOz(['secret', 'delete', 'FROM_STDIN', '--personal'], server.cliEnv)).code).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Skipped only when PostgreSQL is unreachable outside CI; under CI=true this throws.
const pgUrl = await resolveTestPostgres();

describe('secrets at rest on postgres', () => {
  const servers: OzServerHandle[] = [];
  afterAll(async () => {
    for (const s of servers.reverse()) await s.stop();
  });

  it.skipIf(!pgUrl)('no plaintext in a dump; a swapped ciphertext fails; rotation keeps every secret usable; a wrong key stops the server', async () => {
    // A owns the schema and the key file and runs no worker; W and later B are
    // servers of the same deployment whose embedded workers claim the runs.
    const a = await startOzServer('postgres', { pgUrl: pgUrl as string, args: ['--no-worker'] });
    servers.push(a);
    const w = await startOzServer('postgres', { pgUrl: pgUrl as string, shareDatabaseWith: a });
    const h = harness(w);
    expect((await h.createSecret({ name: 'FIRST', value: SECRET })).status).toBe(201);
    expect((await h.createSecret({ name: 'SECOND', value: 'the-second-value-xyz' })).status).toBe(201);
    const probe = 'printf %s "$FIRST" | sha256sum | cut -c1-64; printf %s "$SECOND" | sha256sum | cut -c1-64';
    const expected = `${sha(SECRET)}\n${sha('the-second-value-xyz')}\n`;
    const before = await h.run(probe, { secrets: ['FIRST', 'SECOND'] });
    expect(before.output, JSON.stringify(before.run)).toBe(expected);

    const spec = a.storeSpec as { url: string; schema: string };
    const dump = execFileSync('pg_dump', ['--schema', spec.schema, '--data-only', spec.url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(dump).toContain('FIRST');
    expect(dump.includes(SECRET)).toBe(false);
    expect(dump.includes('the-second-value-xyz')).toBe(false);

    // Rotation, with the servers that hold the old key stopped (as documented).
    expect(await w.stop()).toBe(0);
    const rotated = await runOz(['server', 'rotate-master-key'], { ...a.cliEnv, OZ_DATA_DIR: a.dataDir, OZ_DATABASE_URL: `${spec.url}?options=-c%20search_path%3D${spec.schema}` });
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toContain('Re-wrapped 2 secrets under the new master key.');
    const b = await startOzServer('postgres', { pgUrl: pgUrl as string, shareDatabaseWith: a });
    servers.push(b);
    expect((await harness(b).run(probe, { secrets: ['FIRST', 'SECOND'] })).output).toBe(expected);

    // A sealed value moved onto another row does not open there.
    const store = await openFromSpec(a.storeSpec);
    try {
      const first = await store.secrets.get((await store.getUserByEmail('admin@localhost'))?.teamId ?? '', { type: 'team' }, 'FIRST');
      await store.secrets.update(
        first?.teamId ?? '',
        { type: 'team' },
        'SECOND',
        { sealed: { valueCipher: first?.valueCipher ?? '', wrappedKey: first?.wrappedKey ?? '' } },
        Date.now(),
      );
    } finally {
      await store.close();
    }
    const swapped = await harness(b).run(probe, { secrets: ['SECOND'] });
    expect(swapped.run.state).toBe('FAILED');
    expect(swapped.run.status_message).toMatchObject({ reason: 'secret_unreadable' });

    // A wrong key stops a server at start, saying so.
    await expect(startOzServer('postgres', { pgUrl: pgUrl as string, shareDatabaseWith: a, env: { OZ_MASTER_KEY: randomBytes(32).toString('hex') } })).rejects.toThrow(
      /is not the master key this database's secrets were sealed with/,
    );
  });
});
