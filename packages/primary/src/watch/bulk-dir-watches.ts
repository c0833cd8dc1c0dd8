/**
 * DirWatches (dir-watches.ts) for a tree of any size: one inotifywait child
 * (inotifywait-process.ts) holds the watches of the directories present at
 * start, and this process keeps only each one's name and inode (about 100
 * bytes, against 1.4-1.7 KB for an fs.watch here).
 *
 * Set-up: a walk lists every directory (name and inode, parents first), the
 * child watches that list, and the kernel's list of its watches
 * (/proc/<pid>/fdinfo) says which inodes it holds. Then the start-up walk
 * (startup-reconcile.ts) adds each directory before reading it, as with
 * fs.watch alone: one the child holds under the same name and inode is only
 * recorded; any other (made, renamed or replaced since the listing, or not
 * listable) gets an fs.watch here. Once that walk is over nothing more is left
 * to the child: a directory made, moved in or replaced later is watched here
 * (it costs that until the primary restarts). The child's names are the paths
 * it was given; after a rename its events come under the old path, which is
 * harmless (tree-events.ts acts on what an lstat finds there now), while the
 * new path has its own watch.
 *
 * If the child cannot set up (a listed directory vanished: retried; the
 * kernel's limit), every directory is watched here and the usual limits apply.
 * If it ends later, the directories it held are unwatched: reported as a
 * limit, so the tree is scanned from then on.
 */
import { createDirWatches, type DirWatches, type DirWatchesOptions } from './dir-watches.js';
import { listable, startInotifywait, watchesByNumber, type InotifywaitProcess } from './inotifywait-process.js';
import { walkTreeFiles } from './tree-walk.js';

export interface BulkDirWatchesOptions extends DirWatchesOptions {
  /** The inotifywait command (inotifywait-process.ts, findInotifywait). */
  command: readonly string[];
  /** The kernel dropped events: a scan finds what they were. */
  onOverflow(): void;
  /** The child is not used (could not set up): every directory is watched in this process. */
  onBulkUnavailable(message: string): void;
}

/** Set-ups tried: one fails when a listed directory vanishes before the child watches it. */
const SETUP_ATTEMPTS = 3;
/** Most the child's set-up may take. */
const SETUP_TIMEOUT_MS = 15 * 60_000;

/** The directories listed to the child, in its order: watch number i + 1 is entry i when the child added each once. */
interface Listing {
  index: Map<string, number>;
  ino: number[];
  bornMs: number[];
}

