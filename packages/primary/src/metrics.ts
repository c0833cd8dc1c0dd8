import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommitInfo, PrimaryPublisher } from './publisher.js';

/** Prometheus metrics of one primary app (own registry, so tests can build several apps). */
export interface PrimaryMetrics {
  registry: Registry;
  observeVisible(latencyMs: number): void;
}

const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createPrimaryMetrics(options: { publisher: PrimaryPublisher; connectedMirrors: () => number }): PrimaryMetrics & { close(): void } {
  const { publisher } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const generations = new Counter({ name: 'metasync_generations_total', help: 'generations committed', registers: [registry] });
  const paths = new Counter({ name: 'metasync_paths_published_total', help: 'path changes committed (updates and deletions)', registers: [registry] });
  const commitSeconds = new Histogram({
    name: 'metasync_publish_commit_seconds',
    help: 'publish submit to durable commit, per submit',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  const visibleSeconds = new Histogram({
    name: 'metasync_publish_visible_seconds',
    help: 'commit to mirror ack of the generation (publish-to-visible), per ack',
    buckets: LATENCY_BUCKETS_SECONDS,
    registers: [registry],
  });
  new Gauge({
    name: 'metasync_connected_mirrors',
    help: 'open events streams',
    registers: [registry],
    collect() {
      this.set(options.connectedMirrors());
    },
  });
  new Gauge({
    name: 'metasync_head_seq',
    help: 'seq of the head generation',
    registers: [registry],
    collect() {
      this.set(publisher.headSeq());
    },
  });
  const unsubscribe = publisher.onCommit((info: CommitInfo) => {
    generations.inc();
    paths.inc(info.generation.entries.length);
    for (const latencyMs of info.submitLatenciesMs) commitSeconds.observe(latencyMs / 1000);
  });
  return {
    registry,
    observeVisible: (latencyMs) => visibleSeconds.observe(latencyMs / 1000),
    close: unsubscribe,
  };
}
