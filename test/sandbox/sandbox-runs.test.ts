import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { makeBareRepo } from '../support/git-fixtures.js';
import { api, cleanEnv, OZ_BIN, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { until } from '../support/until.js';
import { engineReachable } from '../support/container-engine.js';
import { podmanMissing, startPodmanService, type PodmanService } from '../support/podman-service.js';
import { runEvents } from '../support/run-events.js';

type Json = Record<string, unknown>;
type SandboxBackendName = 'bwrap' | 'docker' | 'direct';

const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
/** Where each isolating backend keeps run directories (its default root under the OS temp dir). */
const SANDBOX_ROOTS: Record<SandboxBackendName, string> = {
  bwrap: join(tmpdir(), 'oz-sandboxes'),
  docker: join(tmpdir(), 'oz-containers'),
  direct: join(tmpdir(), 'oz-sandboxes'),
};
const PROBES = join(import.meta.dirname, '..', 'support', 'sandbox-probes');

function pidsWith(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The host directories of a run's sandbox (bwrap, docker), found by its id prefix. */
function runDirs(runId: string, root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root).flatMap((worker) => {
    try {
      return readdirSync(join(root, worker))
        .filter((name) => name.startsWith(`run-${runId}-`))
        .map((name) => join(root, worker, name));
    } catch {
      return [];
    }
  });
}

/** A run directory's workspace: in its own file system (`disk/`) where the worker makes one, else a plain directory. */
function workspaceOf(runDir: string | undefined): string | null {
  if (!runDir) return null;
  for (const path of [join(runDir, 'disk', 'workspace'), join(runDir, 'workspace')]) if (existsSync(path)) return path;
  return null;
}

function listen(host: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((socket) => socket.end('hello from the host\n'));
    server.listen(0, host, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

function externalIPv4(): string | null {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) if (address.family === 'IPv4' && !address.internal) return address.address;
  }
  return null;
}

/** Escape tests need the jail; on `direct` they are skipped with the reason printed. */
function jailOnly(backend: SandboxBackendName, ctx: TestContext): void {
  if (backend === 'direct') {
    console.log(`skipped on direct: "${ctx.task.name}" tests isolation, and the direct backend has none by design`);
    ctx.skip();
  }
}

/** Each suite: a backend, and for the docker backend which engine serves its API (Docker's own, or Podman's). */
type Suite = SandboxBackendName | 'docker on podman';
const SUITES: Suite[] = ['bwrap', 'direct', ...(engineReachable() ? (['docker'] as const) : []), ...(podmanMissing() === null ? (['docker on podman'] as const) : [])];
if (!SUITES.includes('docker')) console.log('the docker backend suite is skipped: no container engine answers (start dockerd, or set DOCKER_HOST)');
if (!SUITES.includes('docker on podman')) console.log(`the docker backend suite on Podman's API is skipped: ${podmanMissing()}`);

describe.each(SUITES)('sandboxed runs on the %s backend', (suite) => {
  const backend: SandboxBackendName = suite === 'docker on podman' ? 'docker' : suite;
  let podman: PodmanService | null = null;
  const SANDBOX_ROOT = SANDBOX_ROOTS[backend];
  const runDirsOf = (runId: string): string[] => runDirs(runId, SANDBOX_ROOT);
  let server: OzServerHandle;
  let fixtures: string;
  let appUrl: string;
  const listeners: Server[] = [];

  beforeAll(async () => {
    fixtures = mkdtempSync(join(tmpdir(), 'oz-fixtures-'));
    chmodSync(fixtures, 0o755);
    appUrl = makeBareRepo(fixtures, 'app', { 'README.md': '# app\n', 'src/main.txt': 'main\n' }, { feature: { 'FEATURE.md': 'the feature branch\n' } });
    if (suite === 'docker on podman') podman = await startPodmanService();
    server = await startOzServer('sqlite', {
      args: ['--backend', backend],
      env: {
        OZ_FILE_REPO_ROOTS: fixtures,
        // These probes find a run's sandbox directory by its run id, which a spare's does not carry (test/sandbox/spare-runs.test.ts covers spares).
        OZ_SPARE_SANDBOXES: '0',
        OZ_TEAM_MAX_CONCURRENT_RUNS: '20',
        OZ_KILL_GRACE_MS: '500',
        OZ_WORKER_CONCURRENCY: '4',
        ...(podman ? { DOCKER_HOST: podman.dockerHost } : {}),
      },
    });
  });
  afterAll(async () => {
    for (const listener of listeners) listener.close();
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await podman?.stop();
      rmSync(fixtures, { recursive: true, force: true });
    }
  });

  const createEnvironment = async (body: Json, key = server.adminKey): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key, body: { name: `env-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const getEnvironment = async (id: string): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/environments/${id}`, { key: server.adminKey })).body as Json;
  const start = async (prompt: string, environmentId?: string, key = server.adminKey): Promise<string> => {
    const config: Json = { harness: { type: 'command' }, ...(environmentId ? { environment_id: environmentId } : {}) };
    const res = await api(server, 'POST', '/api/v1/agent/runs', { key, body: { prompt, config } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { run_id: string }).run_id;
  };
  const getRun = async (id: string, key = server.adminKey): Promise<Json> => (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key })).body as Json;
  const finished = async (id: string, key = server.adminKey): Promise<Json> =>
    until(`run ${id} to end`, async () => {
      const run = await getRun(id, key);
      return TERMINAL.includes(String(run.state)) ? run : null;
    });
  const run = async (prompt: string, environmentId?: string, key = server.adminKey): Promise<{ id: string; run: Json; output: string; events: { type: string; data: Json }[] }> => {
    const id = await start(prompt, environmentId, key);
    const result = await finished(id, key);
    const { events, output } = await runEvents(server.storeSpec, id);
    return { id, run: result, output, events };
  };
  const cancel = async (id: string): Promise<void> => {
    const res = await api(server, 'POST', `/api/v1/agent/runs/${id}/cancel`, { key: server.adminKey });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  };

  describe('provisioning', () => {
    it('clones the repository at its branch, runs the setup commands in order in it, and hands the harness the repository and its variables', async () => {
      // With one repository, setup and the harness start in its directory (HOME is the workspace).
      const envId = await createEnvironment({
        repos: [{ url: appUrl, branch: 'feature' }],
        setup_commands: ['echo "setup one" && echo one > one.txt', 'echo "setup two in $(pwd)" && [ "$(pwd)" = "$HOME/app" ] && touch built.flag'],
        env: { GREETING: 'hello' },
      });
      const {
        id,
        run: result,
        output,
      } = await run(
        [
          '[ "$(pwd)" = "$HOME/app" ] && echo "harness in the repository"',
          'cat FEATURE.md README.md one.txt',
          'test -f built.flag && echo built',
          'echo "run=$OZ_RUN_ID warp=$WARP_RUN_ID env=$OZ_ENVIRONMENT_ID harness=$OZ_HARNESS greeting=$GREETING"',
          'git rev-parse --abbrev-ref HEAD',
          'git remote get-url origin',
        ].join('\n'),
        envId,
      );
      expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
      expect(output).toContain('harness in the repository\nthe feature branch\n# app\none\nbuilt\n');
      expect(output).toContain(`run=${id} warp=${id} env=${envId} harness=command greeting=hello`);
      expect(output).toContain('feature\n');
      expect(output).toContain(`${appUrl}\n`);

      // The conversation: the clone and both setup commands (with their output), then the harness's output.
      const conversation = (await api(server, 'GET', `/api/v1/agent/runs/${id}/conversation`, { key: server.adminKey })).body as {
        steps: { messages: { content: { type: string; name?: string; input?: { command?: string }; data?: { text?: string; phase?: string } }[] }[] }[];
      };
      const blocks = conversation.steps.flatMap((s) => s.messages.flatMap((m) => m.content));
      const at = (match: (b: (typeof blocks)[number]) => boolean): number => blocks.findIndex(match);
      const clone = at((b) => b.type === 'action' && String(b.input?.command).startsWith('git clone --branch feature'));
      const setupOne = at((b) => b.type === 'action' && String(b.input?.command).startsWith('echo "setup one"'));
      const setupOneOutput = at((b) => String(b.data?.text).includes('setup one') && b.data?.phase === 'setup');
      const setupTwoOutput = at((b) => /setup two in \/\S*\/app\n/.test(String(b.data?.text)) && b.data?.phase === 'setup');
      const harnessOutput = at((b) => String(b.data?.text).includes('the feature branch') && b.data?.phase === 'harness');
      expect(
        [clone, setupOne, setupOneOutput, setupTwoOutput, harnessOutput].every((i) => i >= 0),
        JSON.stringify(blocks),
      ).toBe(true);
      expect(clone).toBeLessThan(setupOne);
      expect(setupOne).toBeLessThan(setupOneOutput);
      expect(setupOneOutput).toBeLessThan(setupTwoOutput);
      expect(setupTwoOutput).toBeLessThan(harnessOutput);
      expect((await getEnvironment(envId)).setup_failed).toBe(false);
    });

    it('with two repositories, setup and the harness start in the workspace, which holds both', async () => {
      const libUrl = makeBareRepo(fixtures, 'lib', { 'lib.txt': 'lib\n' });
      const envId = await createEnvironment({ repos: [{ url: appUrl }, { url: libUrl }], setup_commands: ['[ "$(pwd)" = "$HOME" ] && echo "setup in the workspace" > setup.txt'] });
      const { run: result, output } = await run('[ "$(pwd)" = "$HOME" ] && echo "harness in the workspace"; cat setup.txt app/README.md lib/lib.txt', envId);
      expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
      expect(output).toContain('harness in the workspace\nsetup in the workspace\n# app\nlib\n');
    });

    it('a failing setup command ends the run FAILED environment_setup_failed naming it with its output, and marks the environment until a setup succeeds', async () => {
      const envId = await createEnvironment({ setup_commands: ['echo preparing', 'echo "cannot build: missing thing" >&2; exit 3', 'echo never'] });
      const { run: result, output, events } = await run('echo harness-ran', envId);
      expect(result.state).toBe('FAILED');
      expect(result.status_message).toMatchObject({ error_code: 'environment_setup_failed', reason: 'echo "cannot build: missing thing" >&2; exit 3' });
      const message = String((result.status_message as Json).message);
      expect(message).toContain('Setup command 2 `echo "cannot build: missing thing" >&2; exit 3` exited with code 3.');
      expect(message).toContain('cannot build: missing thing');
      expect(output).toBe('');
      expect(events.filter((e) => e.type === 'setup').map((e) => `${String(e.data.index)}:${String(e.data.status)}`)).toEqual([
        '0:started',
        '0:succeeded',
        '1:started',
        '1:failed',
      ]);
      expect(result.started_at ?? null).toBeNull(); // the harness never started
      expect((await getEnvironment(envId)).setup_failed).toBe(true);

      const patched = await api(server, 'PATCH', `/api/v1/agent/environments/${envId}`, { key: server.adminKey, body: { setup_commands: ['true'] } });
      expect(patched.status).toBe(200);
      expect((await run('echo fixed', envId)).run.state).toBe('SUCCEEDED');
      expect((await getEnvironment(envId)).setup_failed).toBe(false);
    });

    it('a branch that does not exist, or a repository outside the allowed roots, fails setup with a clear message', async () => {
      const noBranch = await run('true', await createEnvironment({ repos: [{ url: appUrl, branch: 'nope' }] }));
      expect(noBranch.run.state).toBe('FAILED');
      expect(noBranch.run.status_message).toMatchObject({ error_code: 'environment_setup_failed' });
      expect(String((noBranch.run.status_message as Json).message)).toContain(`Could not check out branch nope of ${appUrl}`);

      const elsewhere = mkdtempSync(join(tmpdir(), 'oz-outside-'));
      try {
        const outsideUrl = makeBareRepo(elsewhere, 'outside', { 'x.txt': 'x\n' });
        const outside = await run('true', await createEnvironment({ repos: [{ url: outsideUrl }] }));
        expect(outside.run.state).toBe('FAILED');
        expect(outside.run.status_message).toMatchObject({ error_code: 'environment_setup_failed', reason: 'repository_fetch_failed' });
        expect(String((outside.run.status_message as Json).message)).toContain('outside OZ_FILE_REPO_ROOTS');
      } finally {
        rmSync(elsewhere, { recursive: true, force: true });
      }
    });

    it('on direct, says docker_image does not apply and that nothing is isolated, instead of ignoring it', async (ctx) => {
      // On bwrap the image is pulled and is the sandbox's root: test/sandbox/image-runs.test.ts (from a registry on loopback).
      if (backend !== 'direct') ctx.skip();
      const { run: result, events } = await run('true', await createEnvironment({ docker_image: 'node:20' }));
      expect(result.state).toBe('SUCCEEDED');
      const reasons = events.filter((e) => e.type === 'notice').map((e) => e.data.reason);
      expect(reasons).toContain('docker_image_not_applicable');
      expect(reasons).toContain('not_isolated');
    });

    it("team B cannot obtain team A's private repository through the mirror", async () => {
      const privateUrl = makeBareRepo(fixtures, 'private', { 'SECRET.md': 'team A only\n' });
      const teamA = await newTeamKey();
      const teamB = await newTeamKey();
      const a = await run('cat SECRET.md', await createEnvironment({ repos: [{ url: privateUrl }] }, teamA), teamA);
      expect(a.run.state).toBe('SUCCEEDED');
      expect(a.output).toContain('team A only');
      // Team B has no access to the origin (here: it is gone); team A's mirror must not stand in for it.
      const path = privateUrl.slice('file://'.length);
      renameSync(path, `${path}.gone`);
      try {
        const b = await run('cat SECRET.md', await createEnvironment({ repos: [{ url: privateUrl }] }, teamB), teamB);
        expect(b.run.state).toBe('FAILED');
        expect(b.run.status_message).toMatchObject({ error_code: 'environment_setup_failed', reason: 'repository_fetch_failed' });
        expect(b.output).not.toContain('team A only');
      } finally {
        renameSync(`${path}.gone`, path);
      }
      if (backend === 'bwrap') {
        // Only the run's own mirror is bound in: nothing else of the cache is visible.
        const c = await run('ls /oz/mirrors; ls /oz; test -S /oz/support/sock && echo sock', await createEnvironment({ repos: [{ url: appUrl }] }, teamB), teamB);
        expect(c.output).toBe('0\nbin\nharness-support.mjs\ninit.mjs\nmirrors\nsupport\ntools\nsock\n');
      }
    });
  });

  async function newTeamKey(): Promise<string> {
    const name = `team-${Math.random().toString(36).slice(2, 10)}`;
    const team = await api(server, 'POST', '/api/v1/admin/teams', { key: server.adminKey, body: { name } });
    expect(team.status).toBe(201);
    const user = await api(server, 'POST', '/api/v1/admin/users', { key: server.adminKey, body: { email: `${name}@example.test`, team: name } });
    const userId = (user.body as { uid: string }).uid;
    const key = await api(server, 'POST', `/api/v1/admin/users/${userId}/api-keys`, { key: server.adminKey, body: { name: 'k' } });
    return (key.body as { key: string }).key;
  }

  describe('escape attempts', () => {
    it('cannot see the host: not the data dir, a home, a world-readable host file, or the sandbox root; no inherited descriptors', async (ctx) => {
      jailOnly(backend, ctx);
      const dataDir = dirname((server.storeSpec as { file: string }).file);
      const hostDir = mkdtempSync(join(tmpdir(), 'oz-host-'));
      chmodSync(hostDir, 0o755);
      writeFileSync(join(hostDir, 'visible-on-host.txt'), 'host secret\n', { mode: 0o644 });
      try {
        const { run: result, output } = await run(
          [
            `ls ${dataDir} >/dev/null 2>&1 && echo data=visible || echo data=hidden`,
            `cat ${hostDir}/visible-on-host.txt 2>/dev/null || echo hostfile=hidden`,
            'ls /root /home 2>/dev/null | grep -q . && echo home=visible || echo home=hidden',
            `ls ${SANDBOX_ROOT} >/dev/null 2>&1 && echo sandboxes=visible || echo sandboxes=hidden`,
            'echo "fds=$(ls /proc/self/fd | tr "\\n" " ")"',
          ].join('\n'),
        );
        expect(result.state).toBe('SUCCEEDED');
        expect(output).toContain('data=hidden');
        expect(output).toContain('hostfile=hidden');
        expect(output).not.toContain('host secret');
        expect(output).toContain('home=hidden');
        expect(output).toContain('sandboxes=hidden');
        // ls itself holds one more descriptor (its directory); nothing beyond stdio is inherited.
        expect(output, output).toMatch(/fds=0 1 2 3 \n/);
      } finally {
        rmSync(hostDir, { recursive: true, force: true });
      }
    });

    it('cannot write or remount /usr, has no capabilities, cannot unshare, and sees only its own few processes', async (ctx) => {
      jailOnly(backend, ctx);
      const { output } = await run(
        [
          'touch /usr/oz-escape 2>/dev/null && echo usr=writable || echo usr=readonly',
          'mount -o remount,rw /usr 2>/dev/null && echo remount=ok || echo remount=refused',
          'touch /oz-root 2>/dev/null && echo root=writable || echo root=readonly',
          'grep CapEff /proc/self/status',
          'unshare -U true 2>/dev/null && echo userns=ok || echo userns=refused',
          'unshare -r true 2>/dev/null && echo rootns=ok || echo rootns=refused',
          'echo "pids=$(ls /proc | grep -c "^[0-9]")"',
          'echo "whoami=$(whoami) uid=$(id -u) home=$HOME"',
          'awk "BEGIN { print \\"awk=ok\\" }"',
          "node -e \"console.log('node user=' + require('os').userInfo().username)\"",
          'echo "slash=$(ls / | tr "\\n" " ")"',
          `awk '$5 == "/usr" || $5 == "/" { print "mount " $5 " " $6 }' /proc/self/mountinfo`,
          'for fd in /proc/1/fd/* /proc/$(pgrep -o -f /oz/init.mjs)/fd/*; do echo "fd $(readlink $fd)"; done',
        ].join('\n'),
      );
      expect(output).toContain('usr=readonly');
      expect(output).toContain('remount=refused');
      expect(output).toContain('root=readonly');
      expect(output).toMatch(/CapEff:\s+0000000000000000/);
      expect(output).toContain('userns=refused');
      expect(output).toContain('rootns=refused');
      const pids = Number(/pids=(\d+)/.exec(output)?.[1]);
      expect(pids).toBeGreaterThan(0);
      expect(pids).toBeLessThan(30);
      // bwrap maps the agent to uid 1000 in its own user namespace; the engine maps none, so the run's own (random, non-root) host uid shows.
      if (backend === 'docker') expect(output).toMatch(/whoami=agent uid=[1-9]\d* home=\/workspace/);
      else expect(output).toContain('whoami=agent uid=1000 home=/workspace');
      expect(output).toContain('awk=ok');
      expect(output).toContain('node user=agent');
      expect(existsSync('/usr/oz-escape')).toBe(false);
      // The whole root, exactly: the system dirs this host has, and the sandbox's own.
      const system = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'].filter((name) => existsSync(`/${name}`));
      // A container also has the engine's read-only /sys.
      // Podman also makes /run and /var.
      const own = ['dev', 'etc', 'oz', 'proc', 'tmp', 'usr', 'workspace', ...(backend === 'docker' ? ['sys'] : []), ...(podman ? ['run', 'var'] : [])];
      expect(/slash=(.*)/.exec(output)?.[1]?.trim().split(' ')).toEqual([...system, ...own].sort());
      expect(output).toMatch(/^mount \/ ro,/m);
      expect(output).toMatch(/^mount \/usr ro,/m);
      // Pid 1 (bwrap, or the container's tini) and the init hold only sockets, pipes and kernel objects: no host file or directory.
      const targets = [...output.matchAll(/^fd (.*)$/gm)].map((m) => m[1] as string);
      expect(targets.length).toBeGreaterThan(3);
      for (const target of targets) expect(target).toMatch(/^(socket|pipe|anon_inode):|^\/dev\/null$/);
    });

    it("cannot attach to the sandbox's init or reach the host's keyrings: the seccomp filter refuses ptrace, process_vm_readv, keyctl, bpf, io_uring and AF_VSOCK", async (ctx) => {
      jailOnly(backend, ctx);
      const probe = readFileSync(join(PROBES, 'syscalls.py'), 'utf8');
      const { run: result, output } = await run(`python3 - <<'PY'\n${probe}PY\n`);
      expect(result.state, output).toBe('SUCCEEDED');
      expect(output).toBe(
        ['ptrace', 'process_vm_readv', 'keyctl', 'bpf', 'io_uring_setup', 'vsock'].map((call) => `${call}=Operation not permitted\n`).join('') + 'getppid=ok\nunix_socket=ok\n',
      );
    });

    it('runs as a non-root host uid, and another run can neither read its workspace nor see its processes', async (ctx) => {
      jailOnly(backend, ctx);
      const a = await start('echo "for A only" > a-marker.txt; sleep 3018');
      const [pid] = await until('run A to be running', () => (pidsWith('sleep 3018').length > 0 ? pidsWith('sleep 3018') : null));
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number) ?? [];
      expect(uids).toHaveLength(4);
      for (const uid of uids) expect(uid).toBeGreaterThan(0);
      const workspace = await until('run A workspace', () => workspaceOf(runDirsOf(a)[0]));
      await until('the marker', () => existsSync(join(workspace, 'a-marker.txt')));
      // A second run at the same time: its own host uid, and both workspaces closed to others.
      const c = await start('sleep 3020');
      const other = await until('run C workspace', () => workspaceOf(runDirsOf(c)[0]));
      const [mine, theirs] = [statSync(workspace), statSync(other)];
      expect(mine.uid).toBe(uids[0]);
      expect(theirs.uid).toBeGreaterThan(0);
      expect(theirs.uid).not.toBe(mine.uid);
      expect(mine.mode & 0o777).toBe(0o700);
      expect(theirs.mode & 0o777).toBe(0o700);
      await cancel(c);

      const b = await run([`cat ${workspace}/a-marker.txt 2>/dev/null || echo workspace=hidden`, 'ps ax -o args | grep -c "[s]leep 3018"', 'ls /workspace'].join('\n'));
      expect(b.output).toContain('workspace=hidden');
      expect(b.output).not.toContain('for A only');
      expect(b.output).toContain('0\n');
      expect(b.output).not.toContain('a-marker.txt');
      await cancel(a);
      expect((await finished(a)).state).toBe('CANCELLED');
      await until('no process of run A', () => pidsWith('sleep 3018').length === 0);
    });

    it('cannot read a root-owned 0600 file bound into it', async (ctx) => {
      jailOnly(backend, ctx);
      const envId = await createEnvironment({ repos: [{ url: appUrl }] });
      expect((await run('true', envId)).run.state).toBe('SUCCEEDED');
      // The mirror (bound read-only into the run) gets a root-only file.
      const cache = join(dirname(dirname((server.storeSpec as { file: string }).file)), 'cache', 'mirrors');
      const mirrors = readdirSync(cache).flatMap((team) => readdirSync(join(cache, team)).map((m) => join(cache, team, m)));
      for (const mirror of mirrors) writeFileSync(join(mirror, 'root-only'), 'root secret\n', { mode: 0o600 });
      const { output } = await run('cat /oz/mirrors/0/root-only 2>&1; cat /oz/mirrors/0/HEAD', envId);
      expect(output).toContain('Permission denied');
      expect(output).not.toContain('root secret');
      expect(output).toContain('ref: refs/heads/main');
    });

    it('with network off, cannot reach a listener on the host, on loopback or elsewhere', async (ctx) => {
      jailOnly(backend, ctx);
      const loopback = await listen('127.0.0.1');
      const any = await listen('0.0.0.0');
      listeners.push(loopback.server, any.server);
      const external = externalIPv4() ?? '127.0.0.1';
      const { output } = await run(
        [
          `timeout 3 bash -c 'cat < /dev/tcp/127.0.0.1/${loopback.port}' 2>/dev/null || echo loopback=closed`,
          `timeout 3 bash -c 'cat < /dev/tcp/${external}/${any.port}' 2>/dev/null || echo external=closed`,
          'echo "links=$(cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " " | tr "\\n" " ")"',
        ].join('\n'),
      );
      expect(output).toContain('loopback=closed');
      expect(output).toContain('external=closed');
      expect(output).not.toContain('hello from the host');
      expect(output).toContain('links=lo \n');
    });

    it('with network on, reaches out but still not the host loopback, nor the host itself unless an admin allows its address', async (ctx) => {
      jailOnly(backend, ctx);
      const loopback = await listen('127.0.0.1');
      const any = await listen('0.0.0.0');
      listeners.push(loopback.server, any.server);
      const external = externalIPv4();
      // The host's own address is an internal one (private, or here a documentation range): refused by default.
      const envId = await createEnvironment({ network: 'on', ...(external ? { allow_internal_ranges: [`${external}/32`] } : {}) });
      const refusedEnv = await createEnvironment({ network: 'on' });
      const { run: result, output } = await run(
        [
          `timeout 3 bash -c 'cat < /dev/tcp/127.0.0.1/${loopback.port}' 2>/dev/null || echo loopback=closed`,
          `timeout 3 bash -c 'cat < /dev/tcp/10.0.2.2/${loopback.port}' 2>/dev/null || echo gateway=closed`,
          ...(external ? [`timeout 5 bash -c 'cat < /dev/tcp/${external}/${any.port}' && echo outbound=open`] : []),
          'cat /etc/resolv.conf',
        ].join('\n'),
        envId,
      );
      expect(result.state).toBe('SUCCEEDED');
      expect(output).toContain('loopback=closed');
      expect(output).toContain('gateway=closed');
      if (external) {
        const refused = await run(`timeout 5 bash -c 'cat < /dev/tcp/${external}/${any.port}' 2>/dev/null || echo host=closed`, refusedEnv);
        expect(refused.output).toContain('host=closed');
        expect(refused.output).not.toContain('hello from the host');
      }
      // bwrap's slirp4netns answers DNS itself; a container has the engine's resolver (and its bridge's gateway is
      // the host: the egress policy is what refuses private addresses there).
      if (backend === 'bwrap') expect(output).toContain('nameserver 10.0.2.3');
      else expect(output).toMatch(/^nameserver /m);
      if (external) expect(output).toContain('hello from the host\noutbound=open');
      else console.log('no non-loopback IPv4 on this host: outbound reachability not checked');
    });

    it("with network on, one run cannot reach another run's listener", async (ctx) => {
      jailOnly(backend, ctx);
      const envId = await createEnvironment({ network: 'on' });
      const serve = "import socket; s = socket.socket(); s.bind(('0.0.0.0', 8765)); s.listen(); print('listening', flush=True); c, _ = s.accept(); c.sendall(b'secret of run A')";
      const a = await api(server, 'POST', '/api/v1/agent/runs', {
        key: server.adminKey,
        body: {
          prompt: `hostname -I | tr ' ' '\\n' | grep -v '^$' | sed 's/^/address=/'; timeout 60 python3 -c "${serve}"`,
          config: { harness: { type: 'command' }, environment_id: envId },
        },
      });
      const aId = (a.body as { run_id: string }).run_id;
      const address = await until('run A to listen', async () => {
        const { output } = await runEvents(server.storeSpec, aId);
        return output.includes('listening') ? (/address=(\S+)/.exec(output)?.[1] ?? null) : null;
      });
      const b = await run(`timeout 5 bash -c 'cat < /dev/tcp/${address}/8765' 2>/dev/null || echo reached=no`, envId);
      expect(b.output).toContain('reached=no');
      expect(b.output).not.toContain('secret of run A');
      await cancel(aId);
    });

    it('leaves no process behind when the run ends, even one in its own session', async (ctx) => {
      jailOnly(backend, ctx);
      const { id, run: result } = await run('setsid sleep 3019 </dev/null >/dev/null 2>&1 &\necho started');
      expect(result.state).toBe('SUCCEEDED');
      await until('the detached process to be gone', () => pidsWith('sleep 3019').length === 0, 10_000);
      await until('the workspace to be removed', () => runDirsOf(id).length === 0, 10_000);
    });
  });

  describe('setup-only secrets and restarts', () => {
    it('a setup-only secret reaches setup only: the harness runs under a new init, and no process it can read holds the value', async (ctx) => {
      jailOnly(backend, ctx);
      const value = `setup-only-${Math.random().toString(36).slice(2, 10)}`;
      const name = `SETUP_ONLY_${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
      const created = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name, value, setup_only: true } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      // The init is the parent of every exec; its start time tells one init from the next.
      const initStart = "cut -d' ' -f22 /proc/$PPID/stat";
      const envId = await createEnvironment({ secrets: [name], setup_commands: [`test -n "$${name}" && echo "setup has it"`, `${initStart} > /tmp/setup-init`, 'sleep 4321 &'] });
      const {
        run: result,
        output,
        events,
      } = await run(
        [
          `echo "harness=[\${${name}:-}]"`,
          // Split, so the prompt (in the harness's own environment) does not hold the value itself.
          `echo "holders=$(grep -l -a "$(printf "%s%s" "${value.slice(0, 8)}" "${value.slice(8)}")" /proc/[0-9]*/environ 2>/dev/null | wc -l)"`,
          'echo "sleepers=$(ps ax -o args | grep -c "[s]leep 4321")"',
          `test "$(cat /tmp/setup-init)" = "$(${initStart})" && echo init=same || echo init=new`,
        ].join('\n'),
        envId,
      );
      expect(result.state, output).toBe('SUCCEEDED');
      expect(events.some((e) => e.type === 'output' && String(e.data.text).includes('setup has it'))).toBe(true);
      expect(output).toBe('harness=[]\nholders=0\nsleepers=0\ninit=new\n');
    });

    it('cancelling a run mid-command ends it CANCELLED and leaves nothing of it running', async () => {
      const id = await start('echo started; sleep 3022');
      await until('the command to run', async () => ((await runEvents(server.storeSpec, id)).output.includes('started') ? true : null));
      await cancel(id);
      expect((await finished(id)).state).toBe('CANCELLED');
      await until('no process of the run', () => pidsWith('sleep 3022').length === 0, 10_000);
      if (backend !== 'direct') await until('its directory to be removed', () => runDirsOf(id).length === 0, 10_000);
    });
  });

  describe('limits', () => {
    it('a flood of output ends that run FAILED output_limit_exceeded, and the worker carries on', async () => {
      const envId = await createEnvironment({ limits: { output_mb: 1 } });
      const { run: result } = await run('yes "a line of output that repeats forever"', envId);
      expect(result.state).toBe('FAILED');
      expect(result.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'output_limit_exceeded' });
      expect((await run('echo still here')).output).toBe('still here\n');
    });

    it('a fork bomb ends that run FAILED pids_limit_exceeded, not the worker', async (ctx) => {
      jailOnly(backend, ctx);
      const envId = await createEnvironment({ limits: { pids: 64 } });
      const { run: result } = await run('bomb() { bomb | bomb & }; bomb; sleep 30', envId);
      expect(result.state).toBe('FAILED');
      expect(result.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'pids_limit_exceeded' });
      expect((await run('echo still here')).output).toBe('still here\n');
    });

    it('memory and disk limits end the run FAILED with the limit named, and the workspace is removed', async (ctx) => {
      jailOnly(backend, ctx);
      const memory = await run('head -c 2G /dev/zero | tail -n 1 > /dev/null; sleep 5', await createEnvironment({ limits: { memory_mb: 128 } }));
      expect(memory.run.state).toBe('FAILED');
      expect(memory.run.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'memory_limit_exceeded' });
      const disk = await run('head -c 20M /dev/zero > a; head -c 20M /dev/zero > b; sleep 30', await createEnvironment({ limits: { disk_mb: 32 } }));
      expect(disk.run.state).toBe('FAILED');
      expect(disk.run.status_message).toMatchObject({ error_code: 'budget_exceeded', reason: 'disk_limit_exceeded' });
      expect(runDirsOf(disk.id)).toEqual([]);
    });
  });
});

describe('a host without bubblewrap', () => {
  it('the worker refuses to start with one line naming the fix', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'oz-nopath-'));
    mkdirSync(join(empty, 'bin'));
    try {
      const child = spawn(process.execPath, [OZ_BIN, 'worker', '--server', 'http://127.0.0.1:9', '--token', 'x'], {
        env: { ...cleanEnv(), PATH: join(empty, 'bin'), OZ_CACHE_DIR: join(empty, 'cache') },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(stderr.trim().split('\n')).toHaveLength(1);
      expect(stderr).toContain('bubblewrap (bwrap) is not installed: install it (apt-get install bubblewrap) or run with --backend direct');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
