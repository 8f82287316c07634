import { existsSync } from 'node:fs';
import { join } from 'node:path';
import fastifyHelmet from '@fastify/helmet';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OzError } from '../core/errors.js';

/**
 * The web dashboard (docs/dashboard.md): the assets `npm run build` puts in
 * `dist/web`, served at `/`; every path that is not the API's, an asset or a
 * file of the build is one of the dashboard's own routes and gets its
 * index.html. Every response carries a strict Content-Security-Policy (only
 * the server's own scripts, styles and connections; no inline script, no
 * framing) and the usual hardening headers, from @fastify/helmet.
 */
export async function registerDashboard(app: FastifyInstance, webRoot: string | null | undefined): Promise<(request: FastifyRequest, reply: FastifyReply) => FastifyReply | null> {
  await app.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        manifestSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    // The login link's token rides in the fragment, but a page's address should never leave it either.
    referrerPolicy: { policy: 'no-referrer' },
    // Plain-HTTP deployments (the embedded default) are common; HSTS is the TLS proxy's to set.
    strictTransportSecurity: false,
  });
  // API answers are per caller and per moment: no cache (a shared one, or the browser's back button) keeps them.
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/api/') && !reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    return payload;
  });
  const built = webRoot && existsSync(join(webRoot, 'index.html')) ? webRoot : null;
  if (built) {
    await app.register(fastifyStatic, {
      root: built,
      prefix: '/',
      // Files are looked up per request (a rebuild under a running server serves its new assets); a miss goes to the not-found handler.
      wildcard: true,
      index: false,
      dotfiles: 'deny',
      // Never a file that would answer for the API.
      allowedPath: (pathName) => !pathName.startsWith('/api/'),
      // Hashed file names under assets/ never change; index.html is asked again each time.
      setHeaders: (res, path) => {
        res.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  }
  const sendIndex = (reply: FastifyReply): FastifyReply => reply.header('cache-control', 'no-cache').sendFile('index.html');
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    if (!built) throw new OzError('resource_not_found', 'the dashboard is not built: run `npm run build` (the API is at /api/v1)');
    return sendIndex(reply);
  });
  // The not-found handler asks this first: a browser's page request for one of the dashboard's routes.
  return (request, reply) => {
    if (!built || (request.method !== 'GET' && request.method !== 'HEAD')) return null;
    const path = request.url.split('?')[0] ?? '';
    if (path.startsWith('/api/') || path.startsWith('/assets/') || path === '/healthz') return null;
    if (!(request.headers.accept ?? '').includes('text/html')) return null;
    return sendIndex(reply);
  };
}
