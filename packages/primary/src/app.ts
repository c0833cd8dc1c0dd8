import { isMetasyncError } from '@metasync/shared';
import {
  createDaemonServer,
  fastifyTlsOptions,
  landingPageText,
  type HttpServerLimits,
  type Logger,
  type TlsFiles,
} from '@metasync/shared/daemon';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { PRIMARY_HTTP_LIMITS } from './http-limits.js';
import { createPrimaryMetrics } from './metrics.js';
import { createMirrorRegistry, type MirrorRegistry } from './mirrors/registry.js';
import { createNotifier, type Notifier } from './mirrors/notifier.js';
import { createStaticMirrorCredentials, type MirrorCredentials } from './mirrors/credential-store.js';
import { createMirrorAuth } from './routes/mirror-auth.js';
import { createStaticPublishAuth, type PublishAuth } from './publish/auth.js';
import { registerRateLimiting } from '@metasync/shared/http';
import { createRefusalCounter, type RateLimitConfig } from './routes/rate-limits.js';
import type { PrimaryCore } from './data-dir.js';
import type { SourceWatchStatus } from './watch/watch-status.js';
import type { UpstreamStatus } from './upstream/status.js';
import { upstreamHealthRoutes } from './routes/upstream-health.js';
import { adminRoutes } from './routes/admin.js';
import { packagistChangesRoutes } from './routes/packagist-changes.js';
import { publishApiPlugin } from './routes/publish-api.js';
import { repositoryRoutes } from './routes/repository.js';
import { statusPageRoutes } from './routes/status-page.js';
import { syncObjectRoutes } from './routes/sync-objects.js';
import { syncRoutes } from './routes/sync.js';
import { distPinRoutes } from './routes/dist-pins.js';
import { createDistPins } from './dists/pins.js';

export interface AppDeps {
  core: Pick<PrimaryCore, 'publisher' | 'snapshots' | 'key' | 'keyRing' | 'objectGc' | 'brotliBackfill'>;
  logger: Logger;
  /** Bearer tokens for the publish and admin API; empty disables both (unless `publishAuth` has a tokens file). */
  publishTokens: readonly string[];
  /** Scoped, reloadable tokens (publish/auth.ts); replaces `publishTokens`. The app closes it. */
  publishAuth?: PublishAuth;
  /** Enrolled mirrors (mirrors/credential-store.ts); default: none enrolled, in memory. The app closes it. */
  mirrorCredentials?: MirrorCredentials;
  /** Publish and admin rate limits; default DEFAULT_RATE_LIMITS. */
  rateLimits?: RateLimitConfig;
  maxBodyBytes: number;
  heartbeatMs: number;
  /** What the server tolerates from clients (timeouts, header size, connections); default PRIMARY_HTTP_LIMITS. */
  httpLimits?: HttpServerLimits;
  /** Serve HTTPS, HTTP/2 by ALPN with HTTP/1.1 as the fallback (shared server-factory.ts); undefined: plain HTTP. */
  tls?: TlsFiles | undefined;
  /** A mirror more than this behind shows as unhealthy on the status page. */
  statusStaleAfterMs?: number;
  /** The --source watcher's state, shown on /metrics and the status page; undefined without --source. */
  sourceWatch?: SourceWatchStatus | undefined;
  /** The --upstream follower's state, on /metrics, /health/upstream and the status page; undefined without --upstream. */
  upstream?: UpstreamStatus | undefined;
  now?: () => number;
}

export interface PrimaryApp {
  app: FastifyInstance;
  notifier: Notifier;
  registry: MirrorRegistry;
  mirrorCredentials: MirrorCredentials;
}

/**
 * Builds the primary's HTTP app without listening (tests use `app.inject()`).
 *
 *   /sync/v1/*                 sync protocol (routes/sync.ts, routes/sync-objects.ts)
 *   /metadata/changes.json     Packagist-compatible change feed
 *   /metrics                   Prometheus
 *   /health/upstream           with --upstream: 200 when following and fresh, else 503 with the reason
 *   /api/v1/packages/*         publish API (H2: routes/publish-api.ts), when a token is configured
 *   /admin/*                   admin calls with an admin publish token (routes/admin.ts), mirror enrollment among them
 *   (publish and admin routes are rate limited per token/address: routes/rate-limits.ts; nothing else is)
 *   /*                         the repository itself (routes/repository.ts)
 */
