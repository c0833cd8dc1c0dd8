/**
 * Publishes the watcher's complete files. Ready changes collect in `batch`;
 * one submit is in flight at a time, so a burst of thousands of files becomes a
 * few generations while a lone change goes out on the next turn of the event
 * loop. A full batch holds back readers (`waitForRoom`) until the next flush.
 *
 *   add / remove -> batch --(setImmediate, nothing in flight)--> publisher.submit
 *                     ^                                                |
 *                     \------ retry (500 ms doubling to 30 s) <--- failed
 *
 * A change whose publish failed (S3 unreachable, disk full...) is retried with
 * backoff until it goes through, unless a newer event for the path takes over
 * (`cancelRetry`). Without this a refused change waited for the file to change
 * again. A pending retry does not count as busy: startup must not hang on an outage.
 */
import type { Logger } from '@metasync/shared/daemon';
import type { Publisher, SourceChange } from '../publish/publisher.js';
import { createConditions } from './conditions.js';
import type { StoredContent } from './prepare.js';

export interface BatchSubmitterOptions {
  publisher: Publisher;
  log: Logger;
  /** Most paths in one submit; `waitForRoom` holds readers while the batch is this full. */
  maxBatchPaths: number;
  /** A submit finished, or the batch emptied without one: whatever `isIdle()` answers may have changed. */
  onProgress(): void;
}

export interface BatchSubmitter {
  /**
   * Queues a complete file, unless its bytes are already published or queued: `content` is what the
   * publisher stores for it (publisher.contentFor: dist mirrors added), so an unchanged file is not
   * resubmitted on every rescan, `sha256` its hash and `gzip` its gzip variant if it keeps one.
   */
  add(path: string, stored: StoredContent): void;
  /** Queues the deletion of a path this watcher published; forgets one it only queued. */
  remove(path: string): void;
  /** A newer event owns the path: its failed change is not retried. */
  cancelRetry(path: string): void;
  /** Undefined while the batch has room; else resolves after the next flush (or once stopped). */
  waitForRoom(): Promise<void> | undefined;
  /** Nothing queued, scheduled or in flight. */
  isIdle(): boolean;
  /** Holds submits (except a full batch) until release(). */
  hold(): void;
  release(): void;
  /** No more retries or holding; readers waiting for room go on. */
  stop(): void;
  /** Submits what is left and waits for the submit in flight. */
  finish(): Promise<void>;
}

const DELETED = 'deleted';

export function createBatchSubmitter(options: BatchSubmitterOptions): BatchSubmitter {
  const { publisher, log, maxBatchPaths } = options;
  const batch = new Map<string, { change: SourceChange; sha: string }>();
  /** sha (or DELETED) of changes queued or in flight, ahead of the manifest. */
  const queued = new Map<string, string>();
  const retrying = new Map<string, { change: SourceChange; sha: string }>();
  const room = createConditions();
  let flushes = 0;
  let flushScheduled = false;
  let inFlight: Promise<void> | undefined;
  let held = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryFailures = 0;

  function currentSha(path: string): string | undefined {
    return queued.get(path) ?? publisher.getEntry(path)?.sha256;
  }

  function scheduleFlush(): void {
    if (flushScheduled || inFlight !== undefined) return;
    if (held && batch.size < maxBatchPaths) return;
    flushScheduled = true;
    setImmediate(flush);
  }

  function flush(): void {
    flushScheduled = false;
    if (batch.size === 0) {
      options.onProgress();
      return;
    }
    const queuedChanges = [...batch.values()];
    const changes = queuedChanges.map((item) => item.change);
    batch.clear();
    flushes++;
    room.notify();
    const startedMs = Date.now();
    inFlight = publisher
      .submit(changes, 'watch')
      .then(
        ({ seq }) => {
          retryFailures = 0;
          log.info({ seq, paths: changes.length, durationMs: Date.now() - startedMs }, 'source changes published');
        },
        (err: unknown) => {
          for (const item of queuedChanges) if (!batch.has(item.change.path)) retrying.set(item.change.path, item);
          const retryInMs = scheduleRetry();
          log.error({ err, paths: changes.length, firstPath: changes[0]?.path, retryInMs }, 'source changes not published');
        },
      )
      .finally(() => {
        for (const { change, sha } of queuedChanges) if (queued.get(change.path) === sha) queued.delete(change.path);
        inFlight = undefined;
        if (batch.size > 0) scheduleFlush();
        options.onProgress();
      });
  }

  /** Backoff 500 ms doubling to 30 s; returns the delay chosen. */
  function scheduleRetry(): number {
    const delayMs = Math.min(500 * 2 ** retryFailures++, 30_000);
    if (retryTimer !== undefined || stopped) return delayMs;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      for (const [path, item] of retrying) if (!batch.has(path)) batch.set(path, item);
      retrying.clear();
      scheduleFlush();
    }, delayMs);
    retryTimer.unref?.();
    return delayMs;
  }

  async function waitForFlushes(): Promise<void> {
    while (batch.size >= maxBatchPaths && !stopped) {
      scheduleFlush();
      const before = flushes;
      await room.until(() => flushes !== before || stopped);
    }
  }

  return {
    add(path, stored) {
      const { content, sha256: sha, gzip, absent } = stored;
      if (sha === currentSha(path)) return;
      batch.set(path, { change: { path, content, ...(gzip === undefined ? {} : { gzip }), ...(absent === true ? { absent } : {}) }, sha });
      queued.set(path, sha);
      scheduleFlush();
    },
    remove(path) {
      retrying.delete(path);
      const pending = queued.get(path);
      // A deletion already queued or in flight: a second removal (an unlink event after the
      // directory's, or a reconcile walk) must not drop it from the batch.
      if (pending === DELETED) return;
      const entry = publisher.getEntry(path);
      // A change still queued or in flight counts as published: its deletion must follow it.
      const published = pending !== undefined || entry?.origin === 'watch';
      if (!published) {
        batch.delete(path);
        options.onProgress();
        return;
      }
      batch.set(path, { change: { path, deleted: true }, sha: DELETED });
      queued.set(path, DELETED);
      scheduleFlush();
    },
    cancelRetry(path) {
      retrying.delete(path);
    },
    waitForRoom: () => (batch.size >= maxBatchPaths && !stopped ? waitForFlushes() : undefined),
    isIdle: () => batch.size === 0 && inFlight === undefined && !flushScheduled,
    hold() {
      held = true;
    },
    release() {
      held = false;
      scheduleFlush();
    },
    stop() {
      stopped = true;
      held = false;
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      room.notify();
    },
    async finish() {
      if (flushScheduled || batch.size > 0) flush();
      await inFlight;
    },
  };
}
