import { join } from 'node:path';
import PQueue from 'p-queue';
import type { PublicKeyInfo } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { BROTLI_OWED_FILE, createBrotliBackfill, releasingAfterBackfill, type ObjectStore } from '@metasync/store';
import type { SyncStatus } from '../health.js';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import { createAcker } from './acker.js';
import { housekeepingIntervalMs, runHousekeeping } from './housekeeping.js';
import type { PrimaryClient } from './primary-client.js';
import { createPuller } from './puller.js';
import type { S3BootstrapSource } from './s3-source.js';
import { createScheduler } from './scheduler.js';
import { createStatePoll } from './state-poll.js';
import { createTrustedKeys, type TrustedKeys } from './trusted-keys.js';

/**
 * The sync loop, wired from parts with one job each:
 *
 *   scheduler.ts    when: triggers (SSE head, poll, reconnect, retry, housekeeping timer), single flight
 *   puller.ts       what: changes since the applied seq, or a snapshot (S3 or primary), applied
 *   batch-rules.ts  whether: the pure rules a batch or snapshot must meet (rollback, gaps, empty batches)
 *   trusted-keys.ts whose: pinned or first-use keys, signed documents verified against them
 *   state-poll.ts   the primary's state behind a freshness challenge; primary-behind detection
 *   acker.ts        tells the primary the applied seq
 *   housekeeping.ts after each run: GC of expired dereferenced objects, compaction when the log is big
 *
 * Failures set `status.lastError`, and a retry timer with backoff + jitter.
 */
export interface SyncerOptions {
  dataDir: string;
  mirrorId: string;
  /** Enrollment credential: names the mirror on the push stream (acks carry it through `client`). */
  credential?: string | undefined;
  region: string;
  publicUrl: () => string;
  log: IndexLog;
  store: ObjectStore;
  client: PrimaryClient;
  status: SyncStatus;
  metrics: MirrorMetrics;
  logger: Logger;
  primaryUrl: string;
  /** Pinned with --primary-key; otherwise trust on first use. */
  pinnedKeys: PublicKeyInfo[] | undefined;
  fetchConcurrency: number;
  pollIntervalMs: number;
  gcGraceMs: number;
  connectTimeoutMs: number;
  /** --primary-ca, for the push stream (the client has its own). */
  primaryCa?: Buffer | undefined;
  /** Silence after which the push stream is reconnected (events.ts). */
  eventsIdleTimeoutMs?: number;
  /** Disable the SSE stream (tests of the poll fallback). */
  useEvents?: boolean;
  /** Cold start from the primary's S3 bucket while the mirror is empty (falls back to the primary's snapshot). */
  s3Bootstrap?: S3BootstrapSource | undefined;
}

export interface Syncer {
  start(): void;
  /** Request a pull; returns when the worker that will see it finishes. */
  trigger(reason: string): Promise<void>;
  stop(): Promise<void>;
  /** The trusted primary keys, for verifying what is not a sync document (the proxy fallback's answers). */
  keys: Pick<TrustedKeys, 'known' | 'verifying'>;
}

export function createSyncer(options: SyncerOptions): Syncer {
  const { log, status, metrics, logger, client } = options;
  const keys = createTrustedKeys({
    dataDir: options.dataDir,
    pinnedKeys: options.pinnedKeys,
    primaryUrl: options.primaryUrl,
    client,
    metrics,
    logger,
    offeredState: async () => (await statePoll.fetchState()).hint,
  });
  const statePoll = createStatePoll({ log, client, keys, status, metrics, logger });
  const scheduler = createScheduler({
    async run() {
      await puller.pull();
      await runHousekeeping({ log, store: options.store, gcGraceMs: options.gcGraceMs, logger });
    },
    fetchState: () => statePoll.fetchState(),
    log,
    status,
    metrics,
    logger,
    primaryUrl: options.primaryUrl,
    mirrorId: options.mirrorId,
    credential: options.credential,
    connectTimeoutMs: options.connectTimeoutMs,
    primaryCa: options.primaryCa,
    pollIntervalMs: options.pollIntervalMs,
    housekeepingIntervalMs: housekeepingIntervalMs(options.gcGraceMs),
    ...(options.eventsIdleTimeoutMs === undefined ? {} : { eventsIdleTimeoutMs: options.eventsIdleTimeoutMs }),
    ...(options.useEvents === undefined ? {} : { useEvents: options.useEvents }),
  });
  const acker = createAcker({
    mirrorId: options.mirrorId,
    region: options.region,
    publicUrl: options.publicUrl,
    log,
    client,
    logger,
    stopping: scheduler.stopping,
  });
  const brotliBackfill = releasingAfterBackfill(
    createBrotliBackfill({
      store: options.store,
      pendingMarkerPath: join(options.dataDir, BROTLI_OWED_FILE),
      onError: (err) => logger.warn({ err }, 'brotli variants not made'),
      onDropped: (dropped) =>
        logger.info({ dropped }, 'brotli backfill queue full: these serve gzip until the sweep after the queue makes their variant'),
    }),
  );
  const puller = createPuller({
    log,
    store: options.store,
    client,
    queue: new PQueue({ concurrency: options.fetchConcurrency }),
    keys,
    statePoll,
    status,
    metrics,
    logger,
    s3Bootstrap: options.s3Bootstrap,
    stopping: scheduler.stopping,
    onApplied: () => void acker.ack(),
    brotliBackfill,
  });

  return {
    start: scheduler.start,
    trigger: scheduler.trigger,
    async stop() {
      await scheduler.stop();
      await brotliBackfill.close();
    },
    keys,
  };
}
