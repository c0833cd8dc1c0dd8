/**
 * After a burst of file events, walks the source tree once to find what the
 * events missed.
 *
 * The kernel queues at most `fs.inotify.max_queued_events` (16,384 here) file
 * events per watcher and drops the rest when the process falls behind. A burst
 * of 10,000 files makes three or four events each; on a loaded 2-core machine
 * (another test run beside it) the last few hundred files of the burst were
 * never reported, in about one run in three, and stayed unpublished for ever.
 * Node's fs.watch does not report the overflow, so a burst itself is the signal: once
 * `burstEvents` events have arrived and then `quietMs` passes without one, the
 * tree is walked and
 *   - a file no event brought in is touched (created during the burst),
 *   - a file changed since the burst began is touched again (its event may be
 *     gone; an unchanged file costs a read and is not republished),
 *   - a published path whose file is gone is removed.
 * Small changes never pay for a walk; a burst pays one walk per quiet period.
 *
 * `scan(reason)` runs the same walk on demand (periodic-rescan.ts: every
 * --source-rescan-ms, or every --source-fallback-scan-ms once a watch limit is
 * reached). Its "since" is the start of the previous such scan, so a change
 * whose event was lost at any time is found by the next scan.
 */
import { createLoopSlices } from '@metasync/shared/daemon';
import { createPathKeys } from './path-keys.js';
import type { ScanReason } from './watch-status.js';

export interface BurstReconcileOptions {
  /**
   * Walks every file under the source root, handing them on with their last change time (tree-walk.ts: the
   * later of mtime and ctime) a directory at a time; resolves with how many there were.
   */
  walk(onFiles: (files: ReadonlyArray<readonly [path: string, changedMs: number]>) => Promise<void>): Promise<number>;
  /** Whether an event already brought `path` in. */
  tracks(path: string): boolean;
  /** Paths this watcher published that should exist on disk. */
  publishedPaths(): Iterable<string>;
  touch(path: string): void;
  /** Awaited between touches: resolves when the pipeline has room for more (a whole changed tree is not queued at once). */
  roomToTouch?(): Promise<void>;
  /** A path the walk did not find; false when it was a file again by then and was touched instead (walk-deletions.ts). */
  remove(path: string): boolean;
  onReconciled(stats: { reason: ScanReason; files: number; touched: number; removed: number; durationMs: number }): void;
  onError(err: unknown): void;
  burstEvents?: number;
  quietMs?: number;
  nowMs?: () => number;
}

export interface BurstReconcile {
  /** A file event arrived. */
  event(): void;
  /** Walks now unless a walk is running (that one's successor covers the rest); resolves when done. */
  scan(reason: Exclude<ScanReason, 'burst'>): Promise<void>;
  close(): void;
}

export const DEFAULT_BURST_EVENTS = 1_000;
export const DEFAULT_BURST_QUIET_MS = 1_000;

export function createBurstReconcile(options: BurstReconcileOptions): BurstReconcile {
  const burstEvents = options.burstEvents ?? DEFAULT_BURST_EVENTS;
  const quietMs = options.quietMs ?? DEFAULT_BURST_QUIET_MS;
  const now = options.nowMs ?? Date.now;
  let events = 0;
  let windowStartMs = 0;
  let burstStartMs: number | undefined;
  /** Start of the previous on-demand scan: what it saw, it handled. */
  let scannedSinceMs = now();
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let closed = false;

  function arm(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(fire, quietMs);
    timer.unref?.();
  }

  function fire(): void {
    timer = undefined;
    if (closed || burstStartMs === undefined) return;
    if (running) return arm();
    const sinceMs = burstStartMs;
    burstStartMs = undefined;
    events = 0;
    running = true;
    reconcile(sinceMs, 'burst')
      .catch(options.onError)
      .finally(() => {
        running = false;
      });
  }

  async function reconcile(sinceMs: number, reason: ScanReason): Promise<void> {
    const startedMs = now();
    // The paths found, as 64-bit keys (path-keys.ts), not strings: a million-path tree is walked every 10 minutes.
    // A published path whose key equals a found one's is not removed by this walk; the next walk, seeded anew, does.
    const seen = createPathKeys(1 << 16);
    let touched = 0;
    const files = await options.walk(async (batch) => {
      for (const [path, changedMs] of batch) {
        seen.add(path);
        if (closed) return;
        // File times have whole-millisecond or coarser granularity: a second of slack.
        if (!options.tracks(path) || changedMs >= sinceMs - 1_000) {
          await options.roomToTouch?.();
          if (closed) return;
          options.touch(path);
          touched++;
        }
      }
    });
    if (closed) return;
    const gone: string[] = [];
    for (const path of options.publishedPaths()) if (seen.find(path) === -1) gone.push(path);
    let removed = 0;
    // remove() looks at each path (walk-deletions.ts): in slices, as the walk's own stats.
    const slices = createLoopSlices();
    for (const path of gone) {
      await slices.turn();
      if (closed) return;
      if (options.remove(path)) removed++;
      else touched++;
    }
    options.onReconciled({ reason, files, touched, removed, durationMs: now() - startedMs });
  }

  return {
    event() {
      if (closed) return;
      if (events === 0) windowStartMs = now();
      events++;
      if (burstStartMs === undefined && events >= burstEvents) burstStartMs = windowStartMs;
      if (burstStartMs !== undefined) arm();
      else if (timer === undefined) {
        // Below the burst size: forget the count once events go quiet.
        timer = setTimeout(() => {
          timer = undefined;
          if (burstStartMs === undefined) events = 0;
        }, quietMs);
        timer.unref?.();
      }
    },
    async scan(reason) {
      if (closed || running) return;
      running = true;
      const startedMs = now();
      try {
        await reconcile(scannedSinceMs, reason);
        scannedSinceMs = startedMs;
      } catch (err) {
        options.onError(err);
      } finally {
        running = false;
      }
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
