import type { FastifyInstance, HTTPMethods } from 'fastify';
import { OzError } from '../../core/errors.js';

/**
 * Paths of the Oz Agent API we do not serve yet. They answer
 * `feature_not_available` naming the path (after authentication), so an SDK
 * gets a clear, catalogued error rather than a 404 that looks like a typo.
 */
export const UNIMPLEMENTED_PATHS: [HTTPMethods, string, string][] = [
  ['GET', '/agent', 'listing agents and skills'],
  ['GET', '/agent/runs/:runId/transcript', 'raw transcripts'],
  ['POST', '/agent/messages', 'agent messages'],
  ['GET', '/agent/messages/:runId', 'agent messages'],
  ['POST', '/agent/messages/:messageId/read', 'agent messages'],
  ['POST', '/agent/messages/:messageId/delivered', 'agent messages'],
  ['GET', '/agent/events', 'the agent event feed (use GET /agent/runs/{id}/events)'],
  ['POST', '/agent/events/:runId', 'posting agent events'],
  ['GET', '/agent/artifacts/:artifactUid', 'artifact downloads'],
  ['POST', '/agent/identities', 'agent identities'],
  ['GET', '/agent/identities', 'agent identities'],
  ['PUT', '/agent/identities/:uid', 'agent identities'],
  ['DELETE', '/agent/identities/:uid', 'agent identities'],
  ['GET', '/agent/sessions/:sessionUuid/redirect', 'shared sessions'],
];

export async function unimplementedRoutes(app: FastifyInstance): Promise<void> {
  for (const [method, url, what] of UNIMPLEMENTED_PATHS) {
    app.route({
      method,
      url,
      schema: { summary: `Not available yet: ${what}`, tags: ['not available'] },
      handler: async () => {
        throw new OzError('feature_not_available', `${method} /api/v1${url.replace(/:(\w+)/g, '{$1}')}: ${what} is not available on this server yet`, {
          reason: url,
        });
      },
    });
  }
}
