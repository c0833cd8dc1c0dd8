import { createPendingMarker, markerPresent } from './pending-marker.js';
import type { ObjectStore } from './store.js';

/**
 * Makes deferred brotli variants in the background, after the commit that
 * made their objects visible (puts with `deferBrotli`: a bulk ingest or a
 * bootstrap). Until an object's variant exists, a client accepting br gets
 * gzip (or identity): never an error, never a wait.
 *
 *   add(shas) -> queue (bounded) -> [quiet for quietMs] -> chunks of CHUNK_OBJECTS -> store.addBrotli, one at a time
 *
 * It waits until no hashes were added (and no postpone() came) for `quietMs`
 * (at most `maxWaitMs` after the oldest waiting one came): while a bulk
 * ingest, a run of applies or a mirror's bootstrap goes on, its CPU goes to
 * them (measured: run between the generations of a 20k-file ingest, it took
 * back the ingest time deferring had saved).
 *
 * The queue holds hashes only while work is behind; beyond `maxQueued` new
 * hashes are dropped and counted, so memory stays bounded whatever the
 * repository's size. Once the queue is empty after drops, a sweep lists the
 * store's shard directories one at a time and queues each shard's objects
 * that keep gzip but no brotli (a million-path ingest drops ~800,000: without
 * the sweep they served gzip for good). With `pendingMarkerPath`, a file
 * there says work is owed, from the first hash taken until nothing is queued
 * and no sweep is pending: a backfill started while it exists sweeps the
 * store, so what a stop left queued or dropped still gets its variant.
 */
export interface BrotliBackfill {
  /**
   * Queues `sha256s`; `unlisted` more objects lack brotli that the caller did not list (a bulk apply lists
   * only the first maxQueued): they count as dropped, so a sweep finds them.
   */
  add(sha256s: Iterable<string>, unlisted?: number): void;
  /** Hashes it queues at most: a caller listing more only makes strings the backfill drops. */
  readonly maxQueued: number;
  /** Resolves once the queue is empty, no chunk runs and no sweep is under way (a sweep at a million objects takes minutes). */
  idle(): Promise<void>;
  /**
   * Work the backfill should not compete with is going on (the primary streaming packs to a bootstrapping
   * mirror): waiting work waits quietMs more, as after an add, each chunk at most maxWaitMs; a run of
   * postpones counts for maxPostponeMs at most.
   */
  postpone(): void;
  /** Hashes dropped because the queue was full. */
  dropped(): number;
  /** Sweeps finished (each after drops: the store's objects lacking brotli, found shard by shard). */
  sweeps(): number;
  /** Stops after the running chunk. */
  close(): Promise<void>;
}

/**
 * Hashes queued at most (a sweep finds the rest). Each queued hash is a 64-character string in a Set, about
 * 100 bytes of heap: 200,000 held ~20 MB of a million-path mirror's heap for minutes after its bootstrap
 * (all of whose objects lack brotli, so the sweep does most of the work whatever the bound).
 */
export const DEFAULT_MAX_QUEUED = 16_384;
/** The daemons' owed-work file, in their data directory (pendingMarkerPath). */
export const BROTLI_OWED_FILE = 'brotli-sweep-owed';
/** Longer than a bulk ingest's pause between two generations (~2.5 s at 2,000 paths a generation here). */
export const DEFAULT_QUIET_MS = 5_000;
/** Work never waits longer than this for quiet: a source that changes every few seconds still gets its variants. */
export const DEFAULT_MAX_WAIT_MS = 60_000;
/** Longest run of postpones that holds the backfill (a million-path bootstrap streams packs for ~6 minutes here). */
export const DEFAULT_MAX_POSTPONE_MS = 15 * 60_000;
/**
 * Objects per store.addBrotli call: one durability barrier per chunk (a syncfs, which flushes the whole file
 * system and costs a process start), and the loop is yielded between chunks. 256 made ~4,000 barriers at a
 * million objects.
 */
const CHUNK_OBJECTS = 1_024;

/** Shard directories of the store (objects/00 .. objects/ff), as the sweep lists them. */
const SHARDS = Array.from({ length: 256 }, (_, index) => index.toString(16).padStart(2, '0'));

