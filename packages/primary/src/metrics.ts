import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ObjectGc, ObjectGcRun } from './store/gc.js';
import type { CommitInfo, PrimaryPublisher } from './publish/publisher.js';
import type { ScanReason, SourceWatchStatus } from './watch/watch-status.js';
import type { UpstreamStatus } from './upstream/status.js';

/** Prometheus metrics of one primary app (own registry, so tests can build several apps). */
export interface PrimaryMetrics {
  registry: Registry;
  observeVisible(latencyMs: number): void;
}

const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createPrimaryMetrics(options: {
  publisher: PrimaryPublisher;
  connectedMirrors: () => number;
  objectGc?: Pick<ObjectGc, 'onRun'> | undefined;
  /** The --source watcher's state; without --source its series are absent. */
  sourceWatch?: SourceWatchStatus | undefined;
  /** The --upstream follower's state; without --upstream its series are absent. */
  upstream?: UpstreamStatus | undefined;
}): PrimaryMetrics & { close(): void } {
  const { publisher } = options;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const generations = new Counter({ name: 'metasync_generations_total', help: 'generations committed', registers: [registry] });
  const paths = new Counter({
    name: 'metasync_paths_published_total',
    help: 'path changes committed (updates and deletions)',
    registers: [registry],
  });
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
  const reservedRefused = new Counter({
    name: 'metasync_primary_reserved_paths_refused_total',
    help: 'paths refused because a daemon route owns them (health, metrics, sync, api, admin, status), by source',
    labelNames: ['source'],
    registers: [registry],
  });
  // Both series exist from the start, so an alert on any increase needs no special case.
  for (const source of ['watch', 'api', 'upstream']) reservedRefused.inc({ source }, 0);
  const unsubscribeReserved = publisher.onReservedRefused((source) => reservedRefused.inc({ source }));
  const unsubscribe = publisher.onCommit((info: CommitInfo) => {
    generations.inc();
    paths.inc(info.generation.entries.length);
    for (const latencyMs of info.submitLatenciesMs) commitSeconds.observe(latencyMs / 1000);
  });
  const unsubscribeGc = observeObjectGc(registry, options.objectGc);
  if (options.sourceWatch !== undefined) observeSourceWatch(registry, options.sourceWatch);
  if (options.upstream !== undefined) observeUpstream(registry, options.upstream);
  return {
    registry,
    observeVisible: (latencyMs) => visibleSeconds.observe(latencyMs / 1000),
    close() {
      unsubscribe();
      unsubscribeReserved();
      unsubscribeGc();
    },
  };
}

/** The local object store GC's counters (absent GC: the series stay at zero, so dashboards need no special case). */
function observeObjectGc(registry: Registry, objectGc: Pick<ObjectGc, 'onRun'> | undefined): () => void {
  const runs = new Counter({ name: 'metasync_object_gc_runs_total', help: 'object GC runs completed', registers: [registry] });
  const deleted = new Counter({
    name: 'metasync_object_gc_deleted_objects_total',
    help: 'local objects deleted by the GC (raw and its compressed siblings count as one)',
    registers: [registry],
  });
  const freed = new Counter({
    name: 'metasync_object_gc_freed_bytes_total',
    help: 'bytes of local object files deleted by the GC',
    registers: [registry],
  });
  const candidates = new Gauge({
    name: 'metasync_object_gc_candidates',
    help: 'unreferenced local objects waiting out the grace period (as of the last run)',
    registers: [registry],
  });
  if (objectGc === undefined) return () => undefined;
  return objectGc.onRun((run: ObjectGcRun) => {
    runs.inc();
    deleted.inc(run.deleted);
    freed.inc(run.bytesFreed);
    candidates.set(run.candidates);
  });
}

