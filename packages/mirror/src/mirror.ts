import { randomBytes } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createRegistrar } from '@metasync/dns/registrar';
import { hasErrno } from '@metasync/shared';
import { memoryAllocator, pickHttpLimits, releaseMemory, type Logger } from '@metasync/shared/daemon';
import { writeFileAtomic } from '@metasync/shared/fs';
import { openObjectStore } from '@metasync/store';
import { buildApp } from './app.js';
import type { MirrorConfig } from './config.js';
import { createSelfRegistration, type SelfRegistration } from './dns/self-register.js';
import { assessFreshness, createDrainState, createSyncStatus, noteApplied, type DrainState, type SyncStatus } from './health.js';
import { createHotCache } from './serve/hot-cache.js';
import { openIndexLog, type IndexLog } from './index/index-log.js';
import { createMetrics, type MirrorMetrics } from './metrics.js';
import { createProxy } from './serve/proxy.js';
import { parsePinnedKey } from './sync/keys.js';
import { createS3BootstrapSource } from './sync/s3-source.js';
import { createPrimaryClient } from './sync/primary-client.js';
import { createSyncer, type Syncer } from './sync/syncer.js';
import { openDists } from './dists/open-dists.js';
import { resolveWorkerCount } from './workers/worker-count.js';
import { createWorkerCounters, registerWorkerMetrics, sumAnswerCounts } from './workers/worker-counters.js';

/**
 * With serving workers the main thread answers only what they forward (health, admin, the proxy
 * fallback, odd URLs): a small cache is plenty, and each worker has the full --hot-cache-bytes.
 */
const MAIN_HOT_CACHE_WITH_WORKERS_BYTES = 8 * 1024 * 1024;

/**
 * Wires one mirror: data dir -> index log + object store -> app + syncer.
 * Listening and process signals stay in main.ts; tests call this directly.
 */
export interface Mirror {
  app: FastifyInstance;
  syncer: Syncer;
  log: IndexLog;
  status: SyncStatus;
  metrics: MirrorMetrics;
  mirrorId: string;
  /** Set by POST /admin/drain (or a self-registered shutdown): /health/fresh answers 503 draining. */
  drain: DrainState;
  /** With --dns-self-register: withdraw (drain, SIGTERM) and retire (last step of a shutdown); undefined without. */
  dns: { withdraw(): Promise<void>; retire(): Promise<void> } | undefined;
  /** Serving threads (--workers resolved): 1 = the app's own server serves; more = workers/worker-pool.ts. */
  workers: number;
  /** With workers: their shared counters (workers/worker-counters.ts), folded into /metrics. */
  workerCounters: Float64Array | undefined;
  /** Starts syncing; `publicUrl` is what acks report (known only after listen). */
  startSync(publicUrl: string): void;
  /** Stops syncing, closes the server (finishing in-flight requests) and the log. */
  close(): Promise<void>;
}

