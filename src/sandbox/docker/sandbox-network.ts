import type Docker from 'dockerode';
import { LABELS } from './container-config.js';

export const SANDBOX_NETWORK = 'oz-sandboxes';
const NO_ICC = 'com.docker.network.bridge.enable_icc';

/**
 * The bridge network runs with network `on` join (Docker; on Podman each such run gets a network of its own): like the
 * engine's default bridge, but with traffic between its containers off, so
 * one run cannot reach another's services. Made once; one made otherwise
 * (traffic on) is refused rather than used.
 */
export async function ensureSandboxNetwork(docker: Docker): Promise<string> {
  const found = await docker
    .getNetwork(SANDBOX_NETWORK)
    .inspect()
    .catch(() => null);
  if (!found) {
    await docker.createNetwork({ Name: SANDBOX_NETWORK, Driver: 'bridge', CheckDuplicate: true, Options: { [NO_ICC]: 'false' }, Labels: { [LABELS.sandbox]: 'true' } });
    return SANDBOX_NETWORK;
  }
  if ((found as { Options?: Record<string, string> }).Options?.[NO_ICC] !== 'false') {
    throw new Error(
      `the engine network ${SANDBOX_NETWORK} exists with traffic between containers on: remove it (docker network rm ${SANDBOX_NETWORK}) and the worker makes it again`,
    );
  }
  return SANDBOX_NETWORK;
}

/** Remove a network the worker made (gone already: nothing to do). */
export async function removeNetwork(docker: Docker, name: string, warn?: (message: string) => void): Promise<void> {
  await docker
    .getNetwork(name)
    .remove()
    .catch((error: { statusCode?: number; message?: string }) => {
      if (error.statusCode !== 404) warn?.(`could not remove the engine network ${name}: ${error.message ?? String(error)}`);
    });
}
