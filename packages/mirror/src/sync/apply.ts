import PQueue from 'p-queue';
import { isDeletion, isMetasyncError, type ChangeEntry, type ChangesBatch, type Snapshot } from '@metasync/shared';
import { createLoopSlices, releaseMemory, type Logger } from '@metasync/shared/daemon';
import { storeError, type BrotliBackfill, type ObjectStore } from '@metasync/store';
import type { IndexLog } from '../index/index-log.js';
import type { MirrorMetrics } from '../metrics.js';
import type { FetchedObject, PrimaryClient } from './primary-client.js';

/**
 * Two-phase apply (invariants 1-3):
 *
 *   phase 1  every object the batch names and the store lacks is fetched,
 *            decoded, hashed, size-checked and put (never fsynced one by one);
 *            then one store.sync() makes every new file and directory entry
 *            durable (fsyncs for a few files, one syncfs for many)
 *   commit   one record appended to the index log and fdatasynced
 *   phase 2  the in-memory index switches in one synchronous step, root last
 *
 * A crash before the commit leaves only unreferenced objects (reused by hash on
 * the retry; the first apply after a restart verifies them, since a power loss
 * may have damaged what was never synced); a crash after it replays the record
 * on restart. Nothing is ever visible whose bytes are not on disk and verified.
 */
export interface ApplyContext {
  log: IndexLog;
  store: ObjectStore;
  client: PrimaryClient;
  queue: PQueue;
  metrics: MirrorMetrics;
  logger: Logger;
  /** Attempts per object before the whole apply fails (and is retried with backoff). */
  objectAttempts: number;
  /** Called with (done, total) while fetching, for a progress line on long work. */
  onProgress?: (done: number, total: number) => void;
  /** True once the mirror is shutting down: queued fetches give up instead of starting. */
  stopping?: () => boolean;
  /**
   * Whether present objects are reused unread. Unset until an apply commits with this context, and again from
   * the start of each apply until it commits: until then a present object may be the leftover of a put that
   * never reached its sync (damaged by a power loss: puts do not fsync) or of a failed put (files are written in
   * place), so each one is verified and refetched when damaged. Once an apply committed, everything it put or
   * reused was whole and synced before that commit.
   */
  trustPresent?: boolean;
  /**
   * When set, objects that arrive without the primary's brotli variant are stored with gzip only and their
   * brotli variant is made here after the commit (a bootstrap then neither compresses nor writes a third file
   * per object before it serves). Unset: put compresses it at once.
   */
  brotliBackfill?: BrotliBackfill;
}

export interface ApplyResult {
  seq: number;
  paths: number;
  objectsFetched: number;
  durationMs: number;
}

export async function applyChanges(context: ApplyContext, batch: ChangesBatch): Promise<ApplyResult> {
  const started = performance.now();
  const { fetched, withoutBrotli, unlisted } = await fetchMissing(context, batch.entries, { bulk: false });
  try {
    await context.log.commitBatch({ from: batch.from, to: batch.to, time: batch.time, appliedAt: Date.now(), entries: batch.entries });
  } catch (err) {
    throw storeError(err, context.store.dir);
  }
  context.trustPresent = true;
  context.brotliBackfill?.add(withoutBrotli, unlisted);
  return finish(context, { seq: batch.to, paths: batch.entries.length, objectsFetched: fetched, started });
}

export async function applySnapshot(context: ApplyContext, snapshot: Snapshot): Promise<ApplyResult> {
  const started = performance.now();
  const { fetched, withoutBrotli, unlisted } = await fetchMissing(context, snapshot.entries, { bulk: true });
  try {
    await context.log.commitSnapshot(snapshot, Date.now());
  } catch (err) {
    throw storeError(err, context.store.dir);
  }
  context.trustPresent = true;
  context.brotliBackfill?.add(withoutBrotli, unlisted);
  return finish(context, { seq: snapshot.seq, paths: snapshot.entries.length, objectsFetched: fetched, started });
}

/** Applies this large leave enough garbage behind to be worth one full collection (memory-release.ts). */
const RELEASE_MEMORY_FROM_PATHS = 5_000;

