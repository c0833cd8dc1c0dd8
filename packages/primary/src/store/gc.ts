import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from '@metasync/shared/daemon';
import type { Manifest } from '../journal/manifest.js';
import { createGcCandidates } from './gc-candidates.js';
import { createGcRoots } from './gc-roots.js';
import type { PrimaryPublisher } from '../publish/publisher.js';

/**
 * Garbage collection of the primary's local object store (S3 objects are never
 * deleted: their keys are immutable and bucket lifecycle rules are the
 * operator's call, see docs/operations.md "Disk: object GC").
 *
 * An object is deleted only when none of the roots (gc-roots.ts: head
 * manifest, journal window, snapshot files) names it, no submit in progress
 * names it (publisher pins), AND scans have seen it unreferenced for at least
 * `graceMs`:
 *
 *   run k:   scan shards [c, c+n) -> unreferenced and not yet a candidate: candidates[sha] = now
 *                                 -> referenced: drop the candidate
 *   run k+j: same shard again     -> candidate for >= graceMs: re-check pins and commits, unlink
 *   commit:  every sha it names loses its candidacy (its clock restarts at the next sighting)
 *
 * "Unreferenced since" is when a scan first saw it, which is never before it
 * really became unreferenced; the map lives in memory only, so a restart
 * restarts every clock: deletion can be late, never early. A scan rather than
 * a dereference log also reclaims what no log would know: objects of commits
 * that failed, leftovers of a crash mid-removal, and everything a primary
 * stored before it had a GC.
 *
 * Bounded per run: `shardsPerRun` of the 256 shard directories (a full pass
 * every 256 / shardsPerRun runs) and at most `maxDeletesPerRun` unlinks. A run
 * never holds the publisher: it goes one shard at a time, reads its roots in
 * the journal window synchronously (one instant a step; the head manifest is
 * asked at each check, gc-roots.ts), and decides each unlink in the same tick as the
 * store's removal claims the hash (@metasync/store: a put that arrives later
 * waits for the removal and writes the object anew).
 */
export interface ObjectGcOptions {
  publisher: Pick<PrimaryPublisher, 'store' | 'journal' | 'onCommit' | 'isPending'>;
  manifest: Manifest;
  snapshotDir: string;
  graceMs: number;
  /** Time between runs; 0: no timer (runOnce still works). */
  intervalMs: number;
  shardsPerRun?: number;
  maxDeletesPerRun?: number;
  /** Cap on objects tracked as unreferenced; past it new ones wait for a later pass (late, never early). */
  maxCandidates?: number;
  log: Logger;
  now?: () => number;
}

export interface ObjectGcRun {
  deleted: number;
  bytesFreed: number;
  durationMs: number;
  /** Objects (by hash) found in the scanned shards. */
  scanned: number;
  /** Objects waiting out their grace after this run (all shards). */
  candidates: number;
}

export interface ObjectGc {
  /** One bounded run (single flight: a call during a run shares it). */
  runOnce(): Promise<ObjectGcRun>;
  /** Starts the interval timer (no-op when intervalMs is 0). */
  start(): void;
  onRun(listener: (run: ObjectGcRun) => void): () => void;
  /** Stops the timer and waits for a run in progress. */
  close(): Promise<void>;
}

export const DEFAULT_OBJECT_GC_GRACE_MS = 3_600_000;
export const DEFAULT_OBJECT_GC_INTERVAL_MS = 60_000;
export const DEFAULT_GC_SHARDS_PER_RUN = 32;
export const DEFAULT_GC_MAX_DELETES_PER_RUN = 5_000;
/** ~70 MB of map at worst; a primary that ran for months without a GC holds far more garbage than a pass can delete anyway. */
export const DEFAULT_GC_MAX_CANDIDATES = 500_000;

const YIELD_EVERY_OBJECTS = 4_096;
/*
 * A run goes one shard at a time: what a step holds (names, hashes, root prefixes) then dies young. A full pass
 * over a million objects grew the heap by 338 MB with all 32 of a run's shards at once and 177 MB with 4,
 * against 40 MB with 1 (25 of them the snapshot files' kept hashes), for runs of ~440 ms instead of ~350
 * (`bench/object-gc-pass.ts`).
 */
const SHARDS = Array.from({ length: 256 }, (_, index) => index.toString(16).padStart(2, '0'));

