import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per mirror instance (tests build several apps in one process). */
export interface MirrorMetrics {
  registry: Registry;
  appliedSeq: Gauge;
  headSeq: Gauge;
  lagSeq: Gauge;
  lagMs: Gauge;
  applyDuration: Histogram;
  bytesFetched: Counter;
  objectsFetched: Counter;
  objectsRejected: Counter;
  batchesRefused: Counter;
  syncErrors: Counter<'code'>;
  responses: Counter<'source' | 'status'>;
  proxied: Counter<'outcome'>;
  proxyRefused: Counter<'reason'>;
  notFound: Counter;
  cacheHits: Counter;
  cacheMisses: Counter;
}

export function createMetrics(options: { defaultMetrics: boolean }): MirrorMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    appliedSeq: new Gauge({ name: 'metasync_mirror_applied_seq', help: 'generation the mirror serves', registers }),
    headSeq: new Gauge({ name: 'metasync_mirror_primary_head_seq', help: "primary's head as last heard", registers }),
    lagSeq: new Gauge({ name: 'metasync_mirror_lag_seq', help: 'generations behind the primary head as last heard', registers }),
    lagMs: new Gauge({ name: 'metasync_mirror_lag_ms', help: 'ms the mirror has been behind the head as last heard', registers }),
    applyDuration: new Histogram({
      name: 'metasync_mirror_apply_duration_seconds',
      help: 'time to fetch, verify and switch one batch',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 120],
      registers,
    }),
    bytesFetched: new Counter({
      name: 'metasync_mirror_fetched_bytes_total',
      help: 'object bytes received from the primary (wire size)',
      registers,
    }),
    objectsFetched: new Counter({ name: 'metasync_mirror_fetched_objects_total', help: 'objects fetched, verified and stored', registers }),
    objectsRejected: new Counter({
      name: 'metasync_mirror_rejected_objects_total',
      help: 'object transfers discarded for hash or size mismatch',
      registers,
    }),
    batchesRefused: new Counter({
      name: 'metasync_mirror_refused_batches_total',
      help: 'batches or snapshots refused (signature, rollback, protocol)',
      registers,
    }),
    syncErrors: new Counter({
      name: 'metasync_mirror_sync_errors_total',
      help: 'failed sync runs by error code (retried with backoff)',
      labelNames: ['code'] as const,
      registers,
    }),
    responses: new Counter({
      name: 'metasync_mirror_responses_total',
      help: 'repository responses by source and status',
      labelNames: ['source', 'status'] as const,
      registers,
    }),
    proxied: new Counter({
      name: 'metasync_mirror_proxied_responses_total',
      help: 'proxy fallback answers by outcome',
      labelNames: ['outcome'] as const,
      registers,
    }),
    proxyRefused: new Counter({
      name: 'metasync_mirror_proxy_refused_total',
      help: 'proxied answers refused (answered 404 no-store) because the primary did not vouch for them, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    notFound: new Counter({ name: 'metasync_mirror_not_found_total', help: 'repository 404 answers', registers }),
    cacheHits: new Counter({
      name: 'metasync_mirror_hot_cache_hits_total',
      help: 'responses served from the in-memory hot cache',
      registers,
    }),
    cacheMisses: new Counter({
      name: 'metasync_mirror_hot_cache_misses_total',
      help: 'responses that read the object from disk',
      registers,
    }),
  };
}
