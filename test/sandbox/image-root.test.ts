import { chmodSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BwrapBackend, bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { mountsUnder } from '../../src/sandbox/reap.js';
import type { Sandbox, SandboxSpec } from '../../src/sandbox/sandbox-backend.js';
import { buildBusyboxImage, busyboxImageMissing } from '../support/busybox-image.js';
import { INIT_SCRIPT, WATCHDOG_SCRIPT } from '../support/sandbox-holder.js';

const MIB = 1024 * 1024;

/** The first file named `name` under `dir` (the host's view of a run's layer). */
function findUnder(dir: string, name: string): string | null {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name === name) return path;
    // Not into the run's mounted root: the layer itself is what the host sees.
    if (entry.isDirectory() && entry.name !== 'root' && entry.name !== 'lower') {
      const found = findUnder(path, name);
      if (found) return found;
    }
  }
  return null;
}
const asRoot = process.getuid?.() === 0;
const missing = bwrapInstalled() && asRoot ? busyboxImageMissing() : 'needs bwrap and a root worker';

/**
 * A sandbox on an image root (docs/sandboxes.md "Images"): a busybox image
 * with no libc, git or node. The image's files are its own, setup runs as
 * root inside and writes only the run's layer, the harness runs as the
 * image's user, and the platform's node and git still work.
 */
