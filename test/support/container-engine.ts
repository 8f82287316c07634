import { execFileSync } from 'node:child_process';
import { bwrapInstalled } from '../../src/sandbox/bwrap/bwrap-backend.js';
import { imageToolsMissing } from '../worker/images/registry-fixture.js';
import { busyboxImageMissing } from './busybox-image.js';

/** Whether a container engine answers at DOCKER_HOST or the default socket (.ci/run starts dockerd). */
export function engineReachable(): boolean {
  try {
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** The backends that run images, each with what this host lacks for the image tests (null: nothing). */
export function imageBackends(): readonly { backend: 'bwrap' | 'docker'; missing: string | null }[] {
  const tools = busyboxImageMissing() ?? imageToolsMissing();
  const backends = [
    { backend: 'bwrap', missing: !bwrapInstalled() || process.getuid?.() !== 0 ? 'needs bwrap and a root worker' : tools },
    { backend: 'docker', missing: !engineReachable() ? 'needs a container engine (dockerd)' : tools },
  ] as const;
  for (const { backend, missing } of backends) if (missing) console.log(`image tests on ${backend} skipped: ${missing}`);
  return backends;
}