export async function buildApp(deps: AppDeps): Promise<PrimaryApp> {
  const { core, logger } = deps;
  const now = deps.now ?? Date.now;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Timeouts, header size and connection cap are set on the node server itself (shared http-limits.ts).
    ...fastifyTlsOptions(deps.tls),
    serverFactory: (handler) => createDaemonServer({ limits: deps.httpLimits ?? PRIMARY_HTTP_LIMITS, logger, tls: deps.tls, handler }),
    // Per-request logs would dominate serving cost; errors are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.maxBodyBytes,
    routerOptions: { maxParamLength: 1024 },
    // A URL the router cannot even decode (`%zz`) is a refused path, in our error shape.
    frameworkErrors: (error, _request, reply) => {
      const path = error.code === 'FST_ERR_BAD_URL';
      void (reply as FastifyReply).code(400).send({
        code: path ? 'METASYNC_ERR_PATH_INVALID' : 'METASYNC_ERR_REQUEST_INVALID',
        message: path ? 'request path has a malformed percent-escape' : error.message,
        // Same shape as the publish API's rejections, which this handler also answers for.
        field: path ? 'path' : 'request',
        rule: path ? 'percent-encoding' : String(error.code),
      });
    },
    return503OnClosing: true,
  });
  const notifier = createNotifier({ publisher: core.publisher, heartbeatMs: deps.heartbeatMs, log: logger });
  const mirrorCredentials = deps.mirrorCredentials ?? createStaticMirrorCredentials();
  const registry = createMirrorRegistry({
    journal: core.publisher.journal,
    isConnected: notifier.isConnected,
    isEnrolled: mirrorCredentials.isEnrolled,
  });
  const metrics = createPrimaryMetrics({
    publisher: core.publisher,
    connectedMirrors: notifier.connectedCount,
    objectGc: core.objectGc,
    sourceWatch: deps.sourceWatch,
    upstream: deps.upstream,
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isMetasyncError(err)) {
      if (err.statusCode >= 500) request.log.error({ err, url: request.url }, 'request failed');
      return reply.code(err.statusCode).send({ ...err.details, code: err.code, message: err.message });
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.code(413).send({
        code: 'METASYNC_ERR_REQUEST_TOO_LARGE',
        message: `request body exceeds ${deps.maxBodyBytes} bytes`,
        limit: deps.maxBodyBytes,
      });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode === 415 ? 415 : 400).send({ code: 'METASYNC_ERR_REQUEST_INVALID', message: err.message });
    }
    request.log.error({ err, url: request.url }, 'request failed');
    return reply.code(500).send({ message: 'internal server error' });
  });

  app.addHook('preClose', (done) => {
    notifier.close();
    done();
  });
  const auth = deps.publishAuth ?? createStaticPublishAuth(deps.publishTokens);
  app.addHook('onClose', (_instance, done) => {
    metrics.close();
    auth.close();
    mirrorCredentials.close();
    done();
  });

  const requireMirror = createMirrorAuth({ credentials: mirrorCredentials, registry: metrics.registry });
  syncRoutes(app, {
    publisher: core.publisher,
    snapshots: core.snapshots,
    keyRing: core.keyRing,
    notifier,
    registry,
    requireMirror,
    observeVisible: metrics.observeVisible,
    now,
  });
  syncObjectRoutes(app, { store: core.publisher.store, onPack: () => core.brotliBackfill.postpone() });
  distPinRoutes(app, { pins: createDistPins({ publisher: core.publisher, log: logger, now }), requireMirror });
  packagistChangesRoutes(app, { journal: core.publisher.journal, now });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/',
    handler: async (_request, reply) =>
      reply.header('cache-control', 'public, max-age=300').type('text/plain; charset=utf-8').send(landingPageText('primary')),
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.header('content-type', metrics.registry.contentType).header('cache-control', 'no-store').send(text);
  });
  await registerRateLimiting(app);
  const refusals = createRefusalCounter(metrics.registry);
  if (auth.enabled()) {
    await app.register(publishApiPlugin, {
      publisher: core.publisher,
      auth,
      refusals,
      maxBodyBytes: deps.maxBodyBytes,
      ...(deps.rateLimits === undefined ? {} : { rateLimit: deps.rateLimits.publish }),
    });
  }
  await adminRoutes(app, {
    snapshots: core.snapshots,
    keyRing: core.keyRing,
    auth,
    mirrorCredentials,
    refusals,
    ...(deps.rateLimits === undefined ? {} : { rateLimit: deps.rateLimits.admin }),
  });
  statusPageRoutes(app, {
    registry,
    now,
    staleAfterMs: deps.statusStaleAfterMs ?? 5_000,
    sourceWatch: deps.sourceWatch,
    upstream: deps.upstream,
  });
  if (deps.upstream !== undefined) upstreamHealthRoutes(app, { status: deps.upstream, now });
  repositoryRoutes(app, { publisher: core.publisher, keyRing: core.keyRing });
  return { app, notifier, registry, mirrorCredentials };
}
