import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { isMetasyncError } from '@metasync/shared';
import {
  createDaemonServer,
  fastifyTlsOptions,
  landingPageText,
  type HttpServerLimits,
  type Logger,
  type TlsFiles,
} from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import { assessFreshness, createDrainState, type DrainState, type FreshnessLimits, type SyncStatus } from './health.js';
import type { HotCache } from './serve/hot-cache.js';
import { MIRROR_HTTP_LIMITS } from './serve/http-limits.js';
import type { IndexView } from './index/index-state.js';
import type { MirrorMetrics } from './metrics.js';
import type { Proxy } from './serve/proxy.js';
import { registerAdminRoutes, type AdminRouteOptions } from './serve/admin.js';
import { createFastPath } from './serve/fast-path.js';
import { createRepositoryAnswers, type AnswerCounts } from './serve/repository-answer.js';
import { createRepositoryHandler } from './serve/repository.js';
import { createVariantSizes } from './serve/variant-sizes.js';
import { registerDistRoute, type DistRouteOptions } from './dists/dist-route.js';

export interface AppOptions {
  index: IndexView;
  store: ObjectStore;
  hotCache: HotCache;
  metrics: MirrorMetrics;
  proxy: Proxy;
  status: SyncStatus;
  limits: FreshnessLimits;
  logger: Logger;
  /** Wall clock for drain timestamps (tests); freshness runs on `status.monoNowMs`. */
  nowMs?: () => number;
  /** Set by a drain request: `/health/fresh` then answers 503 `draining`. */
  drain?: DrainState;
  /** `POST /admin/drain` (serve/admin.ts); without it (or without a token) the route answers 404. */
  admin?: Pick<AdminRouteOptions, 'adminToken' | 'mirrorId' | 'withdrawFromDns' | 'rateLimit'>;
  /** What the server tolerates from clients (timeouts, header size, connections); default MIRROR_HTTP_LIMITS. */
  httpLimits?: HttpServerLimits;
  /** Serve HTTPS, HTTP/2 by ALPN with HTTP/1.1 as the fallback (shared server-factory.ts); undefined: plain HTTP. */
  tls?: TlsFiles | undefined;
  /** `/dists/` (dists/dist-route.ts); without it every /dists/ URL is a 404 (still never a repository lookup). */
  dists?: Omit<DistRouteOptions, 'logger'>;
  /** Answers counted elsewhere (serving threads, workers/worker-counters.ts), folded into /metrics with this app's own. */
  moreAnswerCounts?: () => AnswerCounts;
}

/**
 * The mirror's HTTP surface, built without listening (tests use inject()).
 * `/healthz`, `/health/fresh` and `/metrics` are exact routes; every other
 * GET/HEAD is a repository path (the same handler serves unmatched URLs, so
 * absolute-form request targets also end in its path check, as a 400).
 */
