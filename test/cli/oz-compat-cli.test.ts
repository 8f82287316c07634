import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiKeyItem, CreatedApiKey, MeResponse } from '../../src/api/identity.js';
import type { ListRunsResponse, RunAgentResponse, RunItem } from '../../src/api/runs.js';
import type { ScheduleItem } from '../../src/api/schedules.js';
import type { SecretItem } from '../../src/api/secrets.js';
import { runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';

/**
 * Scripts written for Warp's `oz` run unchanged against ours: each test drives
 * one of Oz's command lines as a real process against a real server.
 */
describe('scripts written for Oz work with our oz', () => {
  let server: OzServerHandle;
  let dir: string;
  const oz = (...args: string[]) => runOz(args, server.cliEnv);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await oz(...args, '--output-format', 'json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const file = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-compat-cli-'));
    // No worker: runs stay waiting, which is all these command lines need.
    server = await startOzServer('sqlite', { args: ['--no-worker'] });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('--jq', () => {
    it('filters the JSON output, prints top-level strings unquoted, and is in --help', async () => {
      const dispatched = await oz('agent', 'run-cloud', '-p', 'jq me', '--jq', '.run_id');
      expect(dispatched.code).toBe(0);
      const runId = dispatched.stdout.trim();
      expect(dispatched.stdout).toMatch(/^[0-9a-f-]{36}\n$/);

      const ids = await oz('run', 'list', '--jq', '.runs[].run_id');
      expect(ids.code).toBe(0);
      expect(ids.stdout.split('\n')).toContain(runId);

      // It wins over another output format, and whole values print as JSON.
      const state = await oz('run', 'get', runId, '--output-format', 'text', '--jq', '{state, prompt}');
      expect(JSON.parse(state.stdout)).toEqual({ state: expect.stringMatching(/PENDING|QUEUED/), prompt: 'jq me' });
      expect((await oz('whoami', '--jq', '.user.email')).stdout).toBe('admin@localhost\n');

      for (const args of [['run', 'list'], ['agent', 'run-cloud'], ['secret', 'list'], ['schedule', 'create'], ['environment', 'get', 'x'], ['whoami']]) {
        expect((await oz(...args, '--help')).stdout).toContain('--jq <filter>');
      }
    });

    it("exits non-zero with jq's message on a runtime error, and refuses a filter that does not compile before doing anything", async () => {
      const failed = await oz('whoami', '--jq', '.user.email | error("boom: \\(.)")');
      expect(failed.code).toBe(1);
      expect(failed.stderr).toContain('boom: admin@localhost');
      expect(failed.stdout).toBe('');

      const before = (await json<ListRunsResponse>('run', 'list', '-L', '500')).runs.length;
      const bad = await oz('agent', 'run-cloud', '-p', 'never dispatched', '--jq', '.a |||');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/--jq: syntax error/);
      expect((await json<ListRunsResponse>('run', 'list', '-L', '500')).runs.length).toBe(before);
    });
  });

  describe("enum flags take Oz's dashed spellings, the API's as aliases", () => {
    it('run list: --source, --state, --sort-by, --sort-order, --execution-location, --artifact-type', async () => {
      const runId = (await json<RunAgentResponse>('agent', 'run-cloud', '-p', 'enums')).run_id;
      const listed = async (...args: string[]) => (await json<ListRunsResponse>('run', 'list', '-L', '500', ...args)).runs.map((r) => r.run_id);
      expect(await listed('--source', 'cli', '--state', 'pending', '--state', 'queued', '--sort-by', 'created-at', '--sort-order', 'asc')).toContain(runId);
      expect(await listed('--source', 'CLI', '--state', 'PENDING', '--state', 'QUEUED', '--sort-by', 'created_at')).toContain(runId);
      expect(await listed('--source', 'scheduled-agent')).not.toContain(runId);
      expect(await listed('--state', 'in-progress')).not.toContain(runId);
      expect(await listed('--execution-location', 'remote')).toContain(runId);
      expect(await listed('--execution-location', 'local')).not.toContain(runId);
      expect(await listed('--artifact-type', 'pull-request')).not.toContain(runId);

      const bad = await oz('run', 'list', '--source', 'nowhere');
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--source: must be one of linear, api, slack, local, scheduled-agent, web-app, github-action, cloud-mode, cli');
      expect((await oz('run', 'list', '--sort-by', 'size')).stderr).toContain('updated-at, created-at');
    });

    it('schedules (--overlap), environments (--network), secrets (--type), output formats', async () => {
      const schedule = await json<ScheduleItem>('schedule', 'create', '--name', 'overlap', '--cron', '0 9 * * *', '-p', 'x', '--overlap', 'cancel-previous');
      expect(schedule.overlap_policy).toBe('cancel_previous');
      const aliased = await json<ScheduleItem>('schedule', 'create', '--name', 'overlap2', '--cron', '0 9 * * *', '-p', 'x', '--overlap', 'CANCEL_PREVIOUS');
      expect(aliased.overlap_policy).toBe('cancel_previous');
      expect((await oz('schedule', 'create', '--name', 'y', '--cron', '0 9 * * *', '-p', 'x', '--overlap', 'never')).stderr).toContain('allow, skip, queue, cancel-previous');

      expect((await json<{ config: { network: string } }>('environment', 'create', '-n', 'net', '--network', 'ON')).config.network).toBe('on');
      const secret = await runOz(['secret', 'create', '--type', 'ANTHROPIC_API_KEY', '--output-format', 'json'], server.cliEnv, { input: 'sk-ant-0123456789\n' });
      expect(secret.code).toBe(0);
      expect((JSON.parse(secret.stdout) as SecretItem).type).toBe('anthropic-api-key');

      const upper = await runOz(['whoami'], { ...server.cliEnv, WARP_OUTPUT_FORMAT: 'JSON' });
      expect((JSON.parse(upper.stdout) as MeResponse).user.email).toBe('admin@localhost');
      expect((await oz('whoami', '--output-format', 'yaml')).stderr).toContain('must be one of pretty, json, ndjson, text');
    });
  });

  describe('config files (-f, WARP_AGENT_CONFIG_FILE)', () => {
    it("run-cloud reads Oz's form in YAML and the API form in JSON; flags override; WARP_AGENT_CONFIG_FILE is the default", async () => {
      const yaml = file('agent.yaml', 'name: nightly\nprompt: from the file\nharness: command\nmax_steps: 7\n');
      const fromYaml = (await json<RunAgentResponse>('agent', 'run-cloud', '-f', yaml)).run_id;
      const run = await json<RunItem>('run', 'get', fromYaml);
      expect(run.prompt).toBe('from the file');
      expect(run.agent_config).toMatchObject({ name: 'nightly', harness: { type: 'command' }, max_steps: 7 });

      const overridden = (await json<RunAgentResponse>('agent', 'run-cloud', '-f', yaml, '-p', 'from the flag', '-n', 'flagged')).run_id;
      expect(await json<RunItem>('run', 'get', overridden)).toMatchObject({ prompt: 'from the flag', agent_config: { name: 'flagged', max_steps: 7 } });

      const body = file('body.json', JSON.stringify({ prompt: 'api form', title: 'API title', config: { name: 'api' } }));
      const fromJson = (await json<RunAgentResponse>('agent', 'run-cloud', '-f', body)).run_id;
      expect(await json<RunItem>('run', 'get', fromJson)).toMatchObject({ prompt: 'api form', title: 'API title', agent_config: { name: 'api' } });

      const viaEnv = await runOz(['agent', 'run-cloud', '--output-format', 'json'], { ...server.cliEnv, WARP_AGENT_CONFIG_FILE: yaml });
      expect(viaEnv.code).toBe(0);
      const viaEnvRun = await json<RunItem>('run', 'get', (JSON.parse(viaEnv.stdout) as RunAgentResponse).run_id);
      expect(viaEnvRun.agent_config.name).toBe('nightly');

      const unknown = await oz('agent', 'run-cloud', '-f', file('bad.yaml', 'prompt: x\nmodle_id: typo\n'));
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown field "modle_id"');
      const missing = await runOz(['agent', 'run-cloud'], { ...server.cliEnv, WARP_AGENT_CONFIG_FILE: join(dir, 'none.yaml') });
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('WARP_AGENT_CONFIG_FILE: cannot read');
    });

    it("schedule create and update -f read Oz's form in YAML too; flags override", async () => {
      const yaml = file('schedule.yaml', 'name: weekly-report\nprompt: write the report\nharness: command\nmax_steps: 9\n');
      const created = await json<ScheduleItem>('schedule', 'create', '-f', yaml, '--cron', '0 9 * * 1');
      expect(created).toMatchObject({ name: 'weekly-report', prompt: 'write the report', agent_config: { name: 'weekly-report', harness: { type: 'command' }, max_steps: 9 } });

      const update = file('update.yml', 'max_steps: 11\nprompt: a new report\n');
      const updated = await json<ScheduleItem>('schedule', 'update', created.id, '-f', update, '-p', 'the flag wins');
      expect(updated).toMatchObject({ name: 'weekly-report', prompt: 'the flag wins', cron_schedule: '0 9 * * 1', agent_config: { max_steps: 11, harness: { type: 'command' } } });

      const apiForm = file('schedule.json', JSON.stringify({ name: 'api-form', cron_schedule: '0 8 * * *', prompt: 'x', agent_config: { max_steps: 3 } }));
      expect(await json<ScheduleItem>('schedule', 'create', '-f', apiForm)).toMatchObject({ name: 'api-form', agent_config: { max_steps: 3 } });
      expect((await oz('schedule', 'create', '-f', file('typo.yaml', 'prompt: x\ncron: 0 9 * * *\n'))).stderr).toContain('unknown field "cron"');
    });
  });

  describe('flags and aliases Oz has', () => {
    it('secret delete --force; api-key create --expires-at, list --sort-by, expire --force, delete --force', async () => {
      expect((await runOz(['secret', 'create', 'DOOMED'], server.cliEnv, { input: 'a-long-value\n' })).code).toBe(0);
      const deleted = await oz('secret', 'delete', 'DOOMED', '--force');
      expect(deleted.code).toBe(0);
      expect((await json<{ secrets: SecretItem[] }>('secret', 'list')).secrets.map((s) => s.name)).not.toContain('DOOMED');

      const at = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
      const key = await json<CreatedApiKey>('api-key', 'create', 'zz-dated', '--expires-at', at);
      expect(Math.abs(Date.parse(String(key.expires_at)) - Date.parse(at))).toBeLessThan(5_000);
      expect((await oz('api-key', 'create', 'past', '--expires-at', '2020-01-01T00:00:00Z')).code).toBe(2);
      await json<CreatedApiKey>('api-key', 'create', 'aa-first');
      const byName = (await oz('api-key', 'list', '--sort-by', 'name', '--jq', '.api_keys[].name')).stdout.trim().split('\n');
      expect(byName).toEqual([...byName].sort());
      expect(byName).toEqual(expect.arrayContaining(['aa-first', 'zz-dated']));
      expect((await oz('api-key', 'list', '--sort-by', 'created-at', '--sort-order', 'desc')).code).toBe(0);

      expect((await oz('api-key', 'expire', 'zz-dated', '--force')).code).toBe(0);
      expect((await oz('api-key', 'delete', 'aa-first', '--force')).code).toBe(0);
      const keys = (await json<{ api_keys: ApiKeyItem[] }>('api-key', 'list')).api_keys;
      expect(keys.filter((k) => ['zz-dated', 'aa-first'].includes(k.name)).every((k) => k.expired)).toBe(true);
    });

    it('run list --execution-location --creator --ancestor-run --artifact-type --updated-after --skill', async () => {
      const runId = (await json<RunAgentResponse>('agent', 'run-cloud', '-p', 'filters')).run_id;
      const me = await json<MeResponse>('whoami');
      const listed = async (...args: string[]) => (await json<ListRunsResponse>('run', 'list', '-L', '500', ...args)).runs.map((r) => r.run_id);
      expect(await listed('--creator', me.user.uid)).toContain(runId);
      expect(await listed('--updated-after', '2000-01-01T00:00:00Z')).toContain(runId);
      expect(await listed('--updated-after', '2999-01-01T00:00:00Z')).not.toContain(runId);
      expect(await listed('--ancestor-run', runId)).not.toContain(runId);
      expect(await listed('--skill', 'owner/repo:SKILL.md')).not.toContain(runId);
      expect(await listed('--execution-location', 'remote', '--artifact-type', 'branch')).not.toContain(runId);
    });

    it('schedule update --remove-environment', async () => {
      const envId = (await json<{ uid: string }>('environment', 'create', '-n', 'sched-env')).uid;
      const created = await json<ScheduleItem>('schedule', 'create', '--name', 'with-env', '--cron', '0 9 * * *', '-p', 'x', '-e', envId);
      expect(created.agent_config.environment_id).toBe(envId);
      const updated = await json<ScheduleItem>('schedule', 'update', created.id, '--remove-environment');
      expect(updated.agent_config.environment_id).toBeUndefined();
    });

    it('aliases: agent run-ambient, agent r, i, completions powershell', async () => {
      const ambient = await oz('agent', 'run-ambient', '-p', 'ambient', '--output-format', 'text');
      expect(ambient.code).toBe(0);
      expect(ambient.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);

      const local = await oz('agent', 'r', '-p', 'here', '--cwd', '.');
      expect(local.code).toBe(1);
      expect(local.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^oz: agent run: not available on this server/)]);
      const integration = await oz('i', 'create', 'slack', '--environment', 'x');
      expect(integration.code).toBe(1);
      expect(integration.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^oz: integration: not available on this server/)]);

      const ps = await oz('completions', 'powershell');
      expect(ps.code).toBe(0);
      expect(ps.stdout).toContain('Register-ArgumentCompleter -Native -CommandName oz');
      expect(ps.stdout).toContain('run-cloud');
    });

    it('secret create claude api-key NAME and codex api-key NAME --base-url URL', async () => {
      const claude = await runOz(['secret', 'create', 'claude', 'api-key', 'MY_CLAUDE_KEY', '--output-format', 'json'], server.cliEnv, { input: 'sk-ant-claude-0123\n' });
      expect(claude.stderr).toBe('');
      expect(JSON.parse(claude.stdout)).toMatchObject({ name: 'MY_CLAUDE_KEY', type: 'claude-api-key' });
      const codex = await runOz(['secret', 'create', 'codex', 'api-key', 'MY_CODEX_KEY', '--base-url', 'https://llm.example.test/v1', '--output-format', 'json'], server.cliEnv, {
        input: 'sk-codex-0123456\n',
      });
      expect(codex.stderr).toBe('');
      expect(JSON.parse(codex.stdout)).toMatchObject({ name: 'MY_CODEX_KEY', type: 'codex-api-key' });
      expect((await oz('secret', 'create', 'claude', 'api-key', 'X', '--base-url', 'https://x.test')).stderr).toContain('--base-url: only for codex');
    });

    it('options this server lacks parse and answer one line naming the option', async () => {
      for (const [flag, ...args] of [
        ['--mcp', '--mcp', 'npx some-server'],
        ['--attach', '--attach', 'notes.txt'],
        ['--computer-use', '--computer-use'],
        ['--skill', '--skill', 'owner/repo:SKILL.md'],
      ] as const) {
        const result = await oz('agent', 'run-cloud', '-p', 'x', ...args);
        expect(result.code).toBe(1);
        expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^oz: ${flag}: not available on this server`))]);
        expect(result.stderr).not.toContain('unknown option');
      }
      const schedule = await oz('schedule', 'create', '--name', 'hosted', '--cron', '0 9 * * *', '-p', 'x', '--mcp', 'npx some-server');
      expect(schedule.code).toBe(1);
      expect(schedule.stderr).toMatch(/^oz: --mcp: not available on this server/);
      // --host is worker routing now (docs/api.md "Worker pools"): a bad name is the server's 400 naming the field.
      const host = await oz('schedule', 'create', '--name', 'hosted', '--cron', '0 9 * * *', '-p', 'x', '--host', 'My Box');
      expect(host.code).toBe(1);
      expect(host.stderr).toContain('agent_config.worker_host: must be a worker');
    });
  });

  describe('pretty output scripts parse', () => {
    it('the run ID is the last word of its line; a queued note has its own line', async () => {
      expect((await oz('admin', 'team', 'create', 'solo', '--max-concurrent-runs', '1')).code).toBe(0);
      expect((await oz('admin', 'user', 'create', 'solo@solo.test', '--team', 'solo')).code).toBe(0);
      const key = (await oz('admin', 'user', 'key', 'solo@solo.test', '--name', 'solo', '--output-format', 'text')).stdout.trim();
      const solo = (...args: string[]) => runOz(args, { ...server.cliEnv, WARP_API_KEY: key });

      const first = await solo('agent', 'run-cloud', '-p', 'first');
      expect(first.stdout).toMatch(/^Spawned agent with run ID: [0-9a-f-]{36}\n$/);
      const second = await solo('agent', 'run-cloud', '-p', 'second');
      const lines = second.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^Spawned agent with run ID: [0-9a-f-]{36}$/);
      expect(lines[1]).toMatch(/^Queued: /);
      expect(lines).toHaveLength(2);
    });

    it("the model flag's help names Oz's ids", async () => {
      for (const args of [
        ['agent', 'run-cloud'],
        ['schedule', 'create'],
      ]) {
        const help = (await oz(...args, '--help')).stdout.replace(/\s+/g, ' ');
        expect(help).toContain('claude-4-6-opus-high');
        expect(help).toContain('auto');
        expect(help).toContain('provider/model');
      }
    });
  });
});
