import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';

/** What a sandbox with network gets as its resolver: slirp4netns's built-in DNS forwarder. */
export const SLIRP_DNS = '10.0.2.3';
export const SLIRP_RESOLV_CONF = `nameserver ${SLIRP_DNS}\n`;
export const SANDBOX_HOSTS = '127.0.0.1\tlocalhost oz-sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n';

export interface SlirpNetwork {
  stop(): void;
}

/**
 * Outbound network for one sandbox (docs/design.md "Sandboxes", network `on`):
 * slirp4netns attached to the net namespace the launcher unshared, with host
 * loopback disabled so the host's 127.0.0.1 services stay out of reach. It
 * exits when its exit pipe closes, that is when the worker stops it or dies.
 */
export async function startSlirp(pid: number, hostPath: string, timeoutMs = 10_000): Promise<SlirpNetwork> {
  const path = `/proc/${pid}/ns/net`;
  // Never configure the worker's own namespace: the launcher must have unshared one.
  if (readlinkSync(path) === readlinkSync('/proc/self/ns/net')) throw new Error('the sandbox has no network namespace of its own');
  const child: ChildProcess = spawn(
    'slirp4netns',
    ['--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--ready-fd=3', '--exit-fd=4', '--netns-type=path', path, 'tap0'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: { PATH: hostPath } },
  );
  const stderr: Buffer[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  const stop = (): void => {
    (child.stdio[4] as NodeJS.WritableStream | null)?.end();
    child.kill('SIGKILL');
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('slirp4netns did not become ready')), timeoutMs);
    function fail(error: Error): void {
      clearTimeout(timer);
      stop();
      reject(error);
    }
    child.once('error', (error) => fail(new Error(`slirp4netns could not start: ${error.message} (install slirp4netns for network "on")`)));
    child.once('exit', (code) => fail(new Error(`slirp4netns exited with code ${code}: ${Buffer.concat(stderr).toString().trim().slice(-500)}`)));
    (child.stdio[3] as NodeJS.ReadableStream | null)?.once('data', () => {
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve();
    });
  });
  return { stop };
}
