/** Wires the dist archive cache from the mirror's config (mirror.ts calls it; nothing here listens). */
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { Agent } from 'undici';
import type { Logger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import type { MirrorConfig } from '../config.js';
import type { IndexView } from '../index/index-state.js';
import type { PrimaryClient } from '../sync/primary-client.js';
import { openArchiveStore } from './archive-store.js';
import { createDistMetrics } from './dist-metrics.js';
import type { DistRouteOptions } from './dist-route.js';
import { createDistService } from './dist-service.js';
import { createOriginAgent } from './origin-guard.js';

export async function openDists(options: {
  config: MirrorConfig;
  index: IndexView;
  store: ObjectStore;
  client: Pick<PrimaryClient, 'postAsMirror'>;
  registry: Registry;
  publicUrl: () => string;
  logger: Logger;
}): Promise<{ route: Omit<DistRouteOptions, 'logger'>; close(): Promise<void> }> {
  const { config, logger } = options;
  const metrics = createDistMetrics(options.registry);
  if (config.distCacheBytes === 0) return { route: { service: undefined, archives: undefined, metrics }, close: async () => {} };
  const archives = await openArchiveStore({
    dir: join(config.data, 'dists'),
    budgetBytes: config.distCacheBytes,
    onEvict: () => metrics.evictions.inc(),
  });
  metrics.cacheBytes.set(archives.totalBytes());
  const connections = config.distFetchConcurrency;
  const originAgent = createOriginAgent({ allowPrivate: config.distAllowPrivate, connectTimeoutMs: config.connectTimeoutMs, connections });
  const peerAgent = new Agent({ connections, connect: { timeout: config.connectTimeoutMs } });
  const service = createDistService({
    index: options.index,
    store: options.store,
    archives,
    originAgent,
    peerAgent,
    policy: { allowHosts: config.distAllowHosts, allowPrivate: config.distAllowPrivate },
    maxBytes: config.distMaxBytes,
    timeoutMs: config.distFetchTimeoutMs,
    concurrency: config.distFetchConcurrency,
    client: options.client,
    publicUrl: options.publicUrl,
    metrics,
    logger,
  });
  logger.info(
    { archives: archives.count(), bytes: archives.totalBytes(), budgetBytes: config.distCacheBytes },
    'dist archive cache opened',
  );
  return {
    route: { service, archives, metrics },
    async close() {
      await Promise.all([originAgent.close(), peerAgent.close()]);
    },
  };
}
