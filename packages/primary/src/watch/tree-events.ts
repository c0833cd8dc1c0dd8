/**
 * Turns directory events (dir-watches.ts) into ingest actions. An event names
 * an entry of a watched directory; one lstat says what it is now:
 *
 *   gone        -> a watched directory: stop watching its subtree, delete every path below it
 *                  anything else: remove the file
 *   a directory -> not watched yet (created, renamed in): watch it and everything below it,
 *                  walking it after each watch is added, so files created a moment after the
 *                  directory are found by the walk or by the new watch, never by neither
 *   a file      -> touch it (path-settler.ts decides when it is complete)
 *
 * Only the newest event of a path acts on its lstat (the stats of a rename-over
 * can resolve out of order). Directory changes run one at a time, each
 * re-checking the directory when it runs, so the last one sees the final state.
 * A `change` event on an entry that is not a watched directory is a file write:
 * touched without a stat.
 */
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno } from '@metasync/shared';
import type { DirWatches } from './dir-watches.js';
import type { SourceIngest } from './ingest.js';
import { isIgnoredName } from './paths.js';
import { walkTree } from './tree-walk.js';

export interface TreeEventsOptions {
  rootReal: string;
  watches: DirWatches;
  ingest: Pick<SourceIngest, 'touch' | 'remove'>;
  /** Deletes every published path below `prefix`, except those in `keep`. */
  removeTree(prefix: string, keep?: ReadonlySet<string>): void;
  onError(err: unknown, path: string): void;
}

export interface TreeEvents {
  event(dirRel: string, name: string | undefined, eventType: string): void;
  /** Watches `rel` and below and touches every file there (a new directory, or a directory whose entries the kernel did not name). */
  enterDirectory(rel: string): void;
  /** Stops acting on events and waits for the directory change running now. */
  close(): Promise<void>;
}

export function createTreeEvents(options: TreeEventsOptions): TreeEvents {
  const { watches, ingest } = options;
  const latest = new Map<string, number>();
  let token = 0;
  let structural: Promise<void> = Promise.resolve();
  let closed = false;

  const absoluteOf = (rel: string): string => (rel === '' ? options.rootReal : join(options.rootReal, rel));

  async function lstatOrGone(rel: string): Promise<import('node:fs').Stats | undefined> {
    try {
      return await lstat(absoluteOf(rel));
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  function enqueue(rel: string, rescan = false): void {
    structural = structural
      .then(() => (closed ? undefined : syncDirectory(rel, rescan)))
      .catch((err: unknown) => options.onError(err, rel));
  }

  /** Brings the watches and ingest in line with what `rel` is now. */
  async function syncDirectory(rel: string, rescan: boolean): Promise<void> {
    const info = await lstatOrGone(rel);
    const held = watches.inode(rel) !== undefined;
    if (info === undefined || !info.isDirectory()) {
      if (held) {
        watches.removeSubtree(rel);
        options.removeTree(rel);
      }
      if (info !== undefined && rel !== '') ingest.touch(rel);
      return;
    }
    const same = watches.same(rel, info.ino, info.birthtimeMs);
    if (same && !rescan) return; // already watched: an event about the directory itself
    // Another directory took this name (ext4 may give one made at once after a delete the same inode number).
    const replaced = held && !same;
    if (replaced) watches.removeSubtree(rel);
    const files = await walkTree({
      rootReal: options.rootReal,
      startRel: rel,
      onDirectory: (dir, ino, bornMs) => watches.add(dir, ino, bornMs),
    });
    if (closed) return;
    for (const path of files) ingest.touch(path);
    // Another directory took this name: what the old one held and the new one lacks is gone.
    if (replaced) options.removeTree(rel, files);
  }

  function settleEntry(rel: string): void {
    const mine = ++token;
    latest.set(rel, mine);
    lstatOrGone(rel).then(
      (info) => {
        if (latest.get(rel) !== mine) return; // a newer event for this path decides
        latest.delete(rel);
        if (closed) return;
        const watched = watches.inode(rel) !== undefined;
        if (info === undefined) {
          if (watched) enqueue(rel);
          else ingest.remove(rel);
        } else if (info.isDirectory() || watched) enqueue(rel);
        else ingest.touch(rel);
      },
      (err: unknown) => {
        if (latest.get(rel) === mine) latest.delete(rel);
        options.onError(err, rel);
      },
    );
  }

  return {
    event(dirRel, name, eventType) {
      if (closed) return;
      if (name === undefined) return enqueue(dirRel, true);
      if (isIgnoredName(name)) return;
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (eventType === 'change' && watches.inode(rel) === undefined) return ingest.touch(rel);
      settleEntry(rel);
    },
    enterDirectory: (rel) => enqueue(rel, true),
    async close() {
      closed = true;
      await structural;
    },
  };
}
