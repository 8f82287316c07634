import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnvironmentItem } from '../../src/api/environments.js';
import type { RunEventMessage } from '../../src/api/run-events.js';
import type { ListRunsResponse, RunAgentResponse, RunItem } from '../../src/api/runs.js';
import { OZ_BIN, runOz, startOzServer, type Backend, type OzServerHandle } from '../support/oz-server-process.js';

/** The `oz` CLI as a user runs it, against a real server, in every output format. */
export function describeCliContract(backend: Backend, pgUrl?: string): void {
  describe(`the oz CLI against a server on ${backend}`, () => {
    let server: OzServerHandle;
    const dirs: string[] = [];
    const oz = (...args: string[]) => runOz(args, server.cliEnv);

    beforeAll(async () => {
      // No worker: these tests need runs that wait (the lifecycle suite covers execution).
      server = await startOzServer(backend, { ...(pgUrl ? { pgUrl } : {}), args: ['--no-worker'] });
    });
    afterAll(async () => {
      await server?.stop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it('creates an environment, dispatches a run into it, and lists it in all four formats', async () => {
      const created = await oz('environment', 'create', '-n', 'web', '-r', 'owner/app', '-c', 'npm ci');
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      const envId = /ID: (\S+)/.exec(created.stdout)?.[1] ?? '';
      expect(envId).toMatch(/^[0-9a-f-]{36}$/);

      const dispatched = await oz('agent', 'run-cloud', '-p', 'hello', '-e', envId, '--output-format', 'json');
      expect(dispatched.code).toBe(0);
      const runId = (JSON.parse(dispatched.stdout) as RunAgentResponse).run_id;
      expect(runId).toMatch(/^[0-9a-f-]{36}$/);

      const pretty = await oz('task', 'list');
      expect(pretty.stdout).toMatch(/^ID\s+STATE\s+SOURCE\s+CREATED\s+TITLE/);
      expect(pretty.stdout).toContain(runId);
      expect(pretty.stdout).toMatch(new RegExp(`${runId}\\s+(pending|queued)\\s+CLI`));

      const json = JSON.parse((await oz('task', 'list', '--output-format', 'json')).stdout) as ListRunsResponse;
      const listed = json.runs.find((r) => r.run_id === runId);
      expect(listed?.agent_config.environment_id).toBe(envId);

      const ndjson = (await oz('run', 'list', '--output-format', 'ndjson')).stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RunItem);
      expect(ndjson.map((r) => r.run_id)).toContain(runId);

      const text = (await runOz(['run', 'list'], { ...server.cliEnv, WARP_OUTPUT_FORMAT: 'text' })).stdout;
      expect(
        text
          .split('\n')
          .find((l) => l.startsWith(runId))
          ?.split('\t'),
      ).toEqual([runId, expect.stringMatching(/pending|queued/), 'CLI', expect.any(String), 'hello']);

      const got = await oz('run', 'get', runId);
      expect(got.stdout).toMatch(/Prompt:\s+hello/);
      expect(got.stdout).toContain(`Environment: ${envId}`);
    });

    it('run get --follow shows a cancel issued from another terminal as it happens, then exits', async () => {
      const dispatched = await oz('agent', 'run-cloud', '-p', 'sleep forever', '--output-format', 'text');
      const runId = dispatched.stdout.trim();
      const follower = spawn(process.execPath, [OZ_BIN, 'run', 'get', runId, '--follow'], { env: server.cliEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        let out = '';
        const sawQueued = new Promise<void>((resolve) =>
          follower.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (/state (queued|pending)/.test(out) || out.includes('→ pending')) resolve();
          }),
        );
        await sawQueued;
        const exited = new Promise<number | null>((resolve) => follower.on('exit', resolve));
        const cancel = await oz('run', 'cancel', runId);
        expect(cancel.stdout).toContain(`Cancelled run ${runId}.`);
        expect(await exited).toBe(0);
        expect(out).toMatch(/state (pending|queued) → cancelled \(Cancelled by admin@localhost\)/);
        expect(out).toContain(`Run ${runId} is cancelled.`);
      } finally {
        if (follower.exitCode === null) follower.kill('SIGKILL');
      }
    });

    it('--follow in ndjson prints one event per line, and --wait exits 1 when the run does not succeed', async () => {
      const runId = (await oz('agent', 'run-cloud', '-p', 'x', '--output-format', 'text')).stdout.trim();
      const waiting = runOz(['agent', 'run-cloud', '-p', 'y', '--wait', '--output-format', 'text'], server.cliEnv);
      await oz('run', 'cancel', runId);
      const follow = await oz('run', 'get', runId, '--follow', '--output-format', 'ndjson');
      const events = follow.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as RunEventMessage);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.at(-1)?.data.to).toBe('CANCELLED');
      // The waiting run is still queued or pending: cancel it so --wait returns.
      const list = JSON.parse((await oz('run', 'list', '--state', 'queued', '--state', 'pending', '--output-format', 'json', '-L', '50')).stdout) as ListRunsResponse;
      const waited = list.runs.find((r) => r.prompt === 'y');
      expect(waited).toBeDefined();
      await oz('run', 'cancel', waited?.run_id ?? '');
      const result = await waiting;
      expect(result.code).toBe(1);
      expect(result.stdout.trim().split('\n').at(-1)).toMatch(/\tCANCELLED$/);
    });

    it('usage mistakes exit 2 naming the flag; server refusals exit 1 with the server message', async () => {
      const badState = await oz('run', 'list', '--state', 'running');
      expect(badState.code).toBe(2);
      expect(badState.stderr).toContain('--state: must be one of queued, pending, claimed, in-progress');
      const noPrompt = await oz('agent', 'run-cloud');
      expect(noPrompt.code).toBe(2);
      expect(noPrompt.stderr).toContain('--prompt');
      const badFormat = await oz('run', 'list', '--output-format', 'xml');
      expect(badFormat.code).toBe(2);
      const badHarness = await oz('agent', 'run-cloud', '-p', 'x', '--harness', 'bash');
      expect(badHarness.code).toBe(2);
      expect(badHarness.stderr).toContain('--harness: must be one of oz, claude, codex, command');
      const unknownRun = await oz('run', 'get', '01900000-0000-7000-8000-000000000000');
      expect(unknownRun.code).toBe(1);
      expect(unknownRun.stderr).toContain('run 01900000-0000-7000-8000-000000000000 not found [resource_not_found]');
      const unavailable = await oz('agent', 'run-cloud', '-p', 'x', '--mcp', 'npx some-server');
      expect(unavailable.code).toBe(1);
      expect(unavailable.stderr).toContain("--mcp: not available on this server (the API's config.mcp_servers)");
      const badKey = await runOz(['run', 'list'], { ...server.cliEnv, WARP_API_KEY: 'oz_wrong' });
      expect(badKey.code).toBe(1);
      expect(badKey.stderr).toContain('[authentication_required]');
      const missingEnv = await oz('environment', 'update', '01900000-0000-7000-8000-000000000000', '-n', 'x');
      expect(missingEnv.code).toBe(1);
    });

    it('manages environments: get, update lists, refuse a non-interactive delete without --force, delete', async () => {
      const id = (await oz('e', 'create', '-n', 'api', '-r', 'file:///srv/git/api.git@main', '--env', 'FOO=1', '--output-format', 'text')).stdout.trim();
      const updated = await oz('e', 'update', id, '-c', 'make setup', '--env', 'BAR=2', '--remove-env', 'FOO', '-r', 'acme/lib', '--network', 'on');
      expect(updated.code).toBe(0);
      const env = JSON.parse((await oz('e', 'get', id, '--output-format', 'json')).stdout) as EnvironmentItem;
      expect(env.config.setup_commands).toEqual(['make setup']);
      expect(env.config.env).toEqual({ BAR: '2' });
      expect(env.config.repos).toEqual([{ url: 'file:///srv/git/api.git', branch: 'main' }, { url: 'https://github.com/acme/lib.git' }]);
      expect(env.config.github_repos).toEqual([{ owner: 'acme', repo: 'lib' }]);
      expect(env.config.network).toBe('on');
      const missing = await oz('e', 'update', id, '--remove-setup-command', 'nope');
      expect(missing.code).toBe(2);
      expect((await oz('e', 'update', id, '--remove-setup-command', 'nope', '--force', '-n', 'api2')).code).toBe(0);
      const refused = await oz('e', 'delete', id);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--force');
      expect((await oz('e', 'delete', id, '--force')).code).toBe(0);
      expect((await oz('e', 'get', id)).code).toBe(1);
      const tooLong = await oz('e', 'create', '-n', 'x', '--description', 'd'.repeat(241));
      expect(tooLong.code).toBe(2);
    });

    it('takes a run config file, with flags overriding it', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'oz-cli-'));
      dirs.push(dir);
      const file = join(dir, 'agent.yaml');
      writeFileSync(file, 'prompt: from the file\ntitle: Filed\nconfig:\n  name: nightly\n  harness:\n    type: command\n');
      const runId = (await oz('agent', 'run-cloud', '-f', file, '--title', 'Flagged', '--output-format', 'text')).stdout.trim();
      const run = JSON.parse((await oz('run', 'get', runId, '--output-format', 'json')).stdout) as RunItem;
      expect(run).toMatchObject({ prompt: 'from the file', title: 'Flagged', agent_config: { name: 'nightly', harness: { type: 'command' } } });
      const bad = join(dir, 'bad.json');
      writeFileSync(bad, '{ not json');
      const result = await oz('agent', 'run-cloud', '-f', bad);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('--file');
      const conversation = await oz('run', 'conversation', 'get', runId);
      expect(conversation.stdout).toContain('user: from the file');
    });

    it('keys, teams, users, worker tokens, models, whoami and completions', async () => {
      const who = await oz('whoami');
      expect(who.stdout).toMatch(/User:\s+admin@localhost \(admin\)/);
      const key = (await oz('api-key', 'create', 'laptop', '--expires-in', '30d', '--output-format', 'text')).stdout.trim();
      expect(key).toMatch(/^oz_[A-Za-z0-9_-]{43}$/);
      const keys = await oz('api-key', 'list');
      expect(keys.stdout).toContain('laptop');
      expect(keys.stdout).not.toContain(key);
      expect((await runOz(['whoami'], { ...server.cliEnv, WARP_API_KEY: key })).code).toBe(0);
      expect((await oz('api-key', 'expire', 'laptop')).code).toBe(0);
      expect((await runOz(['whoami'], { ...server.cliEnv, WARP_API_KEY: key })).code).toBe(1);
      expect((await oz('api-key', 'create', 'x', '--expires-in', 'soon')).code).toBe(2);

      expect((await oz('admin', 'team', 'create', 'blue', '--max-concurrent-runs', '2')).code).toBe(0);
      expect((await oz('admin', 'user', 'create', 'ann@blue.test', '--team', 'blue')).code).toBe(0);
      const annKey = (await oz('admin', 'user', 'key', 'ann@blue.test', '--name', 'ann', '--output-format', 'text')).stdout.trim();
      const annWho = await runOz(['whoami', '--output-format', 'json'], { ...server.cliEnv, WARP_API_KEY: annKey });
      expect(JSON.parse(annWho.stdout)).toMatchObject({ user: { email: 'ann@blue.test', role: 'member' }, team: { name: 'blue' } });
      const annList = await runOz(['run', 'list', '--output-format', 'json'], { ...server.cliEnv, WARP_API_KEY: annKey });
      expect(JSON.parse(annList.stdout)).toMatchObject({ runs: [] });
      const annAdmin = await runOz(['worker-token', 'list'], { ...server.cliEnv, WARP_API_KEY: annKey });
      expect(annAdmin.code).toBe(1);
      expect(annAdmin.stderr).toContain('[not_authorized]');

      const token = (await oz('worker-token', 'create', 'box-1', '--output-format', 'text')).stdout.trim();
      expect(token).toMatch(/^ozw_/);
      const tokens = await oz('worker-token', 'list');
      expect(tokens.stdout).toContain('box-1');
      expect(tokens.stdout).not.toContain(token);
      expect((await oz('worker-token', 'revoke', 'box-1')).code).toBe(0);

      const models = await oz('model', 'list');
      expect(models.code).toBe(0);
      const bash = await oz('completions', 'bash');
      expect(bash.stdout).toContain('complete -F _oz_complete oz');
      expect(bash.stdout).toContain('run-cloud');
      expect((await oz('completions', 'tcsh')).code).toBe(2);
    });
  });
}
