import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMasterKey, type OzConfig } from '../core/config.js';
import { OzError } from '../core/errors.js';
import type { SecretRepository } from '../store/secret-repository.js';
import { Envelope, MASTER_KEY_BYTES } from './envelope.js';

export const MASTER_KEY_FILE = 'master.key';
const NEXT_KEY_FILE = 'master.key.next';

function wrongKey(source: string): OzError {
  return new OzError(
    'invalid_request',
    `${source} is not the master key this database's secrets were sealed with; the server will not start. ` + 'Use the original key (losing it loses every secret).',
    { reason: 'wrong_master_key' },
  );
}

function readKeyFile(path: string): Buffer {
  return parseMasterKey(readFileSync(path, 'utf8'), path);
}

/**
 * The master key that seals secrets, checked against the database: from
 * `OZ_MASTER_KEY`, else `<data dir>/master.key` (0600, made on the first start
 * of a new deployment). A wrong key stops the server here, before it serves.
 * A rotation interrupted after its commit is finished here (the new key file
 * is put in place).
 */
export async function openKeyring(config: OzConfig, secrets: SecretRepository, at: number): Promise<Envelope> {
  const verifier = await secrets.verifier();
  let key: Buffer;
  let source: string;
  if (config.masterKey) {
    key = config.masterKey;
    source = 'OZ_MASTER_KEY';
  } else {
    const path = join(config.dataDir, MASTER_KEY_FILE);
    const next = join(config.dataDir, NEXT_KEY_FILE);
    source = path;
    if (existsSync(next) && verifier && new Envelope(readKeyFile(next)).verifies(verifier)) renameSync(next, path);
    if (!existsSync(path)) {
      if (verifier) {
        throw new OzError(
          'invalid_request',
          `this database's secrets are sealed with a master key this server does not have: set OZ_MASTER_KEY, or put the deployment's ${MASTER_KEY_FILE} in ${config.dataDir}`,
          {
            reason: 'missing_master_key',
          },
        );
      }
      mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
      writeFileSync(path, `${randomBytes(MASTER_KEY_BYTES).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    }
    key = readKeyFile(path);
  }
  const envelope = new Envelope(key);
  if (verifier === null) {
    if (await secrets.initVerifier(envelope.verifier(), at)) return envelope;
    // Another server recorded its key first: ours must be the same one.
    const recorded = await secrets.verifier();
    if (recorded && envelope.verifies(recorded)) return envelope;
    throw wrongKey(source);
  }
  if (!envelope.verifies(verifier)) throw wrongKey(source);
  return envelope;
}

/**
 * `oz server rotate-master-key`: re-wrap every data key under a new master key
 * (`OZ_NEW_MASTER_KEY`, else a fresh random one), all in one transaction. With
 * a key file the new key is written beside it first and put in place after
 * the commit; with `OZ_MASTER_KEY` the operator swaps the variable.
 */
export async function rotateMasterKey(
  config: OzConfig,
  secrets: SecretRepository,
  newKey: Buffer | null,
  at: number,
): Promise<{ count: number; keyFile: string | null; newKeyHex: string | null }> {
  const current = await openKeyring(config, secrets, at);
  const key = newKey ?? randomBytes(MASTER_KEY_BYTES);
  const next = new Envelope(key);
  let keyFile: string | null = null;
  if (!config.masterKey) {
    keyFile = join(config.dataDir, MASTER_KEY_FILE);
    writeFileSync(join(config.dataDir, NEXT_KEY_FILE), `${key.toString('hex')}\n`, { mode: 0o600 });
  }
  const count = await secrets.rewrapAll(
    (secret) => current.rewrap({ teamId: secret.teamId, ownerUserId: secret.scope.type === 'user' ? secret.scope.userId : '', name: secret.name }, secret.wrappedKey, next),
    next.verifier(),
  );
  if (keyFile) renameSync(join(config.dataDir, NEXT_KEY_FILE), keyFile);
  return { count, keyFile, newKeyHex: config.masterKey && !newKey ? key.toString('hex') : null };
}
