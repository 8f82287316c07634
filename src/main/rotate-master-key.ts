import { systemClock } from '../core/clock.js';
import { SETTINGS, loadRotationConfig, type ConfigOverrides } from '../core/config.js';
import { rotateMasterKey } from '../secrets/keyring.js';
import { openStore } from './open-store.js';

/** `oz server rotate-master-key`: the composition root of a rotation. */
export async function runRotateMasterKey(options: { settings: ConfigOverrides }): Promise<void> {
  const config = loadRotationConfig(options.settings);
  const store = await openStore(config);
  try {
    const result = await rotateMasterKey(config, store.secrets, config.newMasterKey, systemClock.now());
    const lines = [`Re-wrapped ${result.count} secret${result.count === 1 ? '' : 's'} under the new master key.`];
    if (result.keyFile) lines.push(`The new key is in ${result.keyFile} (0600). Keep a copy: losing it loses every secret.`);
    else if (result.newKeyHex) lines.push(`Set ${SETTINGS.masterKey.env} to the new key before the next start (shown once; losing it loses every secret):`, result.newKeyHex);
    else lines.push(`Set ${SETTINGS.masterKey.env} to the value of ${SETTINGS.newMasterKey.env} before the next start.`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await store.close();
  }
}