describe.skipIf(missing !== null)('a bwrap sandbox on an image root', () => {
  let root = '';
  let backend: BwrapBackend;
  let rootfs = '';
  const sandboxes: Sandbox[] = [];
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'oz-image-root-'));
    chmodSync(root, 0o711);
    rootfs = join(buildBusyboxImage(join(root, 'image'), { files: { '/opt/tool/version': 'busybox-toolchain 1\n' } }).bundle, 'rootfs');
    backend = await BwrapBackend.open({ root: join(root, 'sandboxes'), initScript: INIT_SCRIPT, watchdogScript: WATCHDOG_SCRIPT });
  });
  afterAll(async () => {
    for (const sandbox of sandboxes) await sandbox.destroy();
    backend?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const create = async (overrides: Partial<SandboxSpec> = {}): Promise<Sandbox> => {
    const sandbox = await backend.create({
      runId: 'image',
      network: 'off',
      limits: { pids: 64, memoryBytes: 256 * MIB, diskBytes: 64 * MIB },
      mounts: [],
      image: { rootDir: rootfs, agentUid: 1000, agentGid: 1000 },
      phase: 'setup',
      onLimit: () => {},
      ...overrides,
    });
    sandboxes.push(sandbox);
    return sandbox;
  };
  const sh = async (sandbox: Sandbox, script: string, env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> => {
    let out = '';
    const result = await sandbox.exec(['/bin/sh', '-c', script], { env: { PATH: '/bin', ...env }, onOutput: (_s, chunk) => (out += chunk.toString()) });
    return { code: result.exitCode, out };
  };

  it("sees the image's files, not the host's; setup is root inside, writes the run's layer only, and the harness uses what it installed", async () => {
    const sandbox = await create();
    const setup = await sh(
      sandbox,
      'cat /etc/os-release; id -u; test -e /usr/bin/git && echo HOST-GIT; mkdir -p /usr/local/bin && printf "#!/bin/sh\\necho tool ran as \\$(id -u)\\n" > /usr/local/bin/tool && chmod 755 /usr/local/bin/tool && echo installed',
    );
    expect(setup.out).toContain('ID=oz-test-busybox');
    expect(setup.out).not.toContain('HOST-GIT');
    expect(setup.out).toMatch(/^0$/m);
    expect(setup.out).toContain('installed');
    await sandbox.enter('agent');
    const agent = await sh(sandbox, 'id -u; /usr/local/bin/tool; cat /opt/tool/version; echo change > /etc/os-release && echo wrote');
    expect(agent.out).toMatch(/^1000$/m);
    expect(agent.out).toContain('tool ran as 1000');
    expect(agent.out).toContain('busybox-toolchain 1');
    // The shared image root is never written: the change is the run's layer's.
    expect(readFileSync(join(rootfs, 'etc', 'os-release'), 'utf8')).toContain('ID=oz-test-busybox');
    expect(existsSync(join(rootfs, 'usr', 'local', 'bin', 'tool'))).toBe(false);
    // Nothing under the image was given to another owner on the host.
    expect(statSync(join(rootfs, 'etc')).uid).toBe(0);
  });

  it("the platform phase has the host's git and the workspace the image phases wrote", async () => {
    const sandbox = await create();
    await sh(sandbox, 'echo from-setup > /workspace/made-in-setup');
    await sandbox.enter('platform');
    const platform = await sh(sandbox, 'git --version; cat /workspace/made-in-setup; id -u', { PATH: '/usr/bin:/bin' });
    expect(platform.code).toBe(0);
    expect(platform.out).toMatch(/git version \d/);
    expect(platform.out).toContain('from-setup');
    expect(platform.out).toMatch(/^1000$/m);
  });

  it("runs the platform's node on the image (which has none)", async () => {
    const sandbox = await create({ phase: 'agent' });
    let out = '';
    const node = await sandbox.exec([sandbox.nodePath, '-e', 'console.log("node", process.version, require("fs").readFileSync("/etc/os-release", "utf8").split("\\n")[0])'], {
      env: { PATH: '/bin' },
      onOutput: (_s, chunk) => (out += chunk.toString()),
    });
    expect(node.exitCode, out).toBe(0);
    expect(out).toContain(`node ${process.version} ID=oz-test-busybox`);
  });

  it('the hardening holds on the image: no capabilities, no new user namespace, no host root', async () => {
    const sandbox = await create();
    const probe = await sh(
      sandbox,
      'cat /proc/self/mountinfo; grep -E "^Cap(Eff|Prm|Bnd):" /proc/self/status; grep NoNewPrivs /proc/self/status; unshare -U true 2>/dev/null && echo USERNS-OK; cat /proc/self/uid_map; touch /proc/sys/kernel/hostname 2>/dev/null && echo SYSCTL-WRITE',
    );
    expect(probe.out).toMatch(/CapEff:\s+0000000000000000/);
    expect(probe.out).toMatch(/CapBnd:\s+0000000000000000/);
    expect(probe.out).not.toContain('USERNS-OK');
    expect(probe.out).not.toContain('SYSCTL-WRITE');
    // The overlay's options name no host path of the run's directory or the image's root (the
    // platform's staged node, a bind, shows its own path: it holds nothing of any run).
    expect(probe.out).toContain('oz-image');
    expect(probe.out).toContain('lowerdir=lower,');
    expect(probe.out).not.toContain('/run-image-');
    expect(probe.out).not.toContain(rootfs);
    // In-sandbox root is one unprivileged host uid, never host root: what it wrote is that uid's on the host.
    await sh(sandbox, 'echo x > /etc/written-as-root');
    const written = findUnder(join(root, 'sandboxes'), 'written-as-root');
    expect(written).not.toBeNull();
    expect(statSync(written as string).uid).toBeGreaterThan(1_000_000);
  });

  it('sees nothing of the host: no host path, no worker environment, no other run', async () => {
    const other = await create({ runId: 'neighbour' });
    await sh(other, 'echo neighbour-secret > /workspace/mine');
    const sandbox = await create();
    const probe = await sh(
      sandbox,
      [
        `test -e ${process.cwd()} && echo SEES-CHECKOUT`,
        `test -e ${root} && echo SEES-SANDBOX-ROOT`,
        'test -e /etc/shadow && echo SEES-SHADOW',
        'echo "environ=[$(tr "\\0" " " < /proc/1/environ)]"',
        'grep -rl neighbour-secret /workspace /tmp /oz /etc /home /usr /bin 2>/dev/null && echo SEES-NEIGHBOUR',
        'true',
      ].join('; '),
    );
    expect(probe.out).not.toMatch(/SEES-/);
    expect(probe.out).toContain('environ=[]');
    // Inherited descriptors: the worker closes its own at start (test/sandbox/image-runs.test.ts checks through one).
  });

  it('a symlink at a mount point of the image (or one setup planted) makes nothing on the host', async () => {
    const host = mkdtempSync(join(root, 'host-'));
    const linked = buildBusyboxImage(join(root, 'linked-image'));
    const linkedRoot = join(linked.bundle, 'rootfs');
    // bwrap resolves mount points before the new root is in place: /oldroot is the host's.
    symlinkSync(`/oldroot${host}/made-by-tmp`, join(linkedRoot, 'tmp'));
    const sandbox = await create({ image: { rootDir: linkedRoot, agentUid: 1000, agentGid: 1000 } });
    await sh(sandbox, `ln -sfn /oldroot${host}/made-by-workspace /workspace-link; rm -rf /etc/resolv.conf; ln -s /oldroot${host}/made-by-resolv /etc/resolv.conf; true`);
    await sandbox.enter('agent');
    expect((await sh(sandbox, 'test -d /tmp && test ! -L /tmp && echo plain-tmp')).out).toContain('plain-tmp');
    expect(readdirSync(host)).toEqual([]);
    // The image's own symlink is untouched: the run's layer hides it.
    expect(lstatSync(join(linkedRoot, 'tmp')).isSymbolicLink()).toBe(true);
  });

  it('destroy unmounts the image root and the layer', async () => {
    const sandbox = await create({ runId: 'gone' });
    await sh(sandbox, 'echo x > /layer-file');
    const before = mountsUnder(join(root, 'sandboxes')).filter((point) => point.includes('run-gone-'));
    expect(before.length).toBeGreaterThanOrEqual(2);
    await sandbox.destroy();
    expect(mountsUnder(join(root, 'sandboxes')).filter((point) => point.includes('run-gone-'))).toEqual([]);
  });
});
