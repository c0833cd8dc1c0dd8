import { releaseMemory, type Logger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import type { IndexLog } from '../index/index-log.js';
import { collectGarbage } from './gc.js';

export interface HousekeepingOptions {
  log: IndexLog;
  store: ObjectStore;
  gcGraceMs: number;
  logger: Logger;
  /** Gives a compaction's garbage back (tests count the calls). */
  release?: () => void;
}

/** After each sync run: collect objects dereferenced longer than the grace window, compact the index log once it is big. */
export async function runHousekeeping(options: HousekeepingOptions): Promise<void> {
  const { log, logger } = options;
  const collected = await collectGarbage({ log, store: options.store, graceMs: options.gcGraceMs, nowMs: Date.now() });
  if (collected > 0) logger.info({ collected }, 'collected dereferenced objects');
  if (log.logBytes() > Math.max(1024 * 1024, log.state.pathCount() * 120)) {
    const started = performance.now();
    await log.compact();
    // The base's text, built from every path, is garbage now; right after a bootstrap it is the last bulk
    // work, often done after the apply's own release ran, and an idle mirror would keep it (memory-release.ts).
    (options.release ?? releaseMemory)();
    logger.info(
      { seq: log.state.seq, paths: log.state.pathCount(), durationMs: Math.round(performance.now() - started) },
      'index compacted',
    );
  }
}

/** How often a sync run is triggered for collection alone: a quarter of the grace window, within 1 s to 1 min. */
export function housekeepingIntervalMs(gcGraceMs: number): number {
  return Math.max(1_000, Math.min(60_000, Math.floor(gcGraceMs / 4)));
}