/** The watched tree: watches held, whether a watch limit forced fallback scanning (alert on 1), and its scans. */
function observeSourceWatch(registry: Registry, status: SourceWatchStatus): void {
  new Gauge({
    name: 'metasync_primary_watch_degraded',
    help: '1 once a watch limit (inotify ENOSPC, EMFILE, --source-max-watches) left part of --source unwatched and the tree is scanned instead; reason label',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { degraded } = status.snapshot();
      this.reset();
      this.set({ reason: degraded?.reason ?? 'none' }, degraded === undefined ? 0 : 1);
    },
  });
  new Gauge({
    name: 'metasync_primary_source_startup_reconciling',
    help: '1 while the start-up reconcile of --source runs (a restarted primary serves its last generation meanwhile)',
    registers: [registry],
    collect() {
      const { startup } = status.snapshot();
      this.set(startup !== undefined && startup.finished === undefined ? 1 : 0);
    },
  });
  new Gauge({
    name: 'metasync_primary_watch_directories',
    help: 'directories of --source with a watch (one inotify watch each; files need none)',
    registers: [registry],
    collect() {
      this.set(status.snapshot().watches);
    },
  });
  new Counter({
    name: 'metasync_primary_source_scans_total',
    help: 'reconciling walks of --source, by reason (burst, periodic, fallback, overflow)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { scans } = status.snapshot();
      this.reset();
      for (const reason of Object.keys(scans) as ScanReason[]) this.inc({ reason }, scans[reason]);
    },
  });
  new Counter({
    name: 'metasync_primary_source_files_read_total',
    help: 'files of --source read (start-up walk, events, rescans); it stays flat while the tree does not change',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(status.snapshot().filesRead);
    },
  });
  new Gauge({
    name: 'metasync_primary_source_scan_duration_seconds',
    help: 'duration of the last reconciling walk of --source (a stat per file)',
    registers: [registry],
    collect() {
      this.set((status.snapshot().lastScan?.durationMs ?? 0) / 1000);
    },
  });
}

/** The followed upstream: stale (alert on 1, reason label), refusals and retries by reason, pass progress, cursor age. */
function observeUpstream(registry: Registry, status: UpstreamStatus): void {
  new Gauge({
    name: 'metasync_primary_upstream_stale',
    help: '1 while the primary is not following its upstream fresh (bootstrap, resync, failing polls); reason label (error code or phase)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const snapshot = status.snapshot();
      this.reset();
      this.set({ reason: snapshot.staleCode }, snapshot.fresh ? 0 : 1);
    },
  });
  new Counter({
    name: 'metasync_primary_upstream_refused_total',
    help: 'upstream documents or names refused and not published (p2-package, p2-json, list-name, changes-backwards...), by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { refused } = status.snapshot();
      this.reset();
      for (const reason of Object.keys(refused)) this.inc({ reason }, refused[reason]);
    },
  });
  new Counter({
    name: 'metasync_primary_upstream_retries_total',
    help: 'upstream requests retried (status-429, status-503, timeout, truncated, network...), by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const { retries } = status.snapshot();
      this.reset();
      for (const reason of Object.keys(retries)) this.inc({ reason }, retries[reason]);
    },
  });
  new Gauge({
    name: 'metasync_primary_upstream_pass_files',
    help: 'the current or last bootstrap/resync pass: p2 files to look at (total), looked at (done), failed',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const { progress } = status.snapshot();
      this.set({ state: 'total' }, progress?.total ?? 0);
      this.set({ state: 'done' }, progress?.done ?? 0);
      this.set({ state: 'failed' }, progress?.failed ?? 0);
    },
  });
  new Gauge({
    name: 'metasync_primary_upstream_cursor_age_seconds',
    help: "now minus the change-feed cursor saved (the upstream's time we are in sync up to); 0 before the first",
    registers: [registry],
    collect() {
      const { cursor } = status.snapshot();
      this.set(cursor === undefined ? 0 : Math.max(0, Date.now() / 1000 - cursor / 10_000));
    },
  });
}
