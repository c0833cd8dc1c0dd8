import PQueue from 'p-queue';
import {
  HEADERS,
  SYNC_ROUTES,
  changesBatchSchema,
  isMetasyncError,
  metasyncError,
  snapshotSchema,
  verifyBody,
  type Logger,
  type PublicKeyInfo,
  type StateResponse,
} from '@metasync/shared';
import type { z } from 'zod';
import { armConfirmation, noteApplied, noteConfirmed, noteHead, noteStateRefused, type SyncStatus } from '../health.js';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import type { ObjectStore } from '../index/store.js';
import { applyChanges, applySnapshot, type ApplyContext } from './apply.js';
import { backoffMs, followEvents, type EventStream } from './events.js';
import { parseSyncDocument } from './parse-document.js';
import { collectGarbage } from './gc.js';
import { createKeyTrust } from './key-trust.js';
import type { PrimaryClient } from './primary-client.js';
import type { S3BootstrapSource } from './s3-source.js';
import { newStateNonce, parseState, verifyStateAnswer } from './state-challenge.js';

/**
 * The sync loop. Triggers (SSE head, poll, reconnect, retry timer, GC timer)
 * only set a flag; one worker runs at a time (single flight) and loops while
 * triggers arrived during its run, so bursts coalesce into few pulls.
 *
 *   trigger --> [running?] --yes--> again = true
 *                   | no
 *                   v
 *   pull: changes?since=applied --200--> verify signature -> checks -> apply -> ack
 *                   |                     (loop while to < head, bounded)
 *                   +--410--> snapshot -> verify -> apply (bootstrap/resync)
 *   then: GC of expired dereferenced objects, compaction when the log is big
 *
 * Failures set `status.lastError`, and a retry timer with backoff + jitter.
 */
export interface SyncerOptions {
  dataDir: string;
  mirrorId: string;
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
}

/** Errors of a state poll that mean its answer was refused, not that the primary was unreachable. */
const REFUSED_STATE_CODES: ReadonlySet<string> = new Set(['METASYNC_ERR_SYNC_CHALLENGE_FAILED', 'METASYNC_ERR_SIGNATURE_INVALID', 'METASYNC_ERR_SIGNATURE_UNKNOWN_KEY']);

/** Most batches pulled in one run before yielding to other triggers. */
const MAX_ROUNDS_PER_RUN = 1000;