export async function openMirror(
  config: MirrorConfig,
  logger: Logger,
  options: { defaultMetrics?: boolean; useEvents?: boolean } = {},
): Promise<Mirror> {
  await mkdir(config.data, { recursive: true });
  const mirrorId = config.mirrorId ?? (await loadOrCreateMirrorId(config.data));
  const pinnedKeys = config.primaryKey === undefined ? undefined : [parsePinnedKey(config.primaryKey)];
  // Chosen by the operator (config.ts refuses to start otherwise), and said at every start so it is not forgotten.
  if (pinnedKeys === undefined)
    logger.warn(
      { primary: config.primary },
      '--trust-first-key: no pinned primary key, trusting the keys first seen (or pinned earlier in the data dir); pin them with --primary-key',
    );
  if (config.mirrorCredential === undefined)
    logger.warn(
      { mirrorId },
      'no --mirror-credential: the primary refuses this mirror’s acks and it is not listed; enroll it (metasync mirror up --credential-file)',
    );
  const workers = resolveWorkerCount(config.workers);
  // Serving threads read the index where the main thread writes it: shared memory, never a copy per worker.
  const { log, repairedTail } = await openIndexLog(config.data, { sharedIndex: workers > 1 });
  if (repairedTail) logger.warn({ seq: log.state.seq }, 'cut a torn tail off the index log');
  // The allocator decides whether a bootstrap's freed native memory goes back to the system (memory-allocator.ts).
  logger.info(
    { seq: log.state.seq, paths: log.state.pathCount(), mirrorId, allocator: memoryAllocator(), nodeFlags: process.execArgv },
    'index loaded',
  );
  // Reading the index log leaves its records behind as garbage: at 100k paths the heap had grown to ~200 MB
  // for ~65 MB live, and an idle or cache-served mirror would keep it that size.
  releaseMemory();
  const store = await openObjectStore({ dir: join(config.data, 'objects'), keepFileThread: true });
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics ?? true });
  const workerCounters = workers > 1 ? createWorkerCounters(workers) : undefined;
  if (workerCounters !== undefined) registerWorkerMetrics(metrics.registry, workerCounters);
  metrics.appliedSeq.set(log.state.seq);
  const status = createSyncStatus();
  noteApplied(status, log.state.seq, status.monoNowMs());
  const client = createPrimaryClient({
    primaryUrl: config.primary,
    mirrorId,
    ...(config.mirrorCredential === undefined ? {} : { credential: config.mirrorCredential }),
    connections: config.fetchConcurrency,
    connectTimeoutMs: config.connectTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    ca: config.primaryCa,
  });
  let publicUrl = config.publicUrl ?? `${config.tls === undefined ? 'http' : 'https'}://${config.listen.host}:${config.listen.port}`;
  const s3Bootstrap = createS3BootstrapSource({ config, store, logger, concurrency: config.fetchConcurrency });
  const syncer = createSyncer({
    dataDir: config.data,
    mirrorId,
    credential: config.mirrorCredential,
    region: config.region,
    publicUrl: () => publicUrl,
    log,
    store,
    client,
    status,
    metrics,
    logger,
    primaryUrl: config.primary,
    pinnedKeys,
    fetchConcurrency: config.fetchConcurrency,
    pollIntervalMs: config.pollIntervalMs,
    gcGraceMs: config.gcGraceMs,
    connectTimeoutMs: config.connectTimeoutMs,
    primaryCa: config.primaryCa,
    eventsIdleTimeoutMs: config.eventsIdleTimeoutMs,
    ...(options.useEvents === undefined ? {} : { useEvents: options.useEvents }),
    s3Bootstrap,
  });
  // The proxy fallback verifies answers with the keys the syncer trusts (and follows their rotations).
  const proxy = createProxy({
    primaryUrl: config.primary,
    connectTimeoutMs: config.connectTimeoutMs,
    totalTimeoutMs: config.proxyTimeoutMs,
    ca: config.primaryCa,
    maxBodyBytes: config.proxyMaxBodyBytes,
    trust: syncer.keys,
    metrics,
    logger,
  });
  const dists = await openDists({
    config,
    index: log.state,
    store,
    client,
    registry: metrics.registry,
    publicUrl: () => publicUrl,
    logger,
  });
  const drain = createDrainState();
  const limits = { maxLagMs: config.maxLagMs, maxLagSeq: config.maxLagSeq, maxUnconfirmedMs: config.maxUnconfirmedMs };
  const dnsRegistrar = config.dns === undefined ? undefined : await createRegistrar(config.dns.registrar);
  let selfRegistration: SelfRegistration | undefined;
  const dns =
    dnsRegistrar === undefined
      ? undefined
      : {
          withdraw: async () => selfRegistration?.withdraw(),
          async retire() {
            await selfRegistration?.retire();
            dnsRegistrar.close();
          },
        };
  const app = buildApp({
    index: log.state,
    store,
    hotCache: createHotCache(workers > 1 ? Math.min(config.hotCacheBytes, MAIN_HOT_CACHE_WITH_WORKERS_BYTES) : config.hotCacheBytes),
    metrics,
    proxy,
    status,
    limits,
    logger,
    drain,
    admin: {
      adminToken: config.adminToken,
      mirrorId,
      withdrawFromDns: dns?.withdraw,
      rateLimit: { max: config.adminRateLimit, windowMs: config.rateLimitWindowMs },
    },
    httpLimits: pickHttpLimits(config),
    tls: config.tls,
    dists: dists.route,
    ...(workerCounters === undefined ? {} : { moreAnswerCounts: () => sumAnswerCounts(workerCounters) }),
  });
  let closed = false;
  return {
    app,
    syncer,
    log,
    status,
    metrics,
    mirrorId,
    drain,
    dns,
    workers,
    workerCounters,
    startSync(url) {
      publicUrl = config.publicUrl ?? url;
      syncer.start();
      if (dnsRegistrar !== undefined && config.dns !== undefined && selfRegistration === undefined) {
        selfRegistration = createSelfRegistration({
          registrar: dnsRegistrar.registrar,
          endpoint: {
            mirrorId,
            region: config.region,
            address: config.dns.address,
            healthUrl: `${publicUrl.replace(/\/+$/, '')}/health/fresh`,
          },
          isFresh: () => !drain.draining && assessFreshness(status, log.state.seq, status.monoNowMs(), limits).fresh,
          logger,
        });
        selfRegistration.start();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // Sync first: an apply in progress finishes its commit (or never starts it), then serving stops.
      await syncer.stop();
      await app.close();
      await proxy.close();
      await dists.close();
      await client.close();
      await log.close();
      s3Bootstrap?.close();
      await store.close();
    },
  };
}

async function loadOrCreateMirrorId(dataDir: string): Promise<string> {
  const path = join(dataDir, 'mirror-id');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
  const id = `m-${randomBytes(6).toString('hex')}`;
  await writeFileAtomic(path, `${id}\n`);
  return id;
}
