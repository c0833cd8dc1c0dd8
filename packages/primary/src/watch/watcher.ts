/**
 * The watched source tree (`--source`): any generator writes a Composer
 * repository tree there; every create, change, delete and rename becomes a
 * path change published with origin 'watch'. See path-settler.ts for when a
 * file counts as complete, paths.ts for what is ignored or refused.
 *
 *   one inotifywait child for the tree (bulk-dir-watches.ts), or fs.watch per directory (dir-watches.ts)
 *        -> tree-events.ts (lstat: file, new directory, gone)
 *        -> ingest.ts (settle, batch, submit)
 *   bursts, every --source-rescan-ms, and every --source-fallback-scan-ms once a watch
 *   limit is reached -> burst-reconcile.ts (walk the tree, touch what changed, remove what is gone)
 *
 * One watch per directory, none per file: see dir-watches.ts for why not chokidar, and
 * bulk-dir-watches.ts for why the watches live in a child process when inotifywait is there.
 * A watch limit (inotify ENOSPC, EMFILE, --source-max-watches) is a warning and a
 * fallback to scanning, never an exit.
 *
 * Start-up: each directory is watched before it is read, so nothing written
 * during the walk is missed; the walk re-reads every file (same pipeline, so a
 * newer event always wins) and publishes what differs from the manifest, then
 * deletes manifest paths of origin 'watch' that are no longer in the tree.
 * With a stat cache (stat-cache.ts) a file whose size, mtime, ctime and inode
 * are those of the last start's read, and whose hash from then the manifest
 * still publishes, is not read again: a restart on an unchanged tree stats
 * every file and reads none.
 * startSourceWatcher resolves once the watches are being set up; `reconciled`
 * resolves after that reconcile is committed (startup-reconcile.ts).
 */
