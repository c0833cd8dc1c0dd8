/**
 * The watched tree's options (--source-*), spread into config.ts's option
 * table and schema like publish/options.ts.
 */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import type { OptionSpec } from '@metasync/shared/daemon';

export const DEFAULT_SOURCE_RESCAN_MS = 600_000;
export const DEFAULT_SOURCE_FALLBACK_SCAN_MS = 60_000;

export const SOURCE_WATCH_OPTIONS = [
  {
    key: 'sourceRescanMs',
    flag: '--source-rescan-ms <ms>',
    env: 'METASYNC_SOURCE_RESCAN_MS',
    description: 'walk the --source tree this often to find changes whose events were lost; 0 = only after bursts',
    defaultValue: String(DEFAULT_SOURCE_RESCAN_MS),
  },
  {
    key: 'sourceFallbackScanMs',
    flag: '--source-fallback-scan-ms <ms>',
    env: 'METASYNC_SOURCE_FALLBACK_SCAN_MS',
    description: 'scan interval once a watch limit is reached (inotify ENOSPC, EMFILE, --source-max-watches)',
    defaultValue: String(DEFAULT_SOURCE_FALLBACK_SCAN_MS),
  },
  {
    key: 'sourceMaxWatches',
    flag: '--source-max-watches <dirs>',
    env: 'METASYNC_SOURCE_MAX_WATCHES',
    description: 'most directories of --source to watch (one inotify watch each); past it, fallback scanning; 0 = the kernel limit',
    defaultValue: '0',
  },
  {
    key: 'sourceWatcher',
    flag: '--source-watcher <kind>',
    env: 'METASYNC_SOURCE_WATCHER',
    description:
      'who holds the directory watches: inotifywait (one child process, about 200 bytes a directory; inotify-tools), fs-watch (one fs.watch a directory in the primary, 1.4-1.7 KB each), auto = inotifywait when on PATH',
    defaultValue: 'auto',
  },
  {
    key: 'sourcePrepareThreads',
    flag: '--source-prepare-threads <n>',
    env: 'METASYNC_SOURCE_PREPARE_THREADS',
    description:
      'threads that read, check, hash and gzip source files beside the main thread; 0 = in the main thread; auto = one per core but one',
    defaultValue: '0',
  },
] as const satisfies readonly OptionSpec[];

/**
 * auto: the main thread keeps one core (it batches, stores and commits), the others prepare files. Not the
 * default: on a 2-core machine threads cost more CPU and memory than they save (docs/publishing.md).
 */
export function autoPrepareThreads(cores = availableParallelism()): number {
  return Math.max(1, cores - 1);
}

const count = z.string().regex(/^\d+$/, 'must be a non-negative integer').transform(Number);

export const SOURCE_WATCH_SCHEMA_SHAPE = {
  sourceRescanMs: count,
  sourceFallbackScanMs: count.pipe(z.number().int().positive('must be a positive integer')),
  sourceMaxWatches: count,
  sourceWatcher: z.enum(['auto', 'inotifywait', 'fs-watch']),
  sourcePrepareThreads: z
    .string()
    .regex(/^(auto|\d+)$/, 'must be auto or a non-negative integer')
    .transform((value) => (value === 'auto' ? autoPrepareThreads() : Number(value)))
    .pipe(z.number().int().max(64, 'must be at most 64')),
};

export interface SourceWatchConfig {
  /** 0: no periodic rescan (bursts still reconcile). */
  rescanMs: number;
  fallbackScanMs: number;
  /** 0: no cap of our own. */
  maxWatches: number;
  /** Who holds the watches (bulk-dir-watches.ts); a cap (maxWatches) is kept exactly by fs-watch only. */
  watcher: 'auto' | 'inotifywait' | 'fs-watch';
  /** 0: files are prepared in the main thread. */
  prepareThreads: number;
}

export function sourceWatchConfig(raw: {
  sourceRescanMs: number;
  sourceFallbackScanMs: number;
  sourceMaxWatches: number;
  sourceWatcher: 'auto' | 'inotifywait' | 'fs-watch';
  sourcePrepareThreads: number;
}): SourceWatchConfig {
  return Object.freeze({
    rescanMs: raw.sourceRescanMs,
    fallbackScanMs: raw.sourceFallbackScanMs,
    maxWatches: raw.sourceMaxWatches,
    watcher: raw.sourceWatcher,
    prepareThreads: raw.sourcePrepareThreads,
  });
}
