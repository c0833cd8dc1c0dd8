import { Counter, Gauge, type Registry } from 'prom-client';

export interface DistMetrics {
  responses: Counter<'status'>;
  fetches: Counter<'from' | 'outcome'>;
  pinMismatches: Counter;
  evictions: Counter;
  cacheBytes: Gauge;
}

export function createDistMetrics(registry: Registry): DistMetrics {
  const registers = [registry];
  return {
    responses: new Counter({
      name: 'metasync_mirror_dist_responses_total',
      help: '/dists/ answers by status',
      labelNames: ['status'] as const,
      registers,
    }),
    fetches: new Counter({
      name: 'metasync_mirror_dist_fetches_total',
      help: 'archive fetches on a cache miss, by source (origin, peer) and outcome',
      labelNames: ['from', 'outcome'] as const,
      registers,
    }),
    pinMismatches: new Counter({
      name: 'metasync_mirror_dist_pin_mismatch_total',
      help: 'archives fetched whose sha256 differs from the pinned one (refused, never served)',
      registers,
    }),
    evictions: new Counter({ name: 'metasync_mirror_dist_evictions_total', help: 'archives evicted past --dist-cache-bytes', registers }),
    cacheBytes: new Gauge({ name: 'metasync_mirror_dist_cache_bytes', help: 'bytes of archives in the cache', registers }),
  };
}