import { realpath, stat } from 'node:fs/promises';
import { hasErrno, metasyncError } from '@metasync/shared';
import { releaseMemory, type Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import { createBurstReconcile } from './burst-reconcile.js';
import { createBulkDirWatches } from './bulk-dir-watches.js';
import { createDirWatches, type DirWatches, type DirWatchesOptions, type WatchDir } from './dir-watches.js';
import { chooseInotifywait } from './inotifywait-process.js';
import { createSourceIngest, type SourceIngest } from './ingest.js';
import { DEFAULT_SOURCE_FALLBACK_SCAN_MS, DEFAULT_SOURCE_RESCAN_MS } from './options.js';
import { statSourceFile } from './paths.js';
import { createPreparePool } from './prepare-pool.js';
import { cacheLine, createStatCacheWriter, type StatCacheWriter } from './stat-cache.js';
import { MAX_PENDING_TOUCHES, reconcileAtStart } from './startup-reconcile.js';
import { createPeriodicRescan, type PeriodicRescan } from './periodic-rescan.js';
import { createTreeEvents } from './tree-events.js';
import { walkTreeChanges } from './tree-walk.js';
import { removeUnlessBack } from './walk-deletions.js';
import { createSourceWatchStatus, type SourceWatchStatus } from './watch-status.js';

export interface SourceWatcherOptions {
  sourceDir: string;
  publisher: Publisher;
  log: Logger;
  /** Non-JSON files publish after this long without an event. */
  stabilityWindowMs?: number;
  /** JSON still unparseable this long after its last event is refused. */
  jsonSettleMs?: number;
  maxFileBytes?: number;
  /** Reconciling walk interval; 0 = only after bursts. Default 10 minutes. */
  rescanMs?: number;
  /** Walk interval once a watch limit is reached. */
  fallbackScanMs?: number;
  /** Most directories watched; 0 = the kernel's limit. */
  maxWatches?: number;
  /** Where watches, degradation and scans are reported (metrics, status page). */
  status?: SourceWatchStatus;
  /** Who holds the watches (options.ts, --source-watcher); default auto. An injected watchDir or a maxWatches cap means fs-watch. */
  watcher?: 'auto' | 'inotifywait' | 'fs-watch';
  /** Tests: the inotifywait command (default: found on PATH, findInotifywait). */
  inotifywaitCommand?: readonly string[];
  /** Tests inject an fs.watch that fails like the kernel. */
  watchDir?: WatchDir;
  /** Where the start-up stat cache lives (the primary's data dir); absent: every start reads every file. */
  statCacheDir?: string;
  /** Threads that read, check, hash and gzip files beside the main thread (prepare-pool.ts); default 0, in the main thread. */
  prepareThreads?: number;
  /** --dists-url, as the publisher has it: the prepare threads add the same dist mirrors before hashing. */
  distsUrl?: string | undefined;
  /** The publisher's object store: the prepare threads look whether an object is new there (prepare.ts). */
  storeDir?: string | undefined;
}

export interface SourceWatcher {
  /**
   * Resolves once the start-up reconcile has committed: the tree's changes since the last start are published.
   * Rejects when it failed (the watcher is closed then). The primary listens before it on a restart (main.ts).
   */
  readonly reconciled: Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_MAX_SOURCE_FILE_BYTES = 64 * 1024 * 1024;
/** Reads at once when files are prepared in the main thread. */
const MAIN_THREAD_READS = 8;

export async function startSourceWatcher(options: SourceWatcherOptions): Promise<SourceWatcher> {
  const { publisher, log } = options;
  const startedMs = Date.now();
  const status = options.status ?? createSourceWatchStatus();
  const rescanMs = options.rescanMs ?? DEFAULT_SOURCE_RESCAN_MS;
  const fallbackScanMs = options.fallbackScanMs ?? DEFAULT_SOURCE_FALLBACK_SCAN_MS;
  const rootReal = await realSourceDir(options.sourceDir);
  const readOptions = { rootReal, maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_SOURCE_FILE_BYTES };
  const prepareThreads = options.prepareThreads ?? 0;
  const preparer = createPreparePool({ ...readOptions, distsUrl: options.distsUrl, storeDir: options.storeDir }, prepareThreads);
  /** The next stat cache, filled during start-up only (no per-path state outlives it). */
  let nextCache: StatCacheWriter | undefined = options.statCacheDir === undefined ? undefined : createStatCacheWriter(options.statCacheDir);
  const ingest = createSourceIngest({
    publisher,
    log,
    read: (path) => {
      status.recordRead();
      return preparer.prepare(path);
    },
    // In the main thread, reads are synchronous and each one a turn wakes takes a step before it looks at
    // the slice again (loop-slices.ts): a few at once are enough (large files gzip in the threadpool).
    ...(prepareThreads === 0 ? { readConcurrency: MAIN_THREAD_READS } : {}),
    willRead: (path) => preparer.willRead(path),
    onFile(path, file, sha256) {
      if (nextCache === undefined) return;
      const line =
        file.mtimeNs === undefined || file.ctimeNs === undefined
          ? undefined
          : cacheLine({ size: file.size, mtimeNs: file.mtimeNs, ctimeNs: file.ctimeNs, ino: file.ino }, sha256, wallClockNs());
      nextCache.record(path, line);
    },
    stat: (path) => statSourceFile(readOptions, path),
    ...(options.stabilityWindowMs === undefined ? {} : { stabilityWindowMs: options.stabilityWindowMs }),
    ...(options.jsonSettleMs === undefined ? {} : { jsonSettleMs: options.jsonSettleMs }),
  });

  const bursts = createBurstReconcile({
    walk: (onFiles) => walkTreeChanges(rootReal, onFiles),
    tracks: (path) => ingest.tracks(path),
    publishedPaths: () => publisher.pathsFrom('watch'),
    touch: (path) => ingest.touch(path, { recheck: false }),
    roomToTouch: () => ingest.roomFor(MAX_PENDING_TOUCHES),
    remove: (path) => removeUnlessBack(rootReal, path, ingest),
    onReconciled: (stats) => {
      status.recordScan({ ...stats, atMs: Date.now() });
      if (stats.reason === 'burst') log.info(stats, 'source tree reconciled after a burst');
      else log.info({ ...stats, watches: watches.size() }, 'source tree rescanned');
    },
    onError: (err) => log.error({ err, sourceDir: rootReal }, 'source tree reconcile walk failed'),
  });
  let rescan: PeriodicRescan | undefined = undefined; // created once start-up is done; a limit hit before then degrades it on creation
  const dirWatchesOptions: DirWatchesOptions = {
    rootReal,
    maxWatches: options.maxWatches ?? 0,
    onEvent: (dirRel, name, eventType) => {
      bursts.event();
      events.event(dirRel, name, eventType);
    },
    onLimit: ({ reason, directory, err }) => {
      const intervalMs = Math.min(fallbackScanMs, rescanMs > 0 ? rescanMs : Infinity);
      const warning = metasyncError(
        'METASYNC_ERR_SOURCE_WATCH_LIMIT',
        `cannot watch ${directory === '' ? '.' : directory} under --source ${rootReal} (${reason}): ` +
          `scanning the whole tree every ${intervalMs} ms instead`,
        { reason, directory },
        err,
      );
      log.warn({ err: warning, reason, directory, watches: watches.size(), fallbackScanMs: intervalMs }, 'source watch limit reached');
      status.markDegraded({ reason, sinceMs: Date.now(), directory });
      rescan?.degrade(); // before start-up finishes: degraded once the rescan exists
    },
    onCountChange: (count) => status.setWatches(count),
    ...(options.watchDir === undefined ? {} : { watchDir: options.watchDir }),
  };
  const inotifywait = chooseInotifywait(options);
  const watches: DirWatches =
    inotifywait === undefined
      ? createDirWatches(dirWatchesOptions)
      : createBulkDirWatches({
          ...dirWatchesOptions,
          command: inotifywait,
          onOverflow: () => {
            log.warn({ sourceDir: rootReal }, 'source events lost (the kernel queue overflowed): scanning the tree');
            void bursts.scan('overflow');
          },
          onBulkUnavailable: (message) =>
            log.warn({ sourceDir: rootReal, reason: message }, 'inotifywait not used: each directory is watched with fs.watch'),
        });
  const events = createTreeEvents({
    rootReal,
    watches,
    ingest,
    removeTree: (prefix, keep) => removeTree(publisher, ingest, prefix, keep),
    onError: (err, path) => log.error({ err, path }, 'source event handling failed'),
  });
  const closeAll = async (): Promise<void> => {
    rescan?.close();
    bursts.close();
    watches.close();
    await events.close();
    await ingest.close();
    await preparer.close();
  };

  let closing = false;
  const reconciled = (async () => {
    try {
      status.startupStarted(startedMs);
      await watches.ready; // every directory present is watched before the walk reads it
      if (closing) return;
      const result = await reconcileAtStart({
        rootReal,
        publisher,
        ingest,
        onDirectory: (rel, ino, bornMs) => watches.add(rel, ino, bornMs),
        statCacheDir: options.statCacheDir,
        nextCache,
        stopped: () => closing,
        log,
      });
      if (closing) return;
      watches.startupWalked();
      if (nextCache !== undefined) {
        const cache = nextCache;
        nextCache = undefined;
        // A cache that cannot be written only costs the next start its reads.
        await cache.finish().catch((err: unknown) => log.warn({ err, dataDir: options.statCacheDir }, 'source stat cache not written'));
      }
      const durationMs = Date.now() - startedMs;
      const { filesRead } = status.snapshot();
      status.startupFinished({ atMs: Date.now(), durationMs, files: result.files, filesRead, unchanged: result.unchanged });
      log.info(
        {
          sourceDir: rootReal,
          ...result,
          filesRead,
          seq: publisher.headSeq(),
          watches: watches.size(),
          watcher: watches.kind(),
          degraded: watches.limited(),
          durationMs,
        },
        'source tree reconciled',
      );
      // The walk and every file read of it are garbage now. Once per start, also the memory-reducing collection:
      // an ingest's churn leaves the young generation at its largest and the old one fragmented.
      releaseMemory();
    } catch (err) {
      await closeAll();
      throw err;
    }
    if (closing) return;
    rescan = createPeriodicRescan({ rescanMs, fallbackScanMs, scan: bursts.scan, onIntervalChange: status.setScanIntervalMs });
    if (watches.limited()) rescan.degrade();
  })();
  // The caller observes it (watcher.reconciled); this only keeps a failure from counting as unhandled meanwhile.
  reconciled.catch(() => undefined);

  return {
    reconciled,
    async close() {
      closing = true;
      await closeAll();
      await reconciled.catch(() => undefined);
    },
  };
}

function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** A removed directory: every published path below it goes, except those in `keep` (a directory that replaced it holds them). */
function removeTree(publisher: Publisher, ingest: SourceIngest, prefix: string, keep?: ReadonlySet<string>): void {
  const under = prefix === '' ? '' : `${prefix}/`;
  const paths: string[] = [];
  for (const path of publisher.pathsFrom('watch')) if (path.startsWith(under) && keep?.has(path) !== true) paths.push(path);
  for (const path of paths) ingest.remove(path);
}

async function realSourceDir(sourceDir: string): Promise<string> {
  try {
    const real = await realpath(sourceDir);
    if (!(await stat(real)).isDirectory())
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--source ${sourceDir} is not a directory`, { sourceDir });
    return real;
  } catch (err) {
    if (hasErrno(err, 'ENOENT'))
      throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `--source ${sourceDir} does not exist`, { sourceDir }, err);
    throw err;
  }
}
