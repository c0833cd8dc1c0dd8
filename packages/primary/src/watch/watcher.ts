/**
 * The watched source tree (`--source`): any generator writes a Composer
 * repository tree there; every create, change, delete and rename becomes a
 * path change published with origin 'watch'. See path-settler.ts for when a
 * file counts as complete, paths.ts for what is ignored or refused.
 *
 *   fs.watch per directory (dir-watches.ts) -> tree-events.ts (lstat: file, new directory, gone)
 *        -> ingest.ts (settle, batch, submit)
 *   bursts, every --source-rescan-ms, and every --source-fallback-scan-ms once a watch
 *   limit is reached -> burst-reconcile.ts (walk the tree, touch what changed, remove what is gone)
 *
 * One watch per directory, none per file: see dir-watches.ts for why not chokidar.
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
 * startSourceWatcher resolves only after that reconcile is committed.
 */
import { realpath, stat } from 'node:fs/promises';
import PQueue from 'p-queue';
import { hasErrno, metasyncError } from '@metasync/shared';
import { releaseMemorySoon, type Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import { createBurstReconcile } from './burst-reconcile.js';
import { createDirWatches, type WatchDir } from './dir-watches.js';
import { createSourceIngest, type SourceIngest } from './ingest.js';
import { DEFAULT_SOURCE_FALLBACK_SCAN_MS, DEFAULT_SOURCE_RESCAN_MS } from './options.js';
import { readSourceFile, statSourceFile } from './paths.js';
import { cachedSha, cacheLine, createStatCacheWriter, loadStatCache, statIdentity, type StatCacheWriter } from './stat-cache.js';
import { createPeriodicRescan, type PeriodicRescan } from './periodic-rescan.js';
import { createTreeEvents } from './tree-events.js';
import { walkTree, walkTreeChanges } from './tree-walk.js';
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
  /** Tests inject an fs.watch that fails like the kernel. */
  watchDir?: WatchDir;
  /** Where the start-up stat cache lives (the primary's data dir); absent: every start reads every file. */
  statCacheDir?: string;
}

export interface SourceWatcher {
  close(): Promise<void>;
}

export const DEFAULT_MAX_SOURCE_FILE_BYTES = 64 * 1024 * 1024;

