import type Docker from 'dockerode';
import { extract } from 'tar-stream';
import { drain } from './engine-stream.js';
import { LABELS } from './container-config.js';

/** An image the engine holds, ready to start containers of. */
export interface EngineImage {
  /** The engine's image id (`sha256:…`: the config's digest), what containers are created from. */
  id: string;
  /** The manifest digest the registry served, where the engine knows it; else the id. */
  digest: string;
  config: { env: string[]; workingDir: string | null; user: string | null; entrypoint: string[] | null; cmd: string[] | null };
  /** The image's `/etc/passwd` and `/etc/group` (for its `USER`), or null where it has none. */
  etc: { passwd: string | null; group: string | null };
}

/** A pull the engine refused or failed: its message is the registry's (or the engine's) reason. */
export class EnginePullError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

const MAX_ETC_BYTES = 1024 * 1024;

/** The regular files named `names` in a tar stream (the engine's archive of a path), at most MAX_ETC_BYTES each. */
function readFiles(stream: NodeJS.ReadableStream, names: readonly string[]): Promise<Map<string, string>> {
  return new Promise((resolve, reject) => {
    const found = new Map<string, string>();
    const tar = extract();
    tar.on('entry', (header, entry, next) => {
      const chunks: Buffer[] = [];
      let size = 0;
      entry.on('data', (data: unknown) => {
        const chunk = data as Buffer;
        size += chunk.length;
        if (size <= MAX_ETC_BYTES) chunks.push(chunk);
      });
      entry.on('end', () => {
        if (header.type === 'file' && names.includes(header.name) && size <= MAX_ETC_BYTES) found.set(header.name, Buffer.concat(chunks).toString('utf8'));
        next();
      });
      entry.resume();
    });
    tar.on('finish', () => resolve(found));
    tar.on('error', reject);
    stream.pipe(tar);
  });
}

/**
 * Images through the engine (the docker backend's): the engine pulls, with
 * a `registry-auth` secret's credentials for that registry only, and keeps
 * the layers in its own storage (shared by digest; pruned by the operator's
 * `docker image prune`). A registry on loopback is plain HTTP, as the engine
 * treats 127.0.0.0/8; any other plain-HTTP registry is the engine's own
 * `insecure-registries` setting.
 */
export class EngineImages {
  /** `labels`: the worker's (so what a crash leaves is found by the next worker). */
  constructor(
    private readonly docker: Docker,
    private readonly labels: Record<string, string>,
  ) {}

  async ensure(
    reference: string,
    options: { auth?: { username: string; password: string; registry: string } | undefined; signal?: AbortSignal | undefined } = {},
  ): Promise<EngineImage> {
    const auth = options.auth ? { username: options.auth.username, password: options.auth.password, serveraddress: options.auth.registry } : undefined;
    try {
      const stream = await this.docker.pull(reference, { ...(auth ? { authconfig: auth } : {}), ...(options.signal ? { abortSignal: options.signal } : {}) });
      await drain(stream);
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode ?? null;
      const json = (error as { json?: { message?: string } }).json;
      throw new EnginePullError(json?.message ?? (error as Error).message, status);
    }
    const info = await this.docker.getImage(reference).inspect();
    const digest = info.RepoDigests?.map((entry) => entry.split('@')[1]).find((d) => d?.startsWith('sha256:')) ?? info.Id;
    return {
      id: info.Id,
      digest,
      config: {
        env: info.Config?.Env ?? [],
        workingDir: info.Config?.WorkingDir || null,
        user: info.Config?.User || null,
        entrypoint: (info.Config?.Entrypoint as string[] | null | undefined) ?? null,
        cmd: info.Config?.Cmd ?? null,
      },
      etc: await this.etcFiles(info.Id),
    };
  }

  /** `/etc/passwd` and `/etc/group` of an image, read from a container created (never started) for it. */
  private async etcFiles(id: string): Promise<EngineImage['etc']> {
    const container = await this.docker.createContainer({
      Image: id,
      Entrypoint: ['/nonexistent'],
      Cmd: [],
      NetworkDisabled: true,
      Labels: { [LABELS.sandbox]: 'true', [LABELS.role]: 'inspect' },
    });
    const read = async (name: 'passwd' | 'group'): Promise<string | null> => {
      try {
        const files = await readFiles(await container.getArchive({ path: `/etc/${name}` }), [name]);
        return files.get(name) ?? null;
      } catch {
        return null; // absent (a symlink's target is not followed: the archive holds the link only)
      }
    };
    try {
      return { passwd: await read('passwd'), group: await read('group') };
    } finally {
      await container.remove({ force: true, v: true }).catch(() => {});
    }
  }
}