export function buildApp(options: AppOptions): FastifyInstance {
  const nowMs = options.nowMs ?? Date.now;
  const variantSizes = createVariantSizes(options.store);
  // One function builds every repository answer, for the fast path and the route alike.
  const answers = createRepositoryAnswers({ index: options.index, store: options.store, hotCache: options.hotCache, variantSizes });
  const fastPath = createFastPath(answers);
  const app = Fastify({
    // Node parses every request (llhttp) and applies every limit; hot hits are then answered
    // before fastify routes (serve/fast-path.ts), everything else is routed as usual.
    // With TLS, HTTP/2 streams reach the fast path as Node's compat request/response objects:
    // it uses only method, url, rawHeaders, writeHead(status, flat list) and end(body), which they share.
    ...fastifyTlsOptions(options.tls),
    serverFactory: (handler) =>
      createDaemonServer({
        limits: options.httpLimits ?? MIRROR_HTTP_LIMITS,
        logger: options.logger,
        tls: options.tls,
        handler: (req, res) => {
          if (!fastPath.tryServe(req, res)) handler(req, res);
        },
      }),
    loggerInstance: options.logger,
    // Per-request logs would cost more than serving a hot file; metrics count responses instead.
    logController: new LogController({ disableRequestLogging: true }),
    // A closing server answers in-flight and keep-alive requests normally, never 503 (invariant 5).
    return503OnClosing: false,
    exposeHeadRoutes: false,
    // Bigger than any valid path so the path check, not the router, answers overlong ones.
    routerOptions: { maxParamLength: 2048 },
  });
  // Requests Node's parser refuses are answered as Node answers them (400/413/431/408, and
  // nothing once a response has started), not with fastify's JSON written mid-stream.
  app.server.removeAllListeners('clientError');
  const serveRepository = createRepositoryHandler({
    index: options.index,
    answers,
    metrics: options.metrics,
    proxy: options.proxy,
    logger: options.logger,
  });
  const fastReported = { ok: 0, notModified: 0, cacheHits: 0, cacheMisses: 0 };
  const drain = options.drain ?? createDrainState();
  registerAdminRoutes(app as unknown as FastifyInstance, {
    adminToken: options.admin?.adminToken,
    mirrorId: options.admin?.mirrorId ?? '',
    withdrawFromDns: options.admin?.withdrawFromDns,
    ...(options.admin?.rateLimit === undefined ? {} : { rateLimit: options.admin.rateLimit }),
    drain,
    appliedSeq: () => options.index.seq,
    nowMs,
  });

  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: async (_request, reply) => {
      await reply.header('cache-control', 'public, max-age=300').type('text/plain; charset=utf-8').send(landingPageText('mirror'));
    },
  });
  app.get('/healthz', async (_request, reply) => {
    await reply.header('cache-control', 'no-store').type('text/plain').send('ok\n');
  });
  app.get('/health/fresh', async (_request, reply) => {
    if (drain.draining) {
      await reply.code(503).header('cache-control', 'no-store').type('text/plain').send('draining\n');
      return;
    }
    const freshness = assessFreshness(options.status, options.index.seq, options.status.monoNowMs(), options.limits);
    options.metrics.lagSeq.set(freshness.lagSeq);
    options.metrics.lagMs.set(freshness.lagMs);
    await reply
      .code(freshness.fresh ? 200 : 503)
      .header('cache-control', 'no-store')
      .type('text/plain')
      .send(`${freshness.fresh ? '' : 'stale: '}${freshness.reason}\n`);
  });
  app.get('/metrics', async (_request, reply) => {
    const freshness = assessFreshness(options.status, options.index.seq, options.status.monoNowMs(), options.limits);
    options.metrics.lagSeq.set(freshness.lagSeq);
    options.metrics.lagMs.set(freshness.lagMs);
    options.metrics.headSeq.set(options.status.headSeq);
    options.metrics.appliedSeq.set(options.index.seq);
    // Answers are counted in plain numbers (no label hashing per request); fold them in at scrape time.
    const fast = addCounts(answers.counts(), options.moreAnswerCounts?.());
    if (fast.ok > fastReported.ok) options.metrics.responses.inc({ source: 'store', status: '200' }, fast.ok - fastReported.ok);
    if (fast.notModified > fastReported.notModified)
      options.metrics.responses.inc({ source: 'store', status: '304' }, fast.notModified - fastReported.notModified);
    if (fast.cacheHits > fastReported.cacheHits) options.metrics.cacheHits.inc(fast.cacheHits - fastReported.cacheHits);
    if (fast.cacheMisses > fastReported.cacheMisses) options.metrics.cacheMisses.inc(fast.cacheMisses - fastReported.cacheMisses);
    Object.assign(fastReported, fast);
    await reply
      .header('cache-control', 'no-store')
      .type(options.metrics.registry.contentType)
      .send(await options.metrics.registry.metrics());
  });
  if (options.dists !== undefined) registerDistRoute(app as unknown as FastifyInstance, { ...options.dists, logger: options.logger });
  app.route({ method: ['GET', 'HEAD'], url: '/*', handler: serveRepository });
  app.setNotFoundHandler(async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD') return serveRepository(request, reply);
    await reply
      .code(405)
      .header('allow', 'GET, HEAD')
      .header('cache-control', 'no-store')
      .send({ code: 'METASYNC_ERR_REQUEST_INVALID', message: `method ${request.method} is not allowed` });
  });
  app.setErrorHandler(async (err, request, reply) => {
    if (isMetasyncError(err) && err.statusCode < 500) {
      await reply.code(err.statusCode).header('cache-control', 'no-store').send({ code: err.code, message: err.message });
      return;
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      await reply
        .code(status)
        .header('cache-control', 'no-store')
        .send({ code: 'METASYNC_ERR_REQUEST_INVALID', message: 'request is malformed' });
      return;
    }
    request.log.error({ err, url: request.raw.url?.slice(0, 300) }, 'request failed');
    // A repository path must never see a 5xx (Composer aborts on it): report "not found now".
    await reply
      .code(404)
      .header('cache-control', 'no-store')
      .send({ code: 'METASYNC_ERR_PATH_NOT_FOUND', message: 'no such path in the repository' });
  });
  return app as unknown as FastifyInstance;
}

function addCounts(own: Readonly<AnswerCounts>, more: AnswerCounts | undefined): AnswerCounts {
  if (more === undefined) return { ...own };
  return {
    ok: own.ok + more.ok,
    notModified: own.notModified + more.notModified,
    cacheHits: own.cacheHits + more.cacheHits,
    cacheMisses: own.cacheMisses + more.cacheMisses,
  };
}
