import type PQueue from 'p-queue';
import { HEADERS, SYNC_ROUTES, changesBatchSchema } from '@metasync/shared';
import { parseSnapshotDocument, parseSyncDocument } from './parse-document.js';
import type { Logger } from '@metasync/shared/daemon';
import type { BrotliBackfill, ObjectStore } from '@metasync/store';
import { noteApplied, noteHead, type SyncStatus } from '../health.js';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import { applyChanges, applySnapshot, type ApplyContext } from './apply.js';
import { judgeChangesBatch, judgeSnapshot, judgeFailedChanges, protocolError, refusalError } from './batch-rules.js';
import type { PrimaryClient } from './primary-client.js';
import type { S3BootstrapSource } from './s3-source.js';
import type { StatePoll } from './state-poll.js';
import type { TrustedKeys } from './trusted-keys.js';

export interface PullerOptions {
  log: IndexLog;
  store: ObjectStore;
  client: PrimaryClient;
  queue: PQueue;
  keys: TrustedKeys;
  statePoll: StatePoll;
  status: SyncStatus;
  metrics: MirrorMetrics;
  logger: Logger;
  /** Cold start from the primary's S3 bucket while the mirror is empty (falls back to the primary's snapshot). */
  s3Bootstrap: S3BootstrapSource | undefined;
  stopping: () => boolean;
  /** Called after each applied generation (the ack). */
  onApplied: () => void;
  /** Makes the brotli variants of objects that came without one, after their apply (apply.ts). */
  brotliBackfill?: BrotliBackfill;
}

export interface Puller {
  /** Bootstraps an empty mirror, then pulls signed batches until the head (bounded), or resyncs from a snapshot on 410. */
  pull(): Promise<void>;
}

/** Most batches pulled in one run before yielding to other triggers. */
const MAX_ROUNDS_PER_RUN = 1000;

/**
 *   pull: changes?since=applied --200--> verify signature -> rules -> apply -> ack
 *                   |                     (loop while to < head, bounded)
 *                   +--410--> snapshot -> verify -> rules -> apply (bootstrap/resync)
 *
 * What a batch or snapshot may be, given the applied seq, is decided in batch-rules.ts.
 */
export function createPuller(options: PullerOptions): Puller {
  const { log, client, keys, statePoll, status, metrics, logger } = options;
  let lastProgressLogMs = 0;

  const context: ApplyContext = {
    log,
    store: options.store,
    client,
    queue: options.queue,
    metrics,
    logger,
    objectAttempts: 3,
    stopping: options.stopping,
    ...(options.brotliBackfill === undefined ? {} : { brotliBackfill: options.brotliBackfill }),
    onProgress(done, total) {
      const now = Date.now();
      if (total < 500 || (now - lastProgressLogMs < 2_000 && done !== total)) return;
      lastProgressLogMs = now;
      logger.info({ done, total, percent: Math.floor((done / total) * 100) }, 'fetching objects');
    },
  };

  async function pull(): Promise<void> {
    await keys.load();
    if (log.state.seq === 0 && !(await bootstrapFromBucket())) {
      const { hint } = await statePoll.fetchState();
      if (hint.snapshotSeq > 0) await resync('bootstrap');
    }
    for (let round = 0; round < MAX_ROUNDS_PER_RUN && !options.stopping(); round++) {
      const since = log.state.seq;
      const query = { since: String(since) };
      const response = await client.get(SYNC_ROUTES.changes, { query });
      status.heardAtMs = status.monoNowMs();
      if (response.status === 410) {
        // A 410 for `since` with a snapshot at exactly `since` would loop; it means a stale (replayed) snapshot.
        if (!(await resync(`changes since ${since} answered 410`)))
          throw protocolError(`changes since ${since} answered 410, but the snapshot is at that same seq`);
        continue;
      }
      if (response.status !== 200) {
        throw refusalError(judgeFailedChanges({ sinceSeq: since, httpStatus: response.status, primaryBehindSeq: status.primaryBehindSeq }));
      }
      const batch = await keys.readSigned({
        route: SYNC_ROUTES.changes,
        query,
        parse: (body, what) => parseSyncDocument(body, changesBatchSchema, what),
        what: `changes since ${since}`,
        body: response.body,
        signature: response.headers[HEADERS.signature],
      });
      noteHead(status, batch.head, since, status.monoNowMs());
      const verdict = judgeChangesBatch(batch, since);
      if (verdict.action === 'refuse') {
        metrics.batchesRefused.inc();
        throw refusalError(verdict);
      }
      if (verdict.action === 'caught-up') return;
      const result = await applyChanges(context, batch);
      logger.info({ ...result, from: batch.from }, 'generation applied');
      afterApply();
      if (!verdict.more) return;
    }
  }

  /** Applies the primary's snapshot; false when it is exactly the applied generation (nothing to do). */
  async function resync(reason: string): Promise<boolean> {
    logger.info({ reason, seq: log.state.seq }, 'resyncing from snapshot');
    const response = await client.get(SYNC_ROUTES.snapshot);
    if (response.status !== 200) throw protocolError(`snapshot answered HTTP ${response.status}`);
    const snapshot = await keys.readSignedSnapshot({
      route: SYNC_ROUTES.snapshot,
      parse: parseSnapshotDocument,
      body: response.body,
      signature: response.headers[HEADERS.signature],
      statement: response.headers[HEADERS.snapshotStatement],
    });
    const verdict = judgeSnapshot(snapshot.seq, log.state.seq);
    if (verdict.action === 'refuse') {
      metrics.batchesRefused.inc();
      throw refusalError(verdict);
    }
    if (verdict.action === 'current') return false;
    const result = await applySnapshot(context, snapshot);
    logger.info({ ...result }, 'snapshot applied');
    afterApply();
    return true;
  }

  /** True once a snapshot from S3 is applied; any failure falls back to the primary's snapshot. */
  async function bootstrapFromBucket(): Promise<boolean> {
    if (options.s3Bootstrap === undefined) return false;
    try {
      const snapshot = await options.s3Bootstrap.bootstrap(await keys.load(), log.state.seq);
      if (snapshot === undefined) return false;
      const result = await applySnapshot(context, snapshot);
      logger.info({ ...result, source: 's3' }, 'snapshot applied');
      afterApply();
      return true;
    } catch (err) {
      logger.warn({ err }, 's3 bootstrap failed; bootstrapping from the primary');
      return false;
    }
  }

  function afterApply(): void {
    noteApplied(status, log.state.seq, status.monoNowMs());
    metrics.appliedSeq.set(log.state.seq);
    options.onApplied();
  }

  return { pull };
}