export async function startSourceWatcher(options: SourceWatcherOptions): Promise<SourceWatcher> {
  const { publisher, log } = options;
  const startedMs = Date.now();
  const status = options.status ?? createSourceWatchStatus();
  const rescanMs = options.rescanMs ?? DEFAULT_SOURCE_RESCAN_MS;
  const fallbackScanMs = options.fallbackScanMs ?? DEFAULT_SOURCE_FALLBACK_SCAN_MS;
  const rootReal = await realSourceDir(options.sourceDir);
  const readOptions = { rootReal, maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_SOURCE_FILE_BYTES };
  let filesRead = 0;
  /** The next stat cache, filled during start-up only (no per-path state outlives it). */
  let nextCache: StatCacheWriter | undefined = options.statCacheDir === undefined ? undefined : createStatCacheWriter(options.statCacheDir);
  const ingest = createSourceIngest({
    publisher,
    log,
    read: (path) => {
      filesRead++;
      return readSourceFile(readOptions, path);
    },
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
    walk: () => walkTreeChanges(rootReal),
    tracks: (path) => ingest.tracks(path),
    publishedPaths: () => watchedPaths(publisher),
    touch: (path) => ingest.touch(path, { recheck: false }),
    roomToTouch: () => ingest.roomFor(MAX_PENDING_TOUCHES),
    remove: (path) => ingest.remove(path),
    onReconciled: (stats) => {
      status.recordScan({ ...stats, atMs: Date.now() });
      if (stats.reason === 'burst') log.info(stats, 'source tree reconciled after a burst');
      else log.info({ ...stats, watches: watches.size() }, 'source tree rescanned');
    },
    onError: (err) => log.error({ err, sourceDir: rootReal }, 'source tree reconcile walk failed'),
  });
  let rescan: PeriodicRescan | undefined = undefined; // created once start-up is done; a limit hit before then degrades it on creation
  const watches = createDirWatches({
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
  };

  try {
    ingest.hold();
    const files = await walkTree({ rootReal, onDirectory: (rel, ino) => watches.add(rel, ino) });
    const watchingMs = Date.now() - startedMs;
    const unchanged = await touchChanged({ files, rootReal, publisher, ingest, statCacheDir: options.statCacheDir, nextCache, log });
    let deleted = 0;
    for (const path of watchedPaths(publisher)) {
      if (!files.has(path)) {
        ingest.remove(path);
        deleted++;
      }
    }
    await ingest.settled();
    ingest.release();
    await ingest.idle();
    if (nextCache !== undefined) {
      const cache = nextCache;
      nextCache = undefined;
      // A cache that cannot be written only costs the next start its reads.
      await cache.finish().catch((err: unknown) => log.warn({ err, dataDir: options.statCacheDir }, 'source stat cache not written'));
    }
    log.info(
      {
        sourceDir: rootReal,
        files: files.size,
        filesRead,
        unchanged,
        deleted,
        seq: publisher.headSeq(),
        watches: watches.size(),
        degraded: watches.limited(),
        watchingMs,
        durationMs: Date.now() - startedMs,
      },
      'source tree reconciled',
    );
    releaseMemorySoon(); // the walk and every file read of it are garbage now
  } catch (err) {
    await closeAll();
    throw err;
  }
  rescan = createPeriodicRescan({ rescanMs, fallbackScanMs, scan: bursts.scan, onIntervalChange: status.setScanIntervalMs });
  if (watches.limited()) rescan.degrade();

  return { close: closeAll };
}

const STAT_CONCURRENCY = 64;
/**
 * Paths a walk lets wait in the read pipeline at once. Touching a million-file tree in one go queued a million
 * reads and states (2 GB of RSS before the first commit); this many keep 64 readers and a 2,000-path batch busy.
 */
const MAX_PENDING_TOUCHES = 8_192;

function wallClockNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * Touches every walked file except those the stat cache vouches for (same identity, and the manifest
 * still publishes the hash read then); returns how many were trusted unread.
 */
async function touchChanged(options: {
  files: ReadonlySet<string>;
  rootReal: string;
  publisher: Publisher;
  ingest: SourceIngest;
  statCacheDir: string | undefined;
  nextCache: StatCacheWriter | undefined;
  log: Logger;
}): Promise<number> {
  const { files, ingest, publisher } = options;
  const cache = options.statCacheDir === undefined ? new Map<string, string>() : await loadCacheOrNone(options.statCacheDir, options.log);
  let unchanged = 0;
  let failure: { err: unknown } | undefined;
  // A window of stats in flight, not batches in lockstep: a batch waited for its slowest stat.
  const stats = new PQueue({ concurrency: STAT_CONCURRENCY });
  const judge = async (path: string, line: string): Promise<void> => {
    const identity = await statIdentity(`${options.rootReal}/${path}`);
    const sha256 = identity === undefined ? undefined : cachedSha(line, identity);
    if (sha256 === undefined || publisher.getEntry(path)?.sha256 !== sha256) {
      ingest.touch(path, { recheck: false });
      return;
    }
    unchanged++;
    // A line an event-driven read wrote meanwhile is older in the file, so this one wins on load; its identity no
    // longer matches the changed file, so that only costs the next start a read.
    options.nextCache?.record(path, line);
  };
  for (const path of files) {
    if (failure !== undefined) break;
    await ingest.roomFor(MAX_PENDING_TOUCHES);
    const line = cache.get(path);
    if (line === undefined) {
      ingest.touch(path, { recheck: false });
      continue;
    }
    if (stats.size >= STAT_CONCURRENCY) await stats.onSizeLessThan(STAT_CONCURRENCY);
    stats.add(() => judge(path, line)).catch((err: unknown) => (failure ??= { err }));
  }
  await stats.onIdle();
  if (failure !== undefined) throw failure.err;
  return unchanged;
}

async function loadCacheOrNone(dataDir: string, log: Logger): Promise<Map<string, string>> {
  try {
    return await loadStatCache(dataDir);
  } catch (err) {
    log.warn({ err, dataDir }, 'source stat cache unreadable: reading every file');
    return new Map();
  }
}

/** A removed directory: every published path below it goes, except those in `keep` (a directory that replaced it holds them). */
function removeTree(publisher: Publisher, ingest: SourceIngest, prefix: string, keep?: ReadonlySet<string>): void {
  const under = prefix === '' ? '' : `${prefix}/`;
  const paths: string[] = [];
  for (const [path, entry] of publisher.entries()) {
    if (entry.origin === 'watch' && path.startsWith(under) && keep?.has(path) !== true) paths.push(path);
  }
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

/** The published paths that came from this watcher. */
function* watchedPaths(publisher: Publisher): Iterable<string> {
  for (const [path, entry] of publisher.entries()) if (entry.origin === 'watch') yield path;
}
