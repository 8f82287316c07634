import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../support/free-port.js';
import { draftImage } from '../../support/umoci-image.js';

/** The Debian packages the image tests need, installed if missing (the test machine runs as root). */
const PACKAGES: Record<string, string> = { skopeo: 'skopeo', umoci: 'umoci', 'docker-registry': 'docker-registry', htpasswd: 'apache2-utils' };

function missing(): string[] {
  return Object.keys(PACKAGES).filter((command) => {
    try {
      execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

/** Null when the tools are there (installing them if it can), else why not. */
export function imageToolsMissing(): string | null {
  let absent = missing();
  if (absent.length === 0) return null;
  try {
    const packages = [...new Set(absent.map((command) => PACKAGES[command]!))];
    execFileSync('apt-get', ['install', '-y', ...packages], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 300_000 });
  } catch {
    // Reported below.
  }
  absent = missing();
  return absent.length === 0 ? null : `missing ${absent.join(', ')} (apt-get install -y ${[...new Set(absent.map((command) => PACKAGES[command]!))].join(' ')})`;
}

/** A real distribution registry (`docker-registry serve`) on 127.0.0.1, storage and log in `dir`. */
export class TestRegistry {
  private constructor(
    readonly address: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {}

  static async start(dir: string, htpasswd?: { username: string; password: string }): Promise<TestRegistry> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const lines = ['version: 0.1', 'log:', '  level: info', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir, 'storage')}`, 'http:', `  addr: 127.0.0.1:${port}`];
    if (htpasswd) {
      const entry = execFileSync('htpasswd', ['-Bbn', htpasswd.username, htpasswd.password], { encoding: 'utf8' }).trim();
      writeFileSync(join(dir, 'htpasswd'), `${entry}\n`);
      lines.push('auth:', '  htpasswd:', '    realm: oz-test', `    path: ${join(dir, 'htpasswd')}`);
    }
    writeFileSync(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
    const logFile = join(dir, 'registry.log');
    const log = openSync(logFile, 'a');
    const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', log, log] });
    closeSync(log);
    const registry = new TestRegistry(`127.0.0.1:${port}`, child, logFile);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const up = await fetch(`http://127.0.0.1:${port}/v2/`).then(
        () => true,
        () => false,
      );
      if (up) return registry;
      if (Date.now() > deadline || child.exitCode !== null) {
        await registry.stop();
        throw new Error(`the registry did not start: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Requests for manifests of `repository` so far (GET or HEAD), from the access log: each pull makes at least one. */
  manifestRequests(repository: string): number {
    const pattern = new RegExp(`"(?:GET|HEAD) /v2/${repository}/manifests/`, 'g');
    return (readFileSync(this.logFile, 'utf8').match(pattern) ?? []).length;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.pid) process.kill(this.child.pid, 'SIGKILL');
    await exited;
  }
}

/**
 * A small image made without Docker: an umoci layout with a file and a shell
 * script in /app, an env entry, a working directory, a user and a cmd.
 */
export function buildTestImage(dir: string): string {
  const image = draftImage(dir);
  mkdirSync(join(image.rootfs, 'app'));
  writeFileSync(join(image.rootfs, 'app', 'hello.txt'), 'hello from the image\n');
  writeFileSync(join(image.rootfs, 'app', 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  image.repack();
  image.configure(['--config.env=GREETING=hello', '--config.workingdir=/app', '--config.user=1000:1000', '--config.cmd=/app/run.sh']);
  return image.reference;
}

/** Push the OCI image `source` (`layout:tag`) to `destination` (`127.0.0.1:port/name:tag`) over plain HTTP. */
export function push(source: string, destination: string, creds?: { username: string; password: string }): void {
  const auth = creds ? ['--dest-creds', `${creds.username}:${creds.password}`] : [];
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', ...auth, `oci:${source}`, `docker://${destination}`], { stdio: 'pipe' });
}
