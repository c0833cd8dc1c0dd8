/**
 * The start-up reconcile of --source against the manifest: walk the tree
 * (each directory watched before it is read, so nothing written meanwhile is
 * missed), touch every file the stat cache (stat-cache.ts) does not vouch for,
 * delete published paths of origin 'watch' that are gone from the tree, and
 * commit it all in as few generations as possible (the ingest is held until
 * every read has settled).
 */
import { fullCollection, type Logger } from '@metasync/shared/daemon';
import type { Publisher } from '../publish/publisher.js';
import type { SourceIngest } from './ingest.js';
import { createLoopSlices } from '@metasync/shared/daemon';
import { createPathKeys } from './path-keys.js';
import { loadStatCache, statIdentitySync, vouchedLine, type StatCache, type StatCacheWriter } from './stat-cache.js';
import { walkTreeFiles } from './tree-walk.js';
import { removeUnlessBack } from './walk-deletions.js';

export interface StartupReconcileOptions {
  rootReal: string;
  publisher: Publisher;
  ingest: SourceIngest;
  /** Each directory, before its entries are read (the watcher adds its watch). */
  onDirectory(rel: string, ino: number, bornMs: number): void;
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
  /** The walk (every directory watched and read, each file checked against the stat cache as it came). */
  watchingMs: number;
}

/**
 * Paths a walk lets wait in the read pipeline at once. Touching a million-file tree in one go queued a million
 * reads and states (2 GB of RSS before the first commit); this many keep 64 readers and a 2,000-path batch busy.
 */
export const MAX_PENDING_TOUCHES = 8_192;

/** Files walked between two full collections. */
const RELEASE_EVERY_FILES = 100_000;

export async function reconcileAtStart(options: StartupReconcileOptions): Promise<StartupReconcileResult> {
  const { ingest, publisher } = options;
  const startedMs = Date.now();
  ingest.hold();
  const cache = options.statCacheDir === undefined ? undefined : await loadCacheOrNone(options.statCacheDir, options.log);
  // Which paths the walk found, for the deletions below: a key per path, not a string (path-keys.ts).
  const seen = createPathKeys(Math.max(1 << 16, cache?.size ?? 0));
  const checks = createCacheChecks(options, cache);
  let sinceRelease = 0;
  const files = await walkTreeFiles({
    rootReal: options.rootReal,
    onDirectory: options.onDirectory,
    stopped: options.stopped,
    async onFiles(paths) {
      // The walk's names, stats and cache lines outlive a few scavenges (each slice awaits) and so reach the old
      // generation: at 1M paths RSS climbed ~600 MB before V8 collected it. A full collection every so often
      // (tens of ms each) keeps it down.
      sinceRelease += paths.length;
      if (sinceRelease >= RELEASE_EVERY_FILES) {
        sinceRelease = 0;
        fullCollection();
      }
      for (const path of paths) {
        seen.add(path);
        if (options.stopped()) continue;
        await ingest.roomFor(MAX_PENDING_TOUCHES);
        if (options.stopped()) continue;
        await checks.touchUnlessVouched(path);
      }
    },
  });
  const watchingMs = Date.now() - startedMs;
  const unchanged = checks.done();
  // A path whose key equals a walked one's is kept (path-keys.ts: about once in 10^7 starts at 1M paths); the
  // next periodic or burst rescan, which compares paths themselves, deletes it.
  const gone: string[] = [];
  for (const path of publisher.pathsFrom('watch')) if (seen.find(path) === -1) gone.push(path);
  // A look (lstat) each, in slices: a tree emptied while the primary was down is a million of them.
  const slices = createLoopSlices();
  let deleted = 0;
  for (const path of gone) {
    await slices.turn();
    if (options.stopped()) break;
    if (removeUnlessBack(options.rootReal, path, ingest)) deleted++;
  }
  await ingest.settled();
  ingest.release();
  await ingest.idle();
  return { files, unchanged, deleted, watchingMs };
}

/**
 * Touches each walked file the stat cache does not vouch for (same identity, and the manifest still
 * publishes the hash read then); done() counts those trusted unread. A key shared with another path's
 * line (path-keys.ts) only costs a stat: that line's identity is another file's.
 *
 * The stats are synchronous, in slices (loop-slices.ts) before the loop gets a turn: through the
 * threadpool, beside the walk's readdirs, each cost 30 us of this thread (100k files: 8.5 s to reconcile).
 */
function createCacheChecks(
  options: StartupReconcileOptions,
  cache: StatCache | undefined,
): { touchUnlessVouched(path: string): Promise<void>; done(): number } {
  const { ingest, publisher } = options;
  let unchanged = 0;
  const slices = createLoopSlices();
  return {
    async touchUnlessVouched(path) {
      if (cache?.has(path) !== true) {
        ingest.touch(path, { recheck: false });
        return;
      }
      const identity = statIdentitySync(`${options.rootReal}/${path}`);
      const published = publisher.getEntry(path)?.sha256;
      if (identity === undefined || published === undefined || !cache.vouches(path, identity, published)) {
        ingest.touch(path, { recheck: false });
      } else {
        unchanged++;
        // A line an event-driven read wrote meanwhile is older in the file, so this one wins on load; its identity no
        // longer matches the changed file, so that only costs the next start a read.
        options.nextCache?.record(path, vouchedLine(identity, published));
      }
      await slices.turn();
    },
    done: () => unchanged,
  };
}

async function loadCacheOrNone(dataDir: string, log: Logger): Promise<StatCache | undefined> {
  try {
    return await loadStatCache(dataDir);
  } catch (err) {
    log.warn({ err, dataDir }, 'source stat cache unreadable: reading every file');
    return undefined;
  }
}