export function createBrotliBackfill(options: {
  store: Pick<ObjectStore, 'addBrotli' | 'lackingBrotli'>;
  onError: (err: unknown) => void;
  /** Called when an add() finds the queue full, with the hashes it dropped. */
  onDropped?: (count: number) => void;
  maxQueued?: number;
  quietMs?: number;
  maxWaitMs?: number;
  maxPostponeMs?: number;
  /** Where the owed-work file goes (pending-marker.ts); none: a restart forgets what was queued or dropped. */
  pendingMarkerPath?: string;
}): BrotliBackfill {
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const quietMs = options.quietMs ?? DEFAULT_QUIET_MS;
  const maxWaitMs = options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
  const maxPostponeMs = options.maxPostponeMs ?? DEFAULT_MAX_POSTPONE_MS;
  let lastAddMs = 0;
  let lastPostponedMs = 0;
  /** Start of the current run of postpones (each within quietMs of the one before). */
  let postponingSinceMs = 0;
  /** When the oldest hash still queued was added (0: none waiting). */
  let waitingSinceMs = 0;
  let wakeUp: (() => void) | undefined;
  let quietTimer: NodeJS.Timeout | undefined;

  /** Sleeps until adds have been quiet for quietMs, or the oldest waited maxWaitMs (close() wakes it early). */
  async function untilQuiet(): Promise<void> {
    const remainingMs = (): number => {
      // A run of postpones longer than maxPostponeMs no longer counts: pack traffic that never stops
      // (or a client posting empty packs) cannot hold the backfill to one chunk per maxWaitMs for ever.
      const postponed = lastPostponedMs - postponingSinceMs < maxPostponeMs ? lastPostponedMs : 0;
      return Math.min(Math.max(lastAddMs, postponed) + quietMs, waitingSinceMs + maxWaitMs) - Date.now();
    };
    for (let waitMs = remainingMs(); !closed && waitMs > 0; waitMs = remainingMs()) {
      await new Promise<void>((resolve) => {
        wakeUp = resolve;
        quietTimer = setTimeout(resolve, waitMs);
      });
      wakeUp = undefined;
    }
  }
  const queue = new Set<string>();
  let dropped = 0;
  /** Drops happened since the last sweep began: the store holds objects nobody will queue again. */
  let sweepPending = false;
  let sweeps = 0;
  let running: Promise<void> | undefined;
  let closed = false;
  const markerPath = options.pendingMarkerPath;
  // Looked at before this backfill can write the file: an add() right after creation must not be taken for work
  // an earlier process left (a race the tests met once the store's threadpool shrank to four threads).
  const leftByEarlier = markerPath === undefined ? Promise.resolve(false) : markerPresent(markerPath);
  const marker =
    markerPath === undefined
      ? undefined
      : createPendingMarker(
          markerPath,
          (err) => options.onError(new Error(`brotli owed-work file ${markerPath} not updated: ${(err as Error).message}`, { cause: err })),
          leftByEarlier,
        );
  /** A chunk or a shard listing failed since the last sweep began: work is owed that nothing queues again. */
  let failedSinceSweep = false;
  // Left by a process that stopped with work owed: sweep for it, once the daemon's start-up work went quiet.
  const resumed =
    markerPath === undefined
      ? Promise.resolve()
      : leftByEarlier.then((present) => {
          if (!present || closed) return;
          lastAddMs = waitingSinceMs = Date.now();
          sweepPending = true;
          marker?.set(true);
          start();
        });

  async function drainQueue(): Promise<void> {
    while (!closed && queue.size > 0) {
      await untilQuiet();
      if (closed) return;
      waitingSinceMs = Date.now();
      const chunk: string[] = [];
      for (const sha256 of queue) {
        chunk.push(sha256);
        queue.delete(sha256);
        if (chunk.length >= CHUNK_OBJECTS) break;
      }
      try {
        await options.store.addBrotli(chunk);
      } catch (err) {
        // The chunk's objects keep serving gzip; the next chunk may succeed (e.g. once space is freed), and the
        // owed-work file stays, so the next start sweeps for them.
        failedSinceSweep = true;
        options.onError(err);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** One shard at a time, so the sweep holds one listing's hashes at most (a few thousand at a million objects). */
  async function sweep(): Promise<void> {
    // Listing the shards is work too: it waits for quiet as a chunk does.
    await untilQuiet();
    if (closed) return;
    sweepPending = false;
    failedSinceSweep = false;
    for (const shard of SHARDS) {
      if (closed) return;
      let lacking: string[];
      try {
        lacking = await options.store.lackingBrotli(shard);
      } catch (err) {
        failedSinceSweep = true;
        options.onError(err);
        continue;
      }
      // Within the queue's bound (commits may add beside it), and shard after shard into whole chunks:
      // each chunk costs one durability barrier, and a small store's shards hold a few objects each.
      for (let at = 0; at < lacking.length && !closed;) {
        const room = Math.max(1, maxQueued - queue.size);
        for (const sha256 of lacking.slice(at, at + room)) queue.add(sha256);
        at += room;
        if (queue.size >= Math.min(CHUNK_OBJECTS, maxQueued)) await drainQueue();
      }
    }
    await drainQueue();
    sweeps++;
  }

  async function drain(): Promise<void> {
    await drainQueue();
    while (!closed && sweepPending) await sweep();
  }

  function start(): void {
    if (running !== undefined || closed) return;
    running = drain().finally(() => {
      running = undefined;
      if (closed) return;
      if (queue.size > 0 || sweepPending) start();
      else if (!failedSinceSweep) marker?.set(false);
    });
  }

  return {
    maxQueued,
    add(sha256s, unlisted = 0) {
      if (closed) return;
      lastAddMs = Date.now();
      if (queue.size === 0) waitingSinceMs = lastAddMs;
      let droppedNow = unlisted;
      for (const sha256 of sha256s) {
        if (queue.size >= maxQueued) droppedNow++;
        else queue.add(sha256);
      }
      dropped += droppedNow;
      if (droppedNow > 0) {
        sweepPending = true;
        options.onDropped?.(droppedNow);
      }
      if (queue.size > 0 || sweepPending) marker?.set(true);
      start();
    },
    async idle() {
      await resumed;
      while (running !== undefined) await running;
      await marker?.settled();
    },
    postpone() {
      const now = Date.now();
      if (now - lastPostponedMs > quietMs) postponingSinceMs = now;
      lastPostponedMs = now;
    },
    dropped: () => dropped,
    sweeps: () => sweeps,
    async close() {
      closed = true;
      clearTimeout(quietTimer);
      wakeUp?.();
      await resumed;
      await running;
      await marker?.settled();
    },
  };
}
