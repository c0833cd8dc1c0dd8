import type { FastifyInstance } from 'fastify';
import type { UpstreamStatus } from '../upstream/status.js';

/**
 *   GET /health/upstream   200 {fresh: true, ...} while the primary follows its upstream and its last
 *                          poll succeeded recently; 503 {fresh: false, staleReason, ...} while it
 *                          bootstraps, resyncs, or cannot poll (it keeps serving its last generation).
 * Public like the status page: it names the upstream URL and error codes, no secrets.
 */
export function upstreamHealthRoutes(app: FastifyInstance, options: { status: UpstreamStatus; now: () => number }): void {
  app.get('/health/upstream', (_request, reply) => {
    const snapshot = options.status.snapshot(options.now());
    return reply
      .code(snapshot.fresh ? 200 : 503)
      .header('cache-control', 'no-store')
      .send(snapshot);
  });
}
