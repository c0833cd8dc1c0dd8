import type { FastifyInstance } from 'fastify';
import type { MirrorRegistry } from '../mirrors/registry.js';
import type { SourceWatchStatus } from '../watch/watch-status.js';
import type { UpstreamStatus } from '../upstream/status.js';
import { collectStatus } from '../status/status-data.js';
import { STATUS_PAGE_HTML } from '../status/status-page-html.js';

/**
 *   GET /status            HTML status page (mirrors, lag, health, latency chart)
 *   GET /status/data.json  the data it polls
 * Both read-only and public, like the mirrors list they summarise.
 */
export function statusPageRoutes(
  app: FastifyInstance,
  options: {
    registry: MirrorRegistry;
    now: () => number;
    staleAfterMs: number;
    sourceWatch?: SourceWatchStatus | undefined;
    upstream?: UpstreamStatus | undefined;
  },
): void {
  app.get('/status', (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
      .send(STATUS_PAGE_HTML),
  );
  app.get('/status/data.json', (_request, reply) =>
    reply.header('cache-control', 'no-store').send({
      ...collectStatus({ registry: options.registry, nowMs: options.now(), staleAfterMs: options.staleAfterMs, maxSamples: 300 }),
      source: options.sourceWatch?.snapshot() ?? null,
      upstream: options.upstream?.snapshot(options.now()) ?? null,
    }),
  );
}
