import { PassThrough, type Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { RunFailure } from '../../core/run-failure.js';
import { processCgroup, type ProcessCgroup } from '../bwrap/cgroups.js';
import { InitClient } from '../init/init-client.js';
import { INIT_NODE, INIT_SCRIPT, WORKSPACE } from '../sandbox-layout.js';
import { demultiplex } from './demux.js';

const START_TIMEOUT_MS = 30_000;

/** The engine's "nothing to do" answers: already stopped, already gone. */
function benign(error: unknown): boolean {
  const status = (error as { statusCode?: number }).statusCode;
  return status === 304 || status === 404 || status === 409;
}

/**
 * One container of a sandbox and the init running in it: started, killed
 * and restarted through the engine's API; the init reached through an exec
 * attached to its stdin and stdout (the engine multiplexes stdout and stderr
 * on one stream, demultiplexed here).
 */
export class ContainerHandle {
  private init: InitClient | null = null;
  private stream: Duplex | null = null;
  private cgroup: ProcessCgroup | null = null;
  /** The counters of earlier starts (a restart makes a new cgroup). */
  private pastOom = 0;
  private pastPids = 0;
  private stderr = '';
  /** The container's own writable layer on the host (overlay2's upper directory), where the engine says. */
  upperDir: string | null = null;
  /** The gateways of the container's networks, as the engine reports them (where Podman's resolver answers). */
  gateways: string[] = [];

  constructor(
    private readonly docker: Docker,
    readonly container: Docker.Container,
    private readonly initEnv: readonly string[],
  ) {}

  /** Start the container unless it runs; its main process's host pid. */
  async ensureRunning(): Promise<number> {
    let info = await this.container.inspect();
    if (!info.State.Running) {
      await this.container.start().catch((error: unknown) => {
        if ((error as { statusCode?: number }).statusCode !== 304) throw error;
      });
      info = await this.container.inspect();
    }
    if (!info.State.Running || !info.State.Pid) throw new Error(`the container stopped at once (${info.State.Error || `exit ${info.State.ExitCode}`})`);
    this.upperDir = (info.GraphDriver?.Data as { UpperDir?: string } | undefined)?.UpperDir ?? null;
    this.cgroup = processCgroup(info.State.Pid);
    this.gateways = Object.values(info.NetworkSettings?.Networks ?? {})
      .map((network) => network.Gateway)
      .filter((gateway): gateway is string => typeof gateway === 'string' && gateway !== '');
    return info.State.Pid;
  }

  /** The container's own writable layer on the host (created with the container, before it first runs), or null where the engine does not say. */
  async writableLayer(): Promise<string | null> {
    const info = await this.container.inspect();
    this.upperDir = (info.GraphDriver?.Data as { UpperDir?: string } | undefined)?.UpperDir ?? null;
    return this.upperDir;
  }

  /** An init in the running container, as `user`; resolves once it said it is ready. */
  async startInit(user: string, onViolation: () => void, args: readonly string[] = []): Promise<void> {
    const exec = await this.container.exec({
      Cmd: [INIT_NODE, INIT_SCRIPT, ...args],
      User: user,
      WorkingDir: WORKSPACE,
      Env: [...this.initEnv],
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
    });
    const stream = await exec.start({ hijack: true, stdin: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    demultiplex(stream, stdout, stderr);
    const ended = (): void => {
      stdout.end();
      stderr.end();
    };
    stream.once('end', ended);
    stream.once('close', ended);
    stream.on('error', () => ended());
    stderr.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString()).slice(-2000)));
    this.stream = stream;
    this.init = new InitClient(stream, stdout, onViolation);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.init.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('the sandbox did not start in time')), START_TIMEOUT_MS);
        }),
      ]);
    } catch (error) {
      const detail = this.stderr.trim().split('\n').at(-1);
      throw new Error(detail ? `${(error as Error).message}: ${detail}` : (error as Error).message);
    } finally {
      clearTimeout(timer);
    }
  }

  client(): InitClient {
    if (!this.init) throw RunFailure.sandboxLost('its init is not running');
    return this.init;
  }

  failInit(error: Error): void {
    this.init?.close(error);
  }

  signalInit(signal: 'SIGTERM'): void {
    this.init?.signal(signal);
  }

  oomKills(): number {
    return this.pastOom + (this.cgroup?.oomKills() ?? 0);
  }

  pidsRefused(): number {
    return this.pastPids + (this.cgroup?.pidsRefused() ?? 0);
  }

  /** Whether the engine saw the container's memory limit kill a process (its cgroup, and so its counters, go with it). */
  async oomKilled(): Promise<boolean> {
    const info = await this.container.inspect().catch(() => null);
    return info?.State.OOMKilled === true;
  }

  /** SIGKILL to the container's pid 1: the kernel then kills every process in it. */
  async kill(): Promise<void> {
    await this.container.kill({ signal: 'SIGKILL' }).catch((error: unknown) => {
      if (!benign(error)) throw error;
    });
  }

  /** End the init (failing what it had pending with `reason`) and every process; resolves once the container stopped. */
  async stop(reason: string): Promise<void> {
    this.init?.close(RunFailure.sandboxLost(reason));
    this.init = null;
    if (this.cgroup) {
      this.pastOom += this.cgroup.oomKills();
      this.pastPids += this.cgroup.pidsRefused();
      this.cgroup = null;
    }
    await this.kill();
    await this.container.wait({ condition: 'not-running' }).catch((error: unknown) => {
      if (!benign(error)) throw error;
    });
    this.stream?.destroy();
    this.stream = null;
  }

  /** Kill and remove the container. */
  async remove(): Promise<void> {
    this.init?.close(RunFailure.sandboxLost('the sandbox was destroyed'));
    this.init = null;
    this.stream?.destroy();
    await this.container.remove({ force: true, v: true }).catch((error: unknown) => {
      if (!benign(error)) throw error;
    });
  }
}