function finish(context: ApplyContext, result: { seq: number; paths: number; objectsFetched: number; started: number }): ApplyResult {
  const durationMs = Math.round((performance.now() - result.started) * 10) / 10;
  if (result.paths >= RELEASE_MEMORY_FROM_PATHS) releaseMemory();
  context.metrics.appliedSeq.set(result.seq);
  context.metrics.applyDuration.observe(durationMs / 1000);
  return { seq: result.seq, paths: result.paths, objectsFetched: result.objectsFetched, durationMs };
}

/** Below this many absent objects, parallel single GETs beat a pack stream. */
const PACK_THRESHOLD = 64;
/**
 * From this many absent objects a change batch is a catch-up (a new mirror pulling a freshly ingested
 * primary's generations, or one back from a long outage), fetched like a snapshot: without the primary's
 * brotli variants. A brotli frame carries the gzip variant too, so each object would cost two decodes and
 * two files before it serves; the backfill makes brotli after the commit instead. A publish's few objects
 * still take the primary's brotli, so they serve it at once.
 */
const BULK_OBJECTS = 1_000;
const MAX_PACK_OBJECTS_PER_REQUEST = 500;

/** Fetches and puts what the store lacks; answers how many were fetched and which of them came without brotli. */
async function fetchMissing(
  context: ApplyContext,
  entries: readonly ChangeEntry[],
  options: { bulk: boolean },
): Promise<{ fetched: number; withoutBrotli: string[]; unlisted: number }> {
  // The loops over a snapshot's million entries give the event loop turns (5 ms slices): in one step they
  // held it 2.6 s at 1M paths, and the mirror serves meanwhile.
  const slices = createLoopSlices();
  const wanted = new Map<string, number>();
  for (const entry of entries) {
    const turn = slices.turn();
    if (turn !== undefined) await turn;
    if (isDeletion(entry) || context.log.state.hasObject(entry.sha256)) continue;
    wanted.set(entry.sha256, entry.size);
  }
  // A put writes its file in place, so an apply that fails may leave a short file (a put whose cleanup failed
  // too): until an apply commits again, present objects are verified before they are reused.
  const trusted = context.trustPresent === true;
  context.trustPresent = false;
  // Objects in the grace window, or left by an apply that crashed before its commit, are reused by hash.
  const { present, withFiles } = await context.store.survey([...wanted.keys()]);
  if (!trusted) await dropDamaged(context, present);
  const absent: { sha256: string; size: number }[] = [];
  for (const [sha256, size] of wanted) {
    const turn = slices.turn();
    if (turn !== undefined) await turn;
    if (!present.has(sha256)) absent.push({ sha256, size });
  }
  const total = absent.length;
  let done = 0;
  // Only as many as the backfill queues: a bootstrap's million would be ~100 MB of strings, which the
  // backfill then drops for its sweep to find anyway (BrotliBackfill.add's `unlisted`).
  const withoutBrotli: string[] = [];
  let unlisted = 0;
  const deferBrotli = context.brotliBackfill !== undefined;
  // A bootstrap, resync or catch-up asks for no brotli variants: one file per object before it serves.
  const brotliFromPrimary = !deferBrotli || (!options.bulk && total < BULK_OBJECTS);
  const progress = (): void => {
    done++;
    context.onProgress?.(done, total);
  };
  const put = async (sha256: string, object: FetchedObject): Promise<void> => {
    assertRunning(context);
    context.metrics.bytesFetched.inc(object.wireBytes);
    try {
      // Absent or damaged by the checks above (one apply at a time, one process per store): the put need not stat it again.
      await context.store.put({
        sha256,
        raw: object.raw,
        brotli: object.brotli,
        gzip: object.gzip,
        knownAbsent: true,
        // The survey listed its shard and saw no file of it: no leftover to look for (a cold bootstrap's every object).
        knownClean: withFiles !== undefined && !withFiles.has(sha256),
        deferBrotli,
      });
    } catch (err) {
      // The store already reports a full disk; this also covers any ObjectStore that does not.
      throw storeError(err, context.store.pathOf(sha256));
    }
    if (deferBrotli && object.brotli === undefined) {
      if (withoutBrotli.length < (context.brotliBackfill?.maxQueued ?? 0)) withoutBrotli.push(sha256);
      else unlisted++;
    }
    context.metrics.objectsFetched.inc();
    progress();
  };
  const single = (object: { sha256: string; size: number }) =>
    context.queue.add(() => {
      assertRunning(context);
      return fetchOne(context, object.sha256, object.size, put);
    });
  if (absent.length < PACK_THRESHOLD) {
    await settleAll(absent.map(single));
  } else {
    const perPack = Math.min(MAX_PACK_OBJECTS_PER_REQUEST, Math.max(32, Math.ceil(absent.length / context.queue.concurrency)));
    const packs: (typeof absent)[] = [];
    for (let i = 0; i < absent.length; i += perPack) packs.push(absent.slice(i, i + perPack));
    await settleAll(
      packs.map((pack) =>
        context.queue.add(async () => {
          assertRunning(context);
          const outcome = await context.client.fetchPack(pack, put, { brotli: brotliFromPrimary });
          if (outcome.error !== undefined) {
            if (isMetasyncError(outcome.error, 'METASYNC_ERR_STORE_NO_SPACE')) throw outcome.error;
            context.logger.warn(
              { err: outcome.error, delivered: outcome.delivered.size, asked: pack.length },
              'object pack broke off; fetching the rest one by one',
            );
          }
          // Awaited inside the pack's task would deadlock a full queue: hand the rest back as separate tasks.
          return pack.filter((o) => !outcome.delivered.has(o.sha256));
        }),
      ),
    ).then((rests) => settleAll(rests.flat().map(single)));
  }
  // Before the commit that makes any of these paths visible (invariant 2), and covering present objects reused above.
  try {
    await context.store.sync();
  } catch (err) {
    throw storeError(err, context.store.dir);
  }
  return { fetched: total, withoutBrotli, unlisted };
}

