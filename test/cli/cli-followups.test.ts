import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunEventMessage } from '../../src/api/run-events.js';
import type { ListRunsResponse, RunItem } from '../../src/api/runs.js';
import { api, runOz, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';

const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const UNKNOWN_RUN = '01900000-0000-7000-8000-000000000000';

/**
 * `oz run followup`, `oz agent run-cloud --conversation/--branch/--idle-timeout`
 * and the executions in `oz run get`, as a user runs them: the real CLI
 * against a real server whose embedded worker runs command runs (the prompt,
 * then each follow-up, is a shell script), and a server without a worker for
 * what the CLI sends (its runs wait).
 */
describe('the oz CLI for follow-ups', () => {
  let server: OzServerHandle;
  let waiting: OzServerHandle;
  let envId: string;
  let dir: string;
  const oz = (...args: string[]) => runOz(args, server.cliEnv, { timeoutMs: 60_000 });
  const ozWaiting = (...args: string[]) => runOz(args, waiting.cliEnv);
  const getRun = async (id: string): Promise<RunItem> => {
    const result = await oz('run', 'get', id, '--output-format', 'json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as RunItem;
  };
  /** The run once its execution `n` has ended (polled through the API: cheaper than a CLI process per look). */
  const ended = (id: string, n: number): Promise<RunItem> =>
    until(
      `run ${id} to end execution ${n}`,
      async () => {
        const run = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as RunItem;
        return TERMINAL.includes(run.state) && run.execution === n ? run : null;
      },
      45_000,
      100,
    );
  /** A command run in the environment with no repositories: `script` is its prompt. */
  const start = async (script: string): Promise<string> => {
    const result = await oz('agent', 'run-cloud', '--harness', 'command', '-e', envId, '-p', script, '--output-format', 'text');
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim();
  };
  /** What the run's scripts printed, from its events as `oz run get --follow` streams them (the run has ended). */
  const output = async (id: string): Promise<string> => {
    const result = await oz('run', 'get', id, '--follow', '--output-format', 'ndjson');
    expect(result.code, result.stderr).toBe(0);
    const events = result.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as RunEventMessage);
    return events
      .filter((e) => e.type === 'output')
      .map((e) => String(e.data.text))
      .join('');
  };
  const runCount = async (handle: OzServerHandle): Promise<number> =>
    ((await api(handle, 'GET', '/api/v1/agent/runs?limit=500', { key: handle.adminKey })).body as ListRunsResponse).runs.length;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-cli-followups-'));
    [server, waiting] = await Promise.all([startOzServer('sqlite'), startOzServer('sqlite', { args: ['--no-worker'] })]);
    const created = await oz('environment', 'create', '-n', 'empty', '--output-format', 'text');
    expect(created.code, created.stderr).toBe(0);
    envId = created.stdout.trim();
  });
  afterAll(async () => {
    try {
      const codes = await Promise.all([server?.stop(), waiting?.stop()]);
      expect(codes).toEqual([0, 0]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('oz run followup continues an ended run in execution 2: the follow-up runs as the next script, --follow streams from it and exits 0', async () => {
    const id = await start('echo first-$((20+1))');
    expect((await ended(id, 1)).state).toBe('SUCCEEDED');
    // One execution: no execution lines (the run's own fields say it all).
    const single = await oz('run', 'get', id);
    expect(single.stdout).toMatch(/^State:\s+succeeded$/m);
    expect(single.stdout).not.toMatch(/^Execution /m);

    const sent = await oz('run', 'followup', id, '-p', 'echo second-$((40+2))', '--follow');
    expect(sent.stderr).toBe('');
    expect(sent.code).toBe(0);
    const lines = sent.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Follow-up 1 sent to run ${id}: continues in execution 2 (new_execution).`);
    // The stream starts at the follow-up (not execution 1's events) and ends with execution 2.
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\] user: echo second-\$\(\(40\+2\)\)$/);
    expect(sent.stdout).not.toContain('first-21');
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\] second-42$/));
    expect(lines.at(-1)).toMatch(/state in-progress → succeeded \(The command exited with code 0\.\)$/);

    const run = await getRun(id);
    expect(run.state).toBe('SUCCEEDED');
    expect(run.execution).toBe(2);
    expect(run.executions.map((e) => [e.number, e.state])).toEqual([
      [1, 'SUCCEEDED'],
      [2, 'SUCCEEDED'],
    ]);
    expect(await output(id)).toBe('first-21\nsecond-42\n');

    // oz run get shows each execution: its state, worker, times and how it ended.
    const pretty = await oz('run', 'get', id);
    const worker = run.executions[1]?.worker;
    expect(worker).not.toBeNull();
    for (const e of run.executions) {
      expect(pretty.stdout).toContain(
        `Execution ${e.number}: succeeded, ${e.worker?.name ?? '(unnamed)'} (${e.worker?.id}), ${e.started_at} → ${e.ended_at}: The command exited with code 0.`,
      );
    }
    const text = await oz('run', 'get', id, '--output-format', 'text');
    expect(text.stdout.split('\n').filter((l) => l.startsWith('Execution '))).toHaveLength(2);
  });

  it('--prompt-file - reads the follow-up from stdin, a file works too; json prints the API answer; --follow exits 1 when the execution fails', async () => {
    const id = await start('true');
    await ended(id, 1);
    const fromStdin = await runOz(['run', 'followup', id, '--prompt-file', '-', '--output-format', 'json'], server.cliEnv, {
      input: 'echo from-stdin-$((6*7))\n',
      timeoutMs: 60_000,
    });
    expect(fromStdin.stderr).toBe('');
    expect(fromStdin.code).toBe(0);
    expect(JSON.parse(fromStdin.stdout)).toEqual({
      run_id: id,
      followup: { seq: 1, created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
      execution: 2,
      state: expect.stringMatching(/^(QUEUED|PENDING|CLAIMED|INPROGRESS|SUCCEEDED)$/),
      delivery: 'new_execution',
    });
    expect((await ended(id, 2)).state).toBe('SUCCEEDED');

    const file = join(dir, 'followup.sh');
    writeFileSync(file, 'echo from-file-$((3*3))\nexit 3\n');
    const failing = await oz('run', 'followup', id, '--prompt-file', file, '--follow');
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^Follow-up 2 sent to run \S+: continues in execution 3 \(new_execution\)\.\n/);
    expect(failing.stdout).toContain('from-file-9');
    expect(failing.stdout).not.toContain('from-stdin-42');
    expect(failing.stdout).toMatch(/state in-progress → failed \(The command exited with code 3\.\)\n$/);
    expect(await output(id)).toBe('from-stdin-42\nfrom-file-9\n');
    // The failed execution's status reason shows on its line.
    expect((await oz('run', 'get', id)).stdout).toMatch(/^Execution 3: failed, .+: The command exited with code 3\. \[harness_failed\]$/m);
  });

  it('refuses a follow-up without text as a usage error naming -p/--prompt; an unknown run is the 404; a too long one the 400 naming the field', async () => {
    const id = await start('true');
    await ended(id, 1);
    const missing = await oz('run', 'followup', id);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('oz: -p/--prompt: a follow-up message is required');
    expect(missing.stderr).toContain('--prompt-file');
    const both = await oz('run', 'followup', id, '-p', 'echo a', '--prompt-file', '-');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('-p/--prompt and --prompt-file: choose one');
    const blank = await runOz(['run', 'followup', id, '--prompt-file', '-'], server.cliEnv, { input: '  \n' });
    expect(blank.code).toBe(2);
    expect(blank.stderr).toContain('--prompt-file: the follow-up message is empty');
    const unreadable = await oz('run', 'followup', id, '--prompt-file', join(dir, 'none.txt'));
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain('--prompt-file: cannot read');

    const unknown = await oz('run', 'followup', UNKNOWN_RUN, '-p', 'echo x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(`oz: run ${UNKNOWN_RUN} not found [resource_not_found]\n`);
    const long = join(dir, 'long.txt');
    writeFileSync(long, 'x'.repeat(200_001));
    const tooLong = await oz('run', 'followup', id, '--prompt-file', long);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toMatch(/^oz: message: must be at most 200000 characters \[invalid_request\]\n$/);

    // None of them reached the run.
    const run = await getRun(id);
    expect(run.executions).toHaveLength(1);
    expect(run.state).toBe('SUCCEEDED');
  });

  it('run-cloud --conversation ID -p continues the same run, sending no config the user did not pass (not WARP_AGENT_CONFIG_FILE)', async () => {
    const id = await start('echo one');
    await ended(id, 1);
    const before = await runCount(server);
    // A default config file would make the server refuse the follow-up (config.name): with --conversation it is not read.
    const defaults = join(dir, 'defaults.yaml');
    writeFileSync(defaults, 'name: nightly\nharness: command\nmax_steps: 7\n');
    const env = { ...server.cliEnv, WARP_AGENT_CONFIG_FILE: defaults };
    const continued = await runOz(['agent', 'run-cloud', '--conversation', id, '-e', envId, '-p', 'echo conv-$((1+2))', '--follow'], env, { timeoutMs: 60_000 });
    expect(continued.stderr).toBe('');
    expect(continued.code).toBe(0);
    const lines = continued.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`Follow-up sent to the conversation of run ID: ${id}`);
    expect(lines[1]).toMatch(/ user: echo conv-\$\(\(1\+2\)\)$/);
    expect(continued.stdout).not.toMatch(/\] one$/m);
    expect(lines).toContainEqual(expect.stringMatching(/\] conv-3$/));
    expect(lines.at(-1)).toMatch(/state in-progress → succeeded/);

    // The same run, in its second execution; no run was created.
    expect(await runCount(server)).toBe(before);
    const run = await getRun(id);
    expect(run.executions.map((e) => e.state)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    expect(run.agent_config.name).toBeUndefined();
    expect(await output(id)).toBe('one\nconv-3\n');

    // A config flag the user passes goes, and the server refuses it naming the field.
    const refused = await runOz(['agent', 'run-cloud', '--conversation', id, '-p', 'echo x', '--model', 'auto'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('config.model_id: a run continuing a conversation keeps');
    const unknown = await oz('agent', 'run-cloud', '--conversation', UNKNOWN_RUN, '-p', 'echo x');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`conversation ${UNKNOWN_RUN} not found`);
    expect((await getRun(id)).executions).toHaveLength(2);
  });

  it('--branch and --idle-timeout: bad values are usage errors naming the flag; good ones reach the run config', async () => {
    const before = await runCount(waiting);
    for (const [args, message] of [
      [['--branch', 'main'], '--branch: must be REPO=REF with both sides non-empty (got "main")'],
      [['--branch', '=main'], '--branch: must be REPO=REF'],
      [['--branch', 'app='], '--branch: must be REPO=REF'],
      [['--branch', 'app=main', '--branch', 'app=dev'], '--branch: app is given twice'],
      [['--idle-timeout', '61'], '--idle-timeout: must be a whole number from 0 to 60 (got "61")'],
      [['--idle-timeout', '2.5'], '--idle-timeout: must be a whole number from 0 to 60'],
      [['--idle-timeout', 'soon'], '--idle-timeout: must be a whole number from 0 to 60'],
    ] as const) {
      const result = await ozWaiting('agent', 'run-cloud', '-p', 'x', ...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(`oz: ${message}`);
    }
    expect(await runCount(waiting)).toBe(before);

    const get = async (id: string): Promise<RunItem> => JSON.parse((await ozWaiting('run', 'get', id, '--output-format', 'json')).stdout) as RunItem;
    const idle = await ozWaiting('agent', 'run-cloud', '-p', 'x', '--idle-timeout', '5', '--output-format', 'text');
    expect(idle.code, idle.stderr).toBe(0);
    expect((await get(idle.stdout.trim())).agent_config.idle_timeout_minutes).toBe(5);
    const zero = await ozWaiting('agent', 'run-cloud', '-p', 'x', '--idle-timeout', '0', '--output-format', 'text');
    expect((await get(zero.stdout.trim())).agent_config.idle_timeout_minutes).toBe(0);

    // An environment with a repository (never cloned: no worker here): --branch names it by name, the run has it by URL.
    const repoEnv = (await ozWaiting('environment', 'create', '-n', 'with-repo', '-r', 'acme/app', '--output-format', 'text')).stdout.trim();
    const branched = await ozWaiting('agent', 'run-cloud', '-p', 'x', '-e', repoEnv, '--branch', 'app=release-2', '--output-format', 'text');
    expect(branched.code, branched.stderr).toBe(0);
    expect((await get(branched.stdout.trim())).agent_config.branches).toEqual({ 'https://github.com/acme/app.git': 'release-2' });
    const notOfEnv = await ozWaiting('agent', 'run-cloud', '-p', 'x', '-e', repoEnv, '--branch', 'other=main');
    expect(notOfEnv.code).toBe(1);
    expect(notOfEnv.stderr).toContain('config.branches: other is not a repository of the environment');

    const help = (await ozWaiting('agent', 'run-cloud', '--help')).stdout.replace(/\s+/g, ' ');
    expect(help).toContain('--branch <repo=ref> start a repository of the environment');
    expect(help).toContain('--idle-timeout <minutes> keep the sandbox alive');
    expect(help).toContain('--conversation <id> continue a conversation');
    const followupHelp = (await ozWaiting('run', 'followup', '--help')).stdout.replace(/\s+/g, ' ');
    expect(followupHelp).toContain('--prompt-file <path> read the message from this file (- for stdin)');
    expect(followupHelp).toContain('--follow stream');
  });
});