export function createBulkDirWatches(options: BulkDirWatchesOptions): DirWatches {
  let limitReported = false;
  const reportLimit: DirWatchesOptions['onLimit'] = (limit) => {
    if (limitReported) return;
    limitReported = true;
    options.onLimit(limit);
  };
  /** Directories the child watches under their right names. */
  const bulk = new Map<string, { ino: number; bornMs: number }>();
  const own = createDirWatches({
    ...options,
    onLimit: reportLimit,
    onCountChange: (count) => options.onCountChange(bulk.size + count),
  });
  /** Until the start-up walk is over: what was listed to the child, and its watches by number (-> inode). */
  let listing: Listing | undefined;
  let watchInodes: Map<number, number> | undefined;
  let child: InotifywaitProcess | undefined;
  let childUsed = false;
  let closed = false;

  const startChild = (directories: readonly string[]): InotifywaitProcess =>
    startInotifywait({
      rootReal: options.rootReal,
      directories,
      command: options.command,
      onEvent: (dirRel, name, eventType) => {
        if (!closed) options.onEvent(dirRel, name, eventType);
      },
      onOverflow: () => {
        if (!closed) options.onOverflow();
      },
      onExit: (message) => {
        if (!childUsed || closed) return; // still setting up: `ready` gives it up
        childUsed = false;
        watchInodes = undefined;
        if (bulk.size > 0) reportLimit({ reason: 'watch process exited', directory: '', err: new Error(message) });
      },
    });

  const ready = (async () => {
    let why = '';
    for (let attempt = 1; attempt <= SETUP_ATTEMPTS && !closed; attempt++) {
      const listed = await listDirectories();
      if (closed) return;
      const root = options.rootReal;
      const started = startChild([...listed.index.keys()].map((rel) => (rel === '' ? `${root}/` : `${root}/${rel}/`)));
      child = started;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('set-up timed out'), SETUP_TIMEOUT_MS)));
      const result = await Promise.race([started.established, timeout]);
      clearTimeout(timer);
      const watches = result === true && started.pid !== undefined ? await watchesByNumber(started.pid) : undefined;
      if (closed) return;
      if (watches !== undefined && !started.ended()) {
        listing = listed;
        watchInodes = watches;
        childUsed = true;
        return;
      }
      started.close();
      why =
        result === true ? (started.ended() ? 'inotifywait ended after its set-up' : 'its watches could not be read from /proc') : result;
      if (why.includes('upper limit on inotify watches')) break; // another try meets the same limit
    }
    child = undefined;
    if (!closed) options.onBulkUnavailable(why);
  })();

  /** Every listable directory of the tree with its inode and birth time, parents first. */
  async function listDirectories(): Promise<Listing> {
    const listed: Listing = { index: new Map(), ino: [], bornMs: [] };
    await walkTreeFiles({
      rootReal: options.rootReal,
      onDirectory: (rel, ino, bornMs) => {
        if (!listable(`${options.rootReal}/${rel}/`)) return; // watched here when the start-up walk meets it
        listed.index.set(rel, listed.ino.length);
        listed.ino.push(ino);
        listed.bornMs.push(bornMs);
      },
      onFiles: () => undefined,
      stopped: () => closed,
    });
    return listed;
  }

  /**
   * The child holds `rel` under that name: it is the very directory listed (inode and birth time: ext4 gives a
   * directory made after a delete the old inode number), and the child's watch number for that list entry is on
   * that inode (given an inode twice, the child keeps its first name; the numbers then no longer match the list).
   */
  function trusted(rel: string, ino: number, bornMs: number | undefined): boolean {
    const i = listing?.index.get(rel);
    if (i === undefined || listing === undefined || bornMs === undefined) return false;
    return listing.ino[i] === ino && listing.bornMs[i] === bornMs && watchInodes?.get(i + 1) === ino;
  }

  return {
    ready,
    kind: () => (childUsed ? 'inotifywait' : 'fs-watch'),
    add(rel, ino, bornMs) {
      if (closed) return false;
      const held = bulk.get(rel);
      if (held !== undefined && held.ino === ino && held.bornMs === bornMs) return true;
      bulk.delete(rel); // another directory took this name (or none held it)
      if (!trusted(rel, ino, bornMs)) return own.add(rel, ino, bornMs);
      bulk.set(rel, { ino, bornMs: bornMs! });
      options.onCountChange(bulk.size + own.size());
      return true;
    },
    startupWalked() {
      // From now on every directory added is new, moved or replaced: its own watch here.
      listing = undefined;
      watchInodes = undefined;
    },
    inode: (rel) => bulk.get(rel)?.ino ?? own.inode(rel),
    same(rel, ino, bornMs) {
      const held = bulk.get(rel);
      return held === undefined ? own.same(rel, ino, bornMs) : held.ino === ino && held.bornMs === bornMs;
    },
    removeSubtree(rel) {
      const under = rel === '' ? '' : `${rel}/`;
      let removed = 0;
      // Deleting the entry being visited is safe in a Map's iteration: no copy of 124,732 keys a removal.
      for (const key of bulk.keys()) {
        if (key !== rel && !key.startsWith(under)) continue;
        bulk.delete(key);
        listing?.index.delete(key); // renamed or deleted: what comes under this name now is watched here
        removed++;
      }
      removed += own.removeSubtree(rel);
      if (removed > 0) options.onCountChange(bulk.size + own.size());
      return removed;
    },
    size: () => bulk.size + own.size(),
    limited: () => own.limited() || (!childUsed && bulk.size > 0),
    close() {
      closed = true;
      child?.close();
      own.close();
      bulk.clear();
    },
  };
}
