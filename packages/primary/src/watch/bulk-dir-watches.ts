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
import { listable, startInotifywait, watchedInodes, type InotifywaitProcess } from './inotifywait-process.js';
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

export function createBulkDirWatches(options: BulkDirWatchesOptions): DirWatches {
  let limitReported = false;
  const reportLimit: DirWatchesOptions['onLimit'] = (limit) => {
    if (limitReported) return;
    limitReported = true;
    options.onLimit(limit);
  };
  /** Directories the child watches under their right names: relative path -> inode. */
  const bulk = new Map<string, number>();
  const own = createDirWatches({
    ...options,
    onLimit: reportLimit,
    onCountChange: (count) => options.onCountChange(bulk.size + count),
  });
  /** Until the start-up walk is over: the directories listed to the child (path -> inode) and the inodes it watches. */
  let listed: Map<string, number> | undefined;
  let childInodes: Set<number> | undefined;
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
        childInodes = undefined;
        if (bulk.size > 0) reportLimit({ reason: 'watch process exited', directory: '', err: new Error(message) });
      },
    });

  const ready = (async () => {
    let why = '';
    for (let attempt = 1; attempt <= SETUP_ATTEMPTS && !closed; attempt++) {
      const directories = await listDirectories();
      if (closed) return;
      const root = options.rootReal;
      const started = startChild([...directories.keys()].map((rel) => (rel === '' ? `${root}/` : `${root}/${rel}/`)).filter(listable));
      child = started;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('set-up timed out'), SETUP_TIMEOUT_MS)));
      const result = await Promise.race([started.established, timeout]);
      clearTimeout(timer);
      const inodes = result === true && started.pid !== undefined ? await watchedInodes(started.pid) : undefined;
      if (closed) return;
      if (inodes !== undefined) {
        listed = directories;
        childInodes = inodes;
        childUsed = true;
        return;
      }
      started.close();
      why = result === true ? 'its watches could not be read from /proc' : result;
      if (why.includes('upper limit on inotify watches')) break; // another try meets the same limit
    }
    child = undefined;
    if (!closed) options.onBulkUnavailable(why);
  })();

  /** Every directory of the tree (relative path -> inode), parents first. */
  async function listDirectories(): Promise<Map<string, number>> {
    const directories = new Map<string, number>();
    await walkTreeFiles({
      rootReal: options.rootReal,
      onDirectory: (rel, ino) => directories.set(rel, ino),
      onFiles: () => undefined,
      stopped: () => closed,
    });
    return directories;
  }

  const trusted = (rel: string, ino: number): boolean => listed?.get(rel) === ino && childInodes?.has(ino) === true;

  return {
    ready,
    kind: () => (childUsed ? 'inotifywait' : 'fs-watch'),
    add(rel, ino) {
      if (closed) return false;
      if (bulk.get(rel) === ino) return true;
      bulk.delete(rel); // another directory took this name (or none held it)
      if (!trusted(rel, ino)) return own.add(rel, ino);
      bulk.set(rel, ino);
      options.onCountChange(bulk.size + own.size());
      return true;
    },
    startupWalked() {
      // From now on every directory added is new, moved or replaced: its own watch here.
      listed = undefined;
      childInodes = undefined;
    },
    inode: (rel) => bulk.get(rel) ?? own.inode(rel),
    release(rel) {
      if (bulk.delete(rel)) options.onCountChange(bulk.size + own.size());
      own.release(rel);
    },
    removeSubtree(rel) {
      const under = rel === '' ? '' : `${rel}/`;
      let removed = 0;
      for (const key of [...bulk.keys()]) {
        if (key !== rel && !key.startsWith(under)) continue;
        listed?.delete(key); // renamed or deleted: what comes under this name now is watched here
        bulk.delete(key);
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
