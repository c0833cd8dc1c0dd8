/**
 * The start-up reconcile of --source against the manifest: walk the tree
 * (each directory watched before it is read, so nothing written meanwhile is
 * missed), touch every file the stat cache (stat-cache.ts) does not vouch for,
 * delete published paths of origin 'watch' that are gone from the tree, and
 * commit it all in as few generations as possible (the ingest is held until
 * every read has settled).
 */
import PQueue from 'p-queue';
import type { Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import type { SourceIngest } from './ingest.js';
import { cachedSha, loadStatCache, statIdentity, type StatCacheWriter } from './stat-cache.js';
import { walkTree } from './tree-walk.js';

export interface StartupReconcileOptions {
  rootReal: string;
  publisher: Publisher;
  ingest: SourceIngest;
  /** Each directory, before its entries are read (the watcher adds its watch). */
  onDirectory(rel: string, ino: number): void;
  statCacheDir: string | undefined;
  /** Where lines of files trusted unread go (those read are recorded by the read path). */
  nextCache: StatCacheWriter | undefined;
  /** True once the watcher is closing: no more files are touched. */
  stopped(): boolean;
  log: Logger;
}

export interface StartupReconcileResult {
  files: number;
  /** Trusted unread: the stat cache vouched for them. */
  unchanged: number;
  deleted: number;
  /** The walk alone (every directory watched and read). */
  watchingMs: number;
}

/** Stats in flight at once while files are checked against the stat cache. */
const STAT_CONCURRENCY = 64;

/**
 * Paths a walk lets wait in the read pipeline at once. Touching a million-file tree in one go queued a million
 * reads and states (2 GB of RSS before the first commit); this many keep 64 readers and a 2,000-path batch busy.
 */
export const MAX_PENDING_TOUCHES = 8_192;

export async function reconcileAtStart(options: StartupReconcileOptions): Promise<StartupReconcileResult> {
  const { ingest, publisher } = options;
  const startedMs = Date.now();
  ingest.hold();
  const files = await walkTree({ rootReal: options.rootReal, onDirectory: options.onDirectory });
  const watchingMs = Date.now() - startedMs;
  const unchanged = await touchChanged(options, files);
  let deleted = 0;
  for (const [path, entry] of publisher.entries()) {
    if (entry.origin === 'watch' && !files.has(path) && !options.stopped()) {
      ingest.remove(path);
      deleted++;
    }
  }
  await ingest.settled();
  ingest.release();
  await ingest.idle();
  return { files: files.size, unchanged, deleted, watchingMs };
}

/**
 * Touches every walked file except those the stat cache vouches for (same identity, and the manifest
 * still publishes the hash read then); returns how many were trusted unread.
 */
async function touchChanged(options: StartupReconcileOptions, files: ReadonlySet<string>): Promise<number> {
  const { ingest, publisher } = options;
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
    if (failure !== undefined || options.stopped()) break;
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
