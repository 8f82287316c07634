import type { FastifyRequest } from 'fastify';

/**
 * The server's public base URL as this request reached it (`protocol://host`
 * from the Host header): links in responses (`session_link`, `trigger_url`)
 * open at the address the caller already uses. There is no setting for it;
 * behind a proxy that terminates TLS, the protocol is the proxy's hop (http).
 */
export function publicBaseUrl(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