export function createSyncer(options: SyncerOptions): Syncer {
  const { log, status, metrics, logger, client } = options;
  const queue = new PQueue({ concurrency: options.fetchConcurrency });
  // Pinned or first-use keys, following the primary's key rotations through endorsed key sets (key-trust.ts).
  const trust = createKeyTrust({
    dataDir: options.dataDir,
    pinned: options.pinnedKeys?.[0],
    fetchKeySet: async (signer) => {
      const response = await client.get(SYNC_ROUTES.keys, { maxBytes: 64 * 1024, query: { signer } });
      return { status: response.status, body: response.body, signature: response.headers[HEADERS.signature] };
    },
    logger,
  });
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let gcTimer: NodeJS.Timeout | undefined;
  let events: EventStream | undefined;
  let polling = false;
  let stateRefused = false;
  let ackInFlight = false;
  let ackedSeq = 0;
  let lastProgressLogMs = 0;

  const context: ApplyContext = {
    log,
    store: options.store,
    client,
    queue,
    metrics,
    logger,
    objectAttempts: 3,
    stopping: () => stopped,
    onProgress(done, total) {
      const now = Date.now();
      if (total < 500 || (now - lastProgressLogMs < 2_000 && done !== total)) return;
      lastProgressLogMs = now;
      logger.info({ done, total, percent: Math.floor((done / total) * 100) }, 'fetching objects');
    },
  };

  async function trustedKeys(state?: StateResponse): Promise<PublicKeyInfo[]> {
    const known = await trust.load();
    if (known !== undefined) return known;
    const offered = state ?? (await fetchState()).hint;
    const pinned = await trust.pinOnFirstUse(offered.keys);
    logger.warn({ keyIds: offered.keys.map((k) => k.keyId), primary: options.primaryUrl }, 'trusting primary keys on first use; pin them with --primary-key');
    return pinned;
  }

  /** Every state request is a freshness challenge (state-challenge.ts): only a verified answer to its nonce counts. */
  /**
   * Asks for the state with a fresh challenge. `hint` is the parsed answer either
   * way (like an SSE head it may only trigger verified pulls); only a verified
   * answer to this nonce confirms the primary, moves the head and checks rollback.
   */
  async function fetchState(): Promise<{ hint: StateResponse; confirmed: boolean }> {
    // Compared with what was applied when the question left: an answer racing an apply is not a rollback.
    const appliedWhenAsked = log.state.seq;
    const headWhenAsked = status.headSeq;
    const nonce = newStateNonce();
    const response = await client.get(SYNC_ROUTES.state, { maxBytes: 1024 * 1024, query: { nonce } });
    if (response.status !== 200) throw protocolError(`state answered HTTP ${response.status}`);
    const hint = parseState(response.body);
    await trustedKeys(hint);
    let state: StateResponse;
    try {
      state = await trust.verifying((keys) => verifyStateAnswer({ body: response.body, signature: response.headers[HEADERS.signature] }, { nonce, keys, nowMs: Date.now() }));
    } catch (err) {
      if (!isMetasyncError(err) || !REFUSED_STATE_CODES.has(err.code)) throw err;
      refuseState(err.code, err);
      return { hint, confirmed: false };
    }
    stateRefused = false;
    noteConfirmed(status, state.seq, headWhenAsked);
    noteHead(status, state.seq, log.state.seq, status.monoNowMs());
    if (state.seq < appliedWhenAsked) {
      if (status.primaryBehindSeq === undefined) logger.error({ primarySeq: state.seq, applied: appliedWhenAsked }, 'primary is behind the applied generation; refusing to roll back');
      status.primaryBehindSeq = state.seq;
    } else status.primaryBehindSeq = undefined;
    metrics.headSeq.set(status.headSeq);
    return { hint: state, confirmed: true };
  }

  /** A refused answer (replay, forgery) is an attack signal, unlike an unreachable primary: counted, warned once per episode. */
  function refuseState(code: string, err: unknown): void {
    status.lastError = code;
    noteStateRefused(status, code);
    metrics.syncErrors.inc({ code });
    if (!stateRefused) logger.warn({ err }, 'refused state answer');
    stateRefused = true;
  }

  async function signed<T>(route: string, query: Record<string, string> | undefined, schema: z.ZodType<T>, what: string, body: Buffer, signature: unknown): Promise<T> {
    await trustedKeys();
    try {
      await trust.verifying((keys) => verifyBody(body, typeof signature === 'string' ? signature : undefined, { keys, nowMs: Date.now(), what }));
    } catch (err) {
      metrics.batchesRefused.inc();
      logger.error({ err, route, query }, 'refused unsigned or forged document');
      throw err;
    }
    return parseSyncDocument(body, schema, what);
  }

  /** Applies the primary's snapshot; false when it is exactly the applied generation (nothing to do). */
  async function resync(reason: string): Promise<boolean> {
    logger.info({ reason, seq: log.state.seq }, 'resyncing from snapshot');
    const response = await client.get(SYNC_ROUTES.snapshot);
    if (response.status !== 200) throw protocolError(`snapshot answered HTTP ${response.status}`);
    const snapshot = await signed(SYNC_ROUTES.snapshot, undefined, snapshotSchema, 'snapshot', response.body, response.headers[HEADERS.signature]);
    if (snapshot.seq < log.state.seq) {
      metrics.batchesRefused.inc();
      throw metasyncError('METASYNC_ERR_SYNC_ROLLBACK', `snapshot at seq ${snapshot.seq} is older than applied seq ${log.state.seq}`, { snapshotSeq: snapshot.seq, applied: log.state.seq });
    }
    if (snapshot.seq === log.state.seq) return false;
    const result = await applySnapshot(context, snapshot);
    logger.info({ ...result }, 'snapshot applied');
    afterApply();
    return true;
  }

  async function pull(): Promise<void> {
    await trustedKeys();
    if (log.state.seq === 0 && !(await bootstrapFromBucket())) {
      const { hint } = await fetchState();
      if (hint.snapshotSeq > 0) await resync('bootstrap');
    }
    for (let round = 0; round < MAX_ROUNDS_PER_RUN && !stopped; round++) {
      const since = log.state.seq;
      const query = { since: String(since) };
      const response = await client.get(SYNC_ROUTES.changes, { query });
      status.heardAtMs = status.monoNowMs();
      if (response.status === 410) {
        // A 410 for `since` with a snapshot at exactly `since` would loop; it means a stale (replayed) snapshot.
        if (!(await resync(`changes since ${since} answered 410`))) throw protocolError(`changes since ${since} answered 410, but the snapshot is at that same seq`);
        continue;
      }
      if (response.status !== 200) {
        if (status.primaryBehindSeq !== undefined) {
          throw metasyncError('METASYNC_ERR_SYNC_ROLLBACK', `primary is at seq ${status.primaryBehindSeq}, below applied seq ${since}`, { primarySeq: status.primaryBehindSeq, applied: since });
        }
        throw protocolError(`changes since ${since} answered HTTP ${response.status}`);
      }
      const batch = await signed(SYNC_ROUTES.changes, query, changesBatchSchema, `changes since ${since}`, response.body, response.headers[HEADERS.signature]);
      noteHead(status, batch.head, since, status.monoNowMs());
      if (batch.to < since || batch.head < since) {
        metrics.batchesRefused.inc();
        throw metasyncError('METASYNC_ERR_SYNC_ROLLBACK', `primary offered seq ${batch.to} (head ${batch.head}) below applied seq ${since}`, { to: batch.to, head: batch.head, applied: since });
      }
      if (batch.to === since) {
        // The primary always includes at least one generation when its head is ahead: an empty
        // batch below the head would leave the mirror behind with nothing to say why.
        if (batch.head > since) {
          metrics.batchesRefused.inc();
          throw protocolError(`changes since ${since} are empty although the head is ${batch.head}`);
        }
        return;
      }
      if (batch.from !== since) {
        metrics.batchesRefused.inc();
        throw protocolError(`batch (${batch.from}, ${batch.to}] does not start at applied seq ${since}`);
      }
      const result = await applyChanges(context, batch);
      logger.info({ ...result, from: batch.from }, 'generation applied');
      afterApply();
      if (batch.to >= batch.head) return;
    }
  }

  /** True once a snapshot from S3 is applied; any failure falls back to the primary's snapshot. */
  async function bootstrapFromBucket(): Promise<boolean> {
    if (options.s3Bootstrap === undefined) return false;
    try {
      const snapshot = await options.s3Bootstrap.bootstrap(await trustedKeys(), log.state.seq);
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
    void sendAck();
  }

  async function sendAck(): Promise<void> {
    if (ackInFlight || stopped) return;
    ackInFlight = true;
    try {
      while (ackedSeq < log.state.seq && !stopped) {
        const seq = log.state.seq;
        await client.ack({ mirrorId: options.mirrorId, region: options.region, url: options.publicUrl(), seq, appliedAt: Date.now() });
        ackedSeq = seq;
      }
    } catch (err) {
      logger.warn({ err, seq: log.state.seq }, 'ack failed');
    } finally {
      ackInFlight = false;
    }
  }

  async function housekeeping(): Promise<void> {
    const collected = await collectGarbage({ log, store: options.store, graceMs: options.gcGraceMs, nowMs: Date.now() });
    if (collected > 0) logger.info({ collected }, 'collected dereferenced objects');
    if (log.logBytes() > Math.max(1024 * 1024, log.state.paths.size * 120)) {
      const started = performance.now();
      await log.compact();
      logger.info({ seq: log.state.seq, paths: log.state.paths.size, durationMs: Math.round(performance.now() - started) }, 'index compacted');
    }
  }

  async function work(): Promise<void> {
    do {
      again = false;
      try {
        await pull();
        await housekeeping();
        failures = 0;
        status.lastError = undefined;
      } catch (err) {
        failures++;
        status.lastError = isMetasyncError(err) ? err.code : (err as Error).message;
        metrics.syncErrors.inc({ code: isMetasyncError(err) ? err.code : 'unexpected' });
        const delayMs = backoffMs(failures, 100, 5_000);
        logger.warn({ err, failures, retryInMs: delayMs }, 'sync failed');
        scheduleRetry(delayMs);
        return;
      }
    } while (again && !stopped);
  }

  function scheduleRetry(delayMs: number): void {
    if (stopped) return;
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => void trigger('retry'), delayMs);
    retryTimer.unref();
  }

  function trigger(reason: string): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running !== undefined) {
      again = true;
      logger.trace({ reason }, 'sync coalesced');
      return running;
    }
    running = work().finally(() => {
      running = undefined;
    });
    return running;
  }

  async function poll(): Promise<void> {
    if (polling || stopped) return;
    polling = true;
    try {
      const { hint } = await fetchState();
      if (hint.seq !== log.state.seq) void trigger('poll');
    } catch (err) {
      status.lastError = isMetasyncError(err) ? err.code : (err as Error).message;
      logger.debug({ err }, 'poll failed');
    } finally {
      polling = false;
    }
  }

  return {
    start() {
      armConfirmation(status);
      void trigger('start');
      pollTimer = setInterval(() => void poll(), options.pollIntervalMs);
      gcTimer = setInterval(() => void trigger('gc'), Math.max(1_000, Math.min(60_000, Math.floor(options.gcGraceMs / 4))));
      if (options.useEvents !== false) {
        events = followEvents({
          primaryUrl: options.primaryUrl,
          mirrorId: options.mirrorId,
          connectTimeoutMs: options.connectTimeoutMs,
          ...(options.eventsIdleTimeoutMs === undefined ? {} : { idleTimeoutMs: options.eventsIdleTimeoutMs }),
          logger,
          onHead(head) {
            noteHead(status, head.seq, log.state.seq, status.monoNowMs());
            if (head.seq > log.state.seq) void trigger('head');
          },
          onActivity() {
            status.heardAtMs = status.monoNowMs();
          },
          onConnected() {
            void trigger('connected');
          },
        });
      }
    },
    trigger,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(pollTimer);
      clearInterval(gcTimer);
      await events?.stop();
      await running;
    },
  };
}

function protocolError(message: string): Error {
  return metasyncError('METASYNC_ERR_SYNC_PROTOCOL', message);
}