/** Objects verified at once: bounds open files and memory when a restart finds thousands of leftovers. */
const VERIFY_CONCURRENCY = 32;

/** Removes from `present` every object that fails verification, so it is fetched again (put re-creates it). */
async function dropDamaged(context: ApplyContext, present: Set<string>): Promise<void> {
  const candidates = [...present];
  const damaged: string[] = [];
  for (let i = 0; i < candidates.length; i += VERIFY_CONCURRENCY) {
    const chunk = candidates.slice(i, i + VERIFY_CONCURRENCY);
    const intact = await Promise.all(chunk.map((sha256) => context.store.verify(sha256)));
    chunk.forEach((sha256, index) => {
      if (intact[index] !== true) damaged.push(sha256);
    });
  }
  for (const sha256 of damaged) present.delete(sha256);
  if (damaged.length > 0)
    context.logger.warn(
      { damaged: damaged.length, verified: candidates.length, sha256: damaged[0] },
      'refetching damaged objects left by an earlier run',
    );
}

/** Queued work is never dropped (its promise would never settle): it refuses to start instead. */
function assertRunning(context: ApplyContext): void {
  if (context.stopping?.() === true) throw new Error('apply abandoned: the mirror is stopping');
}

/** Like Promise.all, but waits for every task before rethrowing the first failure (no orphaned writes). */
async function settleAll<T>(tasks: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(tasks);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure !== undefined) throw failure.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

async function fetchOne(
  context: ApplyContext,
  sha256: string,
  size: number,
  put: (sha256: string, object: FetchedObject) => Promise<void>,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await put(sha256, await context.client.fetchObject(sha256, size));
      return;
    } catch (err) {
      const rejected = isMetasyncError(err, 'METASYNC_ERR_OBJECT_HASH_MISMATCH') || isMetasyncError(err, 'METASYNC_ERR_OBJECT_TOO_LARGE');
      if (rejected) {
        context.metrics.objectsRejected.inc();
        context.logger.warn({ err, sha256, attempt }, 'object rejected');
      }
      const retryable = rejected || isMetasyncError(err, 'METASYNC_ERR_SYNC_UNREACHABLE');
      if (!retryable || attempt >= context.objectAttempts) throw err;
    }
  }
}