export function createObjectGc(options: ObjectGcOptions): ObjectGc {
  const { publisher, log } = options;
  const { store } = publisher;
  const now = options.now ?? Date.now;
  const shardsPerRun = Math.min(SHARDS.length, Math.max(1, options.shardsPerRun ?? DEFAULT_GC_SHARDS_PER_RUN));
  const maxDeletes = options.maxDeletesPerRun ?? DEFAULT_GC_MAX_DELETES_PER_RUN;
  const maxCandidates = options.maxCandidates ?? DEFAULT_GC_MAX_CANDIDATES;
  const roots = createGcRoots({ manifest: options.manifest, journal: publisher.journal, snapshotDir: options.snapshotDir });
  const listeners = new Set<(run: ObjectGcRun) => void>();
  const candidates = createGcCandidates();
  /** Shas committed while a run is in progress: referenced, whatever the run's earlier reads said. */
  let committedDuringRun: Set<string> | undefined;
  let cursor = 0;
  let running: Promise<ObjectGcRun> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const unsubscribe = publisher.onCommit(({ generation }) => {
    for (const entry of generation.entries) {
      if (!('sha256' in entry)) continue;
      candidates.forget(entry.sha256);
      committedDuringRun?.add(entry.sha256);
    }
  });

  function nextShards(): string[] {
    const shards: string[] = [];
    for (let i = 0; i < shardsPerRun; i++) shards.push(SHARDS[(cursor + i) % SHARDS.length] as string);
    cursor = (cursor + shardsPerRun) % SHARDS.length;
    return shards;
  }

  function referencedNow(sha256: string, committed: ReadonlySet<string>): boolean {
    return committed.has(sha256) || publisher.isPending(sha256);
  }

  async function run(): Promise<ObjectGcRun> {
    const started = performance.now();
    const committed = new Set<string>();
    committedDuringRun = committed;
    try {
      const shards = nextShards();
      const tally = { deleted: 0, bytesFreed: 0, scanned: 0 };
      // A shard at a time: the listing's names and the roots' strings of all 32 shards at once were the
      // first run's peak after a restart of a million-path primary (the roots are read per shard, one instant each).
      for (const shard of shards) await scanShard(shard, committed, tally);
      const report: ObjectGcRun = {
        ...tally,
        durationMs: Math.round(performance.now() - started),
        candidates: candidates.size,
      };
      if (report.deleted > 0) log.info(report, 'object gc run');
      else log.debug(report, 'object gc run');
      for (const listener of listeners) listener(report);
      return report;
    } finally {
      committedDuringRun = undefined;
    }
  }

  /** Scans one shard directory, then unlinks what waited out its grace there (within the run's maxDeletes). */
  async function scanShard(
    shard: string,
    committed: ReadonlySet<string>,
    tally: { deleted: number; bytesFreed: number; scanned: number },
  ): Promise<void> {
    const index = Number.parseInt(shard, 16);
    const mask = new Uint8Array(SHARDS.length);
    mask[index] = 1;
    const found = await store.listShard(shard);
    const live = await roots.collect(mask);
    let nowMs = now();
    const expired: string[] = [];
    const tracked = candidates.ofShard(index);
    if (tracked.size > 0) {
      const present = new Set(found);
      // Gone by other means (an operator, a put that replaced a damaged leftover): forget it.
      for (const sha256 of tracked.keys()) if (!present.has(sha256)) candidates.forget(sha256);
    }
    for (let at = 0; at < found.length; at++) {
      const sha256 = found[at]!;
      // Publishes keep flowing during a large scan; a commit meanwhile lands in `committed`.
      if (at > 0 && at % YIELD_EVERY_OBJECTS === 0) {
        await nextTurn();
        // Commits ran meanwhile, and the manifest is asked at each check (gc-roots.ts): a clock starts after them.
        nowMs = now();
      }
      if (live.has(sha256) || referencedNow(sha256, committed)) {
        candidates.forget(sha256);
        continue;
      }
      const since = candidates.get(sha256);
      if (since === undefined) {
        if (candidates.size < maxCandidates) candidates.track(sha256, nowMs);
      } else if (nowMs - since >= options.graceMs && tally.deleted + expired.length < maxDeletes) expired.push(sha256);
    }
    tally.scanned += found.length;
    for (const sha256 of expired) {
      // Same tick as store.remove claims the hash: a commit or submit since the scan wins.
      if (!candidates.has(sha256) || referencedNow(sha256, committed)) continue;
      const result = await store.remove(sha256);
      if (!result.removed) continue;
      candidates.forget(sha256);
      tally.deleted++;
      tally.bytesFreed += result.bytesFreed;
    }
  }

  function runOnce(): Promise<ObjectGcRun> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(): void {
    if (closed || options.intervalMs <= 0) return;
    timer = setTimeout(() => {
      runOnce()
        .catch((err: unknown) => log.error({ err }, 'object gc run failed'))
        .finally(schedule);
    }, options.intervalMs);
    timer.unref();
  }

  return {
    runOnce,
    start() {
      if (timer === undefined) schedule();
    },
    onRun(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      unsubscribe();
      if (running !== undefined) await Promise.allSettled([running]);
    },
  };
}
