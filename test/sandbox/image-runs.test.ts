import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxImage } from '../support/busybox-image.js';
import { makeBareRepo } from '../support/git-fixtures.js';
import { api, startOzServer, type OzServerHandle } from '../support/oz-server-process.js';
import { runEvents } from '../support/run-events.js';
import { startForgeDouble, type ForgeDouble } from '../support/forge-double.js';
import { until } from '../support/until.js';
import { startTestHost } from '../support/netns-host.js';
import { imageBackends } from '../support/container-engine.js';
import { push, TestRegistry } from '../worker/images/registry-fixture.js';

type Json = Record<string, unknown>;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'ERROR', 'CANCELLED'];
const BACKENDS = imageBackends();

/**
 * Runs on an environment's image, end to end (docs/sandboxes.md "Images"),
 * on each backend that runs images: a real `oz server` with its worker pulls a busybox image (no libc,
 * git or node in it) from a registry on 127.0.0.1; the platform clones and
 * publishes with its own git, setup installs as root into the run's layer,
 * the harness runs as the image's user with its Env.
 */
describe.each(BACKENDS)('runs on an image on the $backend backend', ({ backend, missing }) => {
  if (missing !== null) return void it.skip(`needs what this host lacks: ${missing}`, () => {});
  let dir = '';
  let registry: TestRegistry;
  let privateRegistry: TestRegistry;
  let privateImage = '';
  let workdirImage = '';
  let forge: ForgeDouble | undefined;
  let server: OzServerHandle;
  let appUrl = '';
  let image = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oz-image-runs-'));
    chmodSync(dir, 0o755);
    registry = await TestRegistry.start(join(dir, 'registry'));
    // A package for the image's own package manager (busybox's dpkg), made with Debian's dpkg-deb.
    const pkg = join(dir, 'pkg');
    mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
    mkdirSync(join(pkg, 'usr', 'bin'), { recursive: true });
    writeFileSync(
      join(pkg, 'DEBIAN', 'control'),
      'Package: oz-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: Oz tests <oz@example.test>\nDescription: a package setup installs\n',
    );
    writeFileSync(join(pkg, 'usr', 'bin', 'oz-hello'), '#!/bin/sh\necho "hello from a package, as $(id -u)"\n', { mode: 0o755 });
    execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(dir, 'oz-hello.deb')], { stdio: 'ignore' });
    const built = buildBusyboxImage(join(dir, 'image'), {
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'TOOLCHAIN=busybox-1'],
      user: 'dev',
      files: { '/opt/debs/oz-hello.deb': readFileSync(join(dir, 'oz-hello.deb')), '/var/lib/dpkg/status': '', '/var/lib/dpkg/info/.keep': '' },
    });
    image = `${registry.address}/oz-test/busybox:1`;
    push(built.reference, image);
    const withWorkdir = buildBusyboxImage(join(dir, 'workdir-image'), { workingDir: '/srv/app', files: { '/srv/app/here.txt': 'in the working directory\n' } });
    workdirImage = `${registry.address}/oz-test/busybox:workdir`;
    push(withWorkdir.reference, workdirImage);
    privateRegistry = await TestRegistry.start(join(dir, 'private-registry'), { username: 'oz', password: 'registry-pass-1' });
    privateImage = `${privateRegistry.address}/oz-test/private:1`;
    push(built.reference, privateImage, { username: 'oz', password: 'registry-pass-1' });
    const repos = join(dir, 'repos');
    appUrl = makeBareRepo(repos, 'app', { 'README.md': '# app\n' });
    const devcontainer = JSON.stringify({
      image,
      containerEnv: { FROM_DEVCONTAINER: 'yes' },
      remoteUser: 'dev',
      onCreateCommand: "mkdir -p /usr/local/bin && printf '#!/bin/sh\\necho devtool ran\\n' > /usr/local/bin/devtool && chmod 755 /usr/local/bin/devtool",
      postCreateCommand: ['sh', '-c', 'echo post-create ran > /tmp/post-create'],
    });
    forge = await startForgeDouble({ token: 'forge-token-unused', files: { 'acme/dev': { '.devcontainer/devcontainer.json': devcontainer } }, publicRepos: ['acme/dev'] });
    server = await startOzServer('sqlite', {
      args: ['--backend', backend],
      env: { OZ_FILE_REPO_ROOTS: repos, OZ_KILL_GRACE_MS: '500', OZ_GITHUB_API_URL: forge.apiUrl, OZ_REGISTRY_ALLOWED_HOSTS: '127.0.0.1,192.0.2.1' },
    });
  });
  afterAll(async () => {
    try {
      expect(await server?.stop()).toBe(0);
    } finally {
      await registry?.stop();
      await privateRegistry?.stop();
      await forge?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const createEnvironment = async (body: Json): Promise<string> => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: `env-${Math.random().toString(36).slice(2, 8)}`, ...body } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return (res.body as { uid: string }).uid;
  };
  const run = async (prompt: string, environmentId: string): Promise<{ run: Json; output: string; events: { type: string; data: Json }[] }> => {
    const res = await api(server, 'POST', '/api/v1/agent/runs', {
      key: server.adminKey,
      body: { prompt, config: { harness: { type: 'command' }, environment_id: environmentId } },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const id = (res.body as { run_id: string }).run_id;
    const result = await until(`run ${id} to end`, async () => {
      const body = (await api(server, 'GET', `/api/v1/agent/runs/${id}`, { key: server.adminKey })).body as Json;
      return TERMINAL.includes(String(body.state)) ? body : null;
    });
    const { events, output } = await runEvents(server.storeSpec, id);
    return { run: result, output, events };
  };

  it("runs setup as root and the harness as the image's user on the image's files, Env and toolchain, and publishes with the platform's git", async () => {
    const envId = await createEnvironment({
      docker_image: image,
      repos: [{ url: appUrl }],
      env: { FROM_ENVIRONMENT: 'env-wins' },
      setup_commands: [
        "mkdir -p /usr/local/bin && printf '#!/bin/sh\\necho mytool ran as $(id -u)\\n' > /usr/local/bin/mytool && chmod 755 /usr/local/bin/mytool",
        'echo "setup uid $(id -u)"',
      ],
    });
    const {
      run: result,
      output,
      events,
    } = await run(
      [
        'grep ^ID= /etc/os-release',
        'echo "TOOLCHAIN=$TOOLCHAIN FROM_ENVIRONMENT=$FROM_ENVIRONMENT"',
        'cat README.md',
        'mytool',
        'echo "harness uid $(id -u)"',
        'test -e /usr/bin/git || echo "no git in the image"',
        'echo "fds: $(ls /proc/self/fd | tr "\\n" " ")"',
        'echo "changed on the image" >> README.md',
      ].join(' && '),
      envId,
    );
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    expect(output).toContain('ID=oz-test-busybox');
    expect(output).toContain('TOOLCHAIN=busybox-1 FROM_ENVIRONMENT=env-wins');
    expect(output).toContain('# app');
    expect(output, output).toContain('mytool ran as 1000');
    const setupOutput = events
      .filter((e) => e.type === 'output' && e.data.phase === 'setup')
      .map((e) => String(e.data.text))
      .join('');
    expect(setupOutput).toContain('setup uid 0');
    expect(output).toContain('harness uid 1000');
    expect(output).toContain('no git in the image');
    // Nothing of the worker's: stdin, stdout, stderr and the listing's own.
    expect(output).toMatch(/^fds: 0 1 2 3 $/m);
    expect(events.some((e) => e.type === 'notice' && e.data.reason === 'image_ready')).toBe(true);
    expect(events.some((e) => e.type === 'notice' && e.data.reason === 'docker_image_not_applicable')).toBe(false);
    // The change was committed (by the platform: the image has no git) and pushed as the run's branch.
    expect((result.branches as unknown[] | undefined)?.length ?? 0).toBe(1);
  });

  it('an environment whose docker_image is not an image reference is refused where it is written, naming the field', async () => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'bad-image', docker_image: 'Not An Image!' } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('docker_image');
    expect(JSON.stringify(res.body)).toContain('is not an image reference');
  });

  it("without a repository, setup and the harness start in the image's WorkingDir", async () => {
    const { run: result, output } = await run(
      'echo "harness in $(pwd)"; cat /tmp/setup-pwd; cat here.txt',
      await createEnvironment({ docker_image: workdirImage, setup_commands: ['pwd > /tmp/setup-pwd'] }),
    );
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    expect(output).toContain('harness in /srv/app');
    expect(output).toMatch(/^\/srv\/app$/m);
    expect(output).toContain('in the working directory');
  });

  it("setup installs a package with the image's package manager (dpkg) as root, and the harness runs it as the image's user", async () => {
    const {
      run: result,
      output,
      events,
    } = await run('oz-hello && dpkg -l | grep oz-hello', await createEnvironment({ docker_image: image, setup_commands: ['dpkg -i /opt/debs/oz-hello.deb'] }));
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    expect(output).toContain('hello from a package, as 1000');
    expect(output).toMatch(/oz-hello\s+1\.0/);
    expect(events.some((e) => e.type === 'setup' && e.data.index === 0 && e.data.status === 'succeeded')).toBe(true);
  });

  it('a devcontainer.json with image, remoteUser and lifecycle commands becomes an environment that runs', async () => {
    const res = await api(server, 'POST', '/api/v1/agent/environments', {
      key: server.adminKey,
      body: { name: 'from-devcontainer', devcontainer: 'acme/dev', repos: [{ url: appUrl }] },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { run: result, output } = await run(
      'devtool && cat /tmp/post-create && echo "env=$FROM_DEVCONTAINER user=$(id -un)" && cat README.md',
      (res.body as { uid: string }).uid,
    );
    expect(result.state, JSON.stringify(result.status_message)).toBe('SUCCEEDED');
    expect(output).toContain('devtool ran');
    expect(output).toContain('post-create ran');
    expect(output).toContain('env=yes user=dev');
    expect(output).toContain('# app');
  });

  it('a private image pulls with a registry-auth secret, which no process of the run sees; without it the run fails clearly', async () => {
    const bad = await api(server, 'POST', '/api/v1/secrets', { key: server.adminKey, body: { name: 'BAD_REGISTRY', type: 'registry-auth', value: 'no-colon-in-it' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('username:password');
    const created = await api(server, 'POST', '/api/v1/secrets', {
      key: server.adminKey,
      body: { name: 'REGISTRY', type: 'registry-auth', value: `${privateRegistry.address}/oz:registry-pass-1` },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // Turning the credentials into a plain variable takes the value itself (a teammate cannot read it out that way).
    const retyped = await api(server, 'PATCH', '/api/v1/secrets/REGISTRY', { key: server.adminKey, body: { type: 'raw-value' } });
    expect(retyped.status).toBe(400);
    expect(JSON.stringify(retyped.body)).toContain('value');

    const withAuth = await run('env; echo "pulled the private image"', await createEnvironment({ docker_image: privateImage, secrets: ['REGISTRY'], setup_commands: ['env'] }));
    expect(withAuth.run.state, JSON.stringify(withAuth.run.status_message)).toBe('SUCCEEDED');
    expect(withAuth.output).toContain('pulled the private image');
    const everything = JSON.stringify(withAuth.events);
    expect(everything).not.toContain('registry-pass-1');
    expect(everything).not.toContain('REGISTRY=');

    // Credentials for one registry go to no other: an image elsewhere is pulled without them.
    const elsewhere = await run('true', await createEnvironment({ docker_image: image, secrets: ['REGISTRY'] }));
    expect(elsewhere.run.state, JSON.stringify(elsewhere.run.status_message)).toBe('SUCCEEDED');
    expect(elsewhere.events.some((e) => e.type === 'notice' && e.data.reason === 'registry_auth_other_registry')).toBe(true);

    // Another environment without the secret: the cached pull made with credentials is not its.
    const without = await run('true', await createEnvironment({ docker_image: privateImage }));
    expect(without.run.state).toBe('FAILED');
    expect(without.run.status_message).toMatchObject({ reason: 'image_pull_failed' });
    expect(String((without.run.status_message as Json).message)).toContain(privateImage);
  });

  it("runs the harness as the environment's agent_user instead of the image's USER, never as root, and names one the image lacks", async () => {
    const as4321 = await run('echo "uid $(id -u) gid $(id -g)"', await createEnvironment({ docker_image: image, agent_user: '4321:4322' }));
    expect(as4321.run.state, JSON.stringify(as4321.run.status_message)).toBe('SUCCEEDED');
    expect(as4321.output).toContain('uid 4321 gid 4322');
    const asRoot = await run('echo "uid $(id -u)"', await createEnvironment({ docker_image: image, agent_user: 'root' }));
    expect(asRoot.output).toContain('uid 1000');
    const unknown = await run('true', await createEnvironment({ docker_image: image, agent_user: 'nobody-here' }));
    expect(unknown.run.state).toBe('FAILED');
    expect(unknown.run.status_message).toMatchObject({ reason: 'image_config_invalid' });
    expect(String((unknown.run.status_message as Json).message)).toContain('nobody-here');
    const bad = await api(server, 'POST', '/api/v1/agent/environments', { key: server.adminKey, body: { name: 'bad-user', agent_user: 'a b' } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.body)).toContain('agent_user');
  });

  it('an image that does not exist fails the run image_pull_failed, naming it, without a hang', async () => {
    const missingImage = `${registry.address}/oz-test/nope:1`;
    const { run: result } = await run('true', await createEnvironment({ docker_image: missingImage }));
    expect(result.state).toBe('FAILED');
    expect(result.status_message).toMatchObject({ error_code: 'environment_setup_failed', reason: 'image_pull_failed' });
    expect(String((result.status_message as Json).message)).toContain(missingImage);
  });

  it('a registry on a loopback, private or link-local address the operator did not allow is refused before any connection, naming the setting', async () => {
    for (const reference of [`127.0.0.2:${registry.address.split(':')[1]}/oz-test/busybox:1`, '169.254.169.254/latest:1', '10.1.2.3:5000/x:1']) {
      const { run: result } = await run('true', await createEnvironment({ docker_image: reference }));
      expect(result.state).toBe('FAILED');
      expect(result.status_message).toMatchObject({ reason: 'image_pull_failed' });
      expect(String((result.status_message as Json).message)).toContain('OZ_REGISTRY_ALLOWED_HOSTS');
    }
  });

  it('a registry that is neither loopback nor listed in OZ_INSECURE_REGISTRIES is refused before any connection', async () => {
    const { run: result } = await run('true', await createEnvironment({ docker_image: 'http://192.0.2.1:5000/x:1' }));
    expect(result.state).toBe('FAILED');
    expect(result.status_message).toMatchObject({ reason: 'image_pull_failed' });
    expect(String((result.status_message as Json).message)).toMatch(/without TLS|OZ_INSECURE_REGISTRIES|insecure/);
  });

  it('on the image, setup as root and the harness meet the same egress rules: internal addresses refused under on, no route under allowlist', async () => {
    const host = await startTestHost();
    try {
      const probe = (label: string): string => `nc -w 3 ${host.address} ${host.tcpPort} </dev/null 2>/dev/null | grep -q hello && echo ${label}=reached || echo ${label}=closed`;
      const metadata = (label: string): string => `nc -w 3 169.254.169.254 80 </dev/null 2>/dev/null && echo ${label}=reached || echo ${label}=closed`;
      const on = await createEnvironment({ docker_image: image, network: 'on', setup_commands: [`echo "setup as $(id -u)"; ${probe('setup')}; ${metadata('setup-metadata')}`] });
      const refused = await run(`${probe('agent')}; ${metadata('agent-metadata')}`, on);
      const setupOutput = (events: { type: string; data: Json }[]): string =>
        events
          .filter((e) => e.type === 'output' && e.data.phase === 'setup')
          .map((e) => String(e.data.text))
          .join('');
      expect(refused.run.state, refused.output).toBe('SUCCEEDED');
      const setup = setupOutput(refused.events);
      expect(setup).toContain('setup as 0');
      for (const label of ['setup', 'setup-metadata']) expect(setup).toContain(`${label}=closed`);
      for (const label of ['agent', 'agent-metadata']) expect(refused.output).toContain(`${label}=closed`);
      // The same destination, allowed by an admin: the rules are what refused it.
      const allowed = await createEnvironment({ docker_image: image, network: 'on', allow_internal_ranges: [`${host.address}/32`] });
      expect((await run(probe('agent'), allowed)).output).toContain('agent=reached');
      const allowlist = await createEnvironment({ docker_image: image, network: 'allowlist', setup_commands: [probe('setup')] });
      const proxied = await run(`${probe('agent')}; echo "proxy=$HTTP_PROXY"`, allowlist);
      expect(setupOutput(proxied.events)).toContain('setup=closed');
      expect(proxied.output).toContain('agent=closed');
      expect(proxied.output).toContain('proxy=http://127.0.0.1:3128');
    } finally {
      await host.stop();
    }
  });
});
