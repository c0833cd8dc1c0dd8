/**
 * DirWatches (dir-watches.ts) for a tree of any size: one inotifywait child
 * (inotifywait-process.ts) holds the watches of every directory present at
 * start, and this process keeps only the directory's name and inode (about
 * 100 bytes, against 1.4-1.7 KB for an fs.watch here).
 *
 * A directory the child does not watch gets an fs.watch here, added before
 * the directory is read as dir-watches.ts does, so nothing is missed:
 *   - one created while the child set up its watches (it watches a directory
 *     after reading it; the kernel's list of its watches, read once it is set
 *     up, says which it holds);
 *   - one created later: the child watches it too, a moment after its create
 *     event. Every HANDOVER_MS the kernel's list is read again and the watches
 *     here that the child also holds are closed, so they do not pile up in a
 *     primary that runs for months.
 * If the child cannot start or set up, every directory is watched here (and a
 * limit there is the usual fallback to scanning). If it ends later, the
 * directories it watched are unwatched: reported as a limit, so the tree is
 * scanned from then on.
 */
import { createDirWatches, type DirWatches, type DirWatchesOptions } from './dir-watches.js';
import { startInotifywait, watchedInodes } from './inotifywait-process.js';

export interface BulkDirWatchesOptions extends DirWatchesOptions {
  /** The inotifywait command (inotifywait-process.ts, findInotifywait). */
  command: readonly string[];
  /** The kernel dropped events: a scan finds what they were. */
  onOverflow(): void;
  /** The child is not used (could not start or set up): every directory is watched in this process. */
  onBulkUnavailable(message: string): void;
}

/** How long an fs.watch of a new directory stays beside the child's watch of it. */
export const HANDOVER_MS = 30_000;

export function createBulkDirWatches(options: BulkDirWatchesOptions, handoverMs = HANDOVER_MS): DirWatches {
  let limitReported = false;
  const reportLimit: DirWatchesOptions['onLimit'] = (limit) => {
    if (limitReported) return;
    limitReported = true;
    options.onLimit(limit);
  };
  /** Directories the child watches: relative path -> inode. */
  const bulk = new Map<string, number>();
  /** Directories watched here that the child may watch too (created after its set-up). */
  const handover = new Map<string, number>();
  const own = createDirWatches({
    ...options,
    onLimit: reportLimit,
    onCountChange: (count) => options.onCountChange(bulk.size + count),
  });
  /** The inodes the child watches, as the kernel listed them; undefined until set up, empty when given up. */
  let bulkInodes: Set<number> | undefined;
  let childEnded = false;
  let handoverTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const child = startInotifywait({
    rootReal: options.rootReal,
    command: options.command,
    onEvent: (dirRel, name, eventType) => {
      if (!closed) options.onEvent(dirRel, name, eventType);
    },
    onOverflow: () => {
      if (!closed) options.onOverflow();
    },
    onExit: (message) => {
      childEnded = true;
      if (bulkInodes === undefined) return; // still setting up: `ready` gives it up
      bulkInodes = new Set();
      if (bulk.size > 0) reportLimit({ reason: 'watch process exited', directory: '', err: new Error(message) });
    },
  });

  const ready = (async () => {
    const established = await child.established;
    const inodes = established && child.pid !== undefined ? await watchedInodes(child.pid) : undefined;
    if (closed) return;
    if (inodes === undefined || childEnded) {
      childEnded = true;
      child.close();
      bulkInodes = new Set();
      options.onBulkUnavailable(established ? 'the watches of inotifywait could not be read from /proc' : 'inotifywait did not set up');
      return;
    }
    bulkInodes = inodes;
  })();

  function scheduleHandover(): void {
    if (handoverTimer !== undefined || closed) return;
    handoverTimer = setTimeout(() => {
      handoverTimer = undefined;
      void handOver();
    }, handoverMs);
    handoverTimer.unref();
  }

  async function handOver(): Promise<void> {
    const inodes = childEnded || child.pid === undefined ? undefined : await watchedInodes(child.pid);
    if (closed || inodes === undefined || childEnded) return;
    bulkInodes = inodes;
    for (const [rel, ino] of handover) {
      handover.delete(rel);
      if (!inodes.has(ino) || own.inode(rel) !== ino) continue; // the child does not hold it: it stays here
      own.release(rel);
      bulk.set(rel, ino);
    }
    options.onCountChange(bulk.size + own.size());
  }

  return {
    ready,
    add(rel, ino) {
      if (closed) return false;
      if (bulk.get(rel) === ino) return true;
      bulk.delete(rel); // another directory took this name (or none held it)
      if (bulkInodes?.has(ino) === true && !childEnded) {
        bulk.set(rel, ino);
        options.onCountChange(bulk.size + own.size());
        return true;
      }
      const added = own.add(rel, ino);
      if (added && bulkInodes !== undefined && !childEnded) {
        handover.set(rel, ino);
        scheduleHandover();
      }
      return added;
    },
    inode: (rel) => bulk.get(rel) ?? own.inode(rel),
    release(rel) {
      handover.delete(rel);
      if (bulk.delete(rel)) options.onCountChange(bulk.size + own.size());
      own.release(rel);
    },
    removeSubtree(rel) {
      const under = rel === '' ? '' : `${rel}/`;
      let removed = 0;
      for (const key of [...bulk.keys()]) {
        if (key !== rel && !key.startsWith(under)) continue;
        bulk.delete(key);
        removed++;
      }
      for (const key of [...handover.keys()]) if (key === rel || key.startsWith(under)) handover.delete(key);
      removed += own.removeSubtree(rel);
      if (removed > 0) options.onCountChange(bulk.size + own.size());
      return removed;
    },
    size: () => bulk.size + own.size(),
    limited: () => own.limited() || (childEnded && bulk.size > 0),
    close() {
      closed = true;
      clearTimeout(handoverTimer);
      child.close();
      own.close();
      bulk.clear();
      handover.clear();
    },
  };
}
