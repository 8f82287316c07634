import { sameSecret } from '../core/same-secret.js';
import type { FastifyRequest } from 'fastify';
import { OzError } from '../core/errors.js';
import { hashSecret, WORKER_TOKEN_PREFIX } from './credentials.js';
import type { ServerDeps } from './deps.js';

/** The worker making a protocol call. */
export interface WorkerPrincipal {
  tokenId: string;
  name: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    worker: WorkerPrincipal | null;
  }
}

/** onRequest hook for the worker protocol: a worker token (or the embedded worker's secret), never an API key. */
export function authenticateWorker(deps: ServerDeps) {
  return async (request: FastifyRequest): Promise<void> => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const secret = match?.[1];
    if (!secret) throw new OzError('authentication_required', 'a worker token is required: send "Authorization: Bearer <token>"');
    if (deps.embeddedWorkerSecret && sameSecret(secret, deps.embeddedWorkerSecret)) {
      request.worker = { tokenId: 'embedded', name: 'embedded' };
      return;
    }
    const token = secret.startsWith(WORKER_TOKEN_PREFIX) ? await deps.store.findWorkerTokenByHash(hashSecret(secret)) : null;
    if (!token) throw new OzError('authentication_required', 'the worker token is not valid, or it was revoked');
    request.worker = { tokenId: token.id, name: token.name };
  };
}
