import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { isOzError, OzError } from '../core/errors.js';
import { authenticate } from './auth.js';
import type { ServerDeps } from './deps.js';
import { problemHandler, sendProblem } from './problem.js';
import { refuseNulBytes } from './nul-bytes.js';
import { environmentRoutes } from './routes/environments.js';
import { secretRoutes } from './routes/secrets.js';
import { identityRoutes } from './routes/identity.js';
import { modelRoutes } from './routes/models.js';
import { registerOpenApi } from './routes/openapi.js';
import { runEventRoutes } from './routes/run-events.js';
import { runRoutes } from './routes/runs.js';
import { unimplementedRoutes } from './routes/unimplemented.js';
import { RunService } from './run-service.js';
import { LifecycleSweeper } from './lifecycle-sweeper.js';
import { scheduleRoutes } from './routes/schedules.js';
import { Scheduler } from './scheduler.js';
import { workerProtocolRoutes } from './routes/worker-protocol.js';
import { WORKER_API } from '../core/worker-protocol.js';
import { settingDefault } from '../core/config.js';
import { registerDashboard } from './dashboard.js';
import { webLoginLinkPeekRoutes, webSessionRoutes, webSignInRoutes } from './routes/web-session.js';

export const API_PREFIX = '/api/v1';

/**
 * The API server, built from its dependencies (no listening, no globals):
 * tests call it in-process or on a port; `src/main/server.ts` serves it.
 */
export async function createApp(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- needed: without it the app is typed by pino's Logger and no longer a plain FastifyInstance
    loggerInstance: deps.logger as FastifyBaseLogger,
    forceCloseConnections: true,
    trustProxy: deps.trustProxy ?? false,
    bodyLimit: 1024 * 1024,
  });
  app.setValidatorCompiler(validatorCompiler);
  // Answers are encoded through their route's response schema (src/api): a value the schema does not fit is a 500, a field it lacks is dropped.
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(problemHandler);
  await app.register(fastifyCookie);
  const dashboardPage = await registerDashboard(app, deps.webRoot);
  app.setNotFoundHandler(
    (request, reply) => dashboardPage(request, reply) ?? sendProblem(reply, new OzError('resource_not_found', `no route ${request.method} ${request.url.split('?')[0]}`), request),
  );
  // JSON only (anything else is a 415); an empty JSON body is "no body", not a parse error.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new OzError('invalid_request', `the body is not valid JSON: ${(error as Error).message}`, { reason: 'body' }), undefined);
    }
  });
  app.decorateRequest('principal', null);
  app.decorateRequest('webSession', null);

  await registerOpenApi(app, `${API_PREFIX}/openapi.json`);

  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });

  // 200 {status: 'ok'}; while the database cannot be reached (a restart) 503
  // {status: 'degraded', database: 'unreachable'}: the process is fine and
  // resumes by itself, so a load balancer should route around it, not kill it.
  app.get('/healthz', { schema: { hide: true } }, async (request, reply) => {
    try {
      await deps.store.countTeams();
      return { status: 'ok' };
    } catch (error) {
      const unreachable = isOzError(error) && error.code === 'resource_unavailable';
      if (!unreachable) request.log.error({ err: error }, 'health check failed');
      return reply
        .status(503)
        .header('retry-after', '1')
        .send({ status: 'degraded', database: unreachable ? 'unreachable' : 'error' });
    }
  });

  const runs = new RunService(deps);
  const sweeper = new LifecycleSweeper(deps, runs, deps.sweepIntervalMs ?? settingDefault('sweepIntervalMs'));
  const scheduler = new Scheduler(deps, runs, deps.schedulerIntervalMs ?? 1000);
  app.addHook('onReady', async () => {
    sweeper.start();
    scheduler.start();
  });
  app.addHook('onClose', async () => {
    await scheduler.stop();
    await sweeper.stop();
  });
  // Workers long-poll all day: their requests are not worth a log line each (warnings still are).
  await app.register(workerProtocolRoutes(deps, runs, streams), { prefix: WORKER_API, logLevel: 'warn' });
  await app.register(
    async (api) => {
      api.addHook('onRequest', authenticate(deps));
      api.addHook('preValidation', refuseNulBytes);
      await api.register(runRoutes(deps, runs));
      await api.register(runEventRoutes(deps, streams));
      await api.register(environmentRoutes(deps));
      await api.register(modelRoutes(deps));
      await api.register(identityRoutes(deps));
      await api.register(secretRoutes(deps));
      await api.register(scheduleRoutes(deps, scheduler));
      await api.register(webSessionRoutes(deps));
      await api.register(unimplementedRoutes);
    },
    { prefix: API_PREFIX },
  );
  // Signing in needs no credential yet (the body carries one).
  await app.register(
    async (api) => {
      api.addHook('preValidation', refuseNulBytes);
      await api.register(webSignInRoutes(deps));
      await api.register(webLoginLinkPeekRoutes(deps));
    },
    { prefix: API_PREFIX },
  );
  return app;
}
