/**
 * One `fs.watch` per directory of the source tree, never one per file.
 *
 * On Linux a directory's inotify watch already reports its entries' create,
 * modify, attribute change, delete and rename (libuv asks for IN_CREATE,
 * IN_MODIFY, IN_ATTRIB, IN_DELETE, IN_MOVED_FROM/TO), so a per-file watch adds
 * nothing but cost: chokidar 4 adds one for every file as well as every
 * directory (22,042 watches for a 20k-path tree; a 200k-path tree hit
 * `max_user_watches` and the primary exited). This registry holds one entry
 * per directory (relative path -> watcher and inode) and no state per file.
 *
 * A watch that cannot be added because of a limit (inotify ENOSPC, EMFILE, or
 * our own `maxWatches` cap) is reported once through `onLimit`; from then on no
 * new watch is tried and the watcher relies on scanning (watcher.ts). Watches
 * already held keep reporting.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { sep } from 'node:path';
import { hasErrno } from '@metasync/shared';

export type WatchDir = (absolute: string, listener: (eventType: string, name: string | null) => void) => FSWatcher;

export interface DirWatchesOptions {
  rootReal: string;
  /** 0: no cap of our own (the kernel's limit still applies). */
  maxWatches: number;
  /** An entry of the watched directory `dirRel` ('' = the root) changed; `name` undefined when the kernel did not say which. */
  onEvent(dirRel: string, name: string | undefined, eventType: string): void;
  onLimit(limit: { reason: string; directory: string; err: unknown }): void;
  onCountChange(count: number): void;
  /** Tests inject a `fs.watch` that fails like the kernel does. */
  watchDir?: WatchDir;
}

export interface DirWatches {
  /** Resolves once add() may be called (bulk-dir-watches.ts sets up a child first; here at once). */
  readonly ready: Promise<void>;
  /** Who holds the watches now. */
  kind(): 'inotifywait' | 'fs-watch';
  /** The start-up walk has added every directory (bulk-dir-watches.ts trusts its child no further). */
  startupWalked(): void;
  /**
   * Watches `rel` (idempotent for the same directory: inode and birth time, as ext4 gives a directory made at once
   * after another was deleted the same inode number). False: not watched (limit reached, or the directory is gone).
   */
  add(rel: string, ino: number, bornMs?: number): boolean;
  /** The inode `rel` was watched with, or undefined when it is not watched. */
  inode(rel: string): number | undefined;
  /** Whether `rel` is watched as this very directory. */
  same(rel: string, ino: number, bornMs: number): boolean;
  /** Stops watching `rel` and every directory below it; returns how many watches were closed. */
  removeSubtree(rel: string): number;
  size(): number;
  /** A limit was hit: no new watch is tried. */
  limited(): boolean;
  close(): void;
}

/** Errors meaning "the system will not give us another watch", as opposed to "this directory is gone". */
const LIMIT_CODES = ['ENOSPC', 'EMFILE', 'ENFILE', 'ENOMEM'] as const;

const defaultWatchDir: WatchDir = (absolute, listener) => fsWatch(absolute, { persistent: false }, listener);

export function createDirWatches(options: DirWatchesOptions): DirWatches {
  const watchDir = options.watchDir ?? defaultWatchDir;
  const watches = new Map<string, { watcher: FSWatcher; ino: number; bornMs: number }>();
  let limitReached = false;
  let closed = false;

  const absoluteOf = (rel: string): string => (rel === '' ? options.rootReal : `${options.rootReal}${sep}${rel.split('/').join(sep)}`);

  function hitLimit(reason: string, directory: string, err: unknown): void {
    if (limitReached) return;
    limitReached = true;
    options.onLimit({ reason, directory, err });
  }

  function drop(rel: string): boolean {
    const held = watches.get(rel);
    if (held === undefined) return false;
    watches.delete(rel);
    held.watcher.close();
    return true;
  }

  function add(rel: string, ino: number, bornMs = 0): boolean {
    if (closed) return false;
    const held = watches.get(rel);
    if (held !== undefined && held.ino === ino && held.bornMs === bornMs) return true;
    if (held !== undefined) drop(rel); // another directory now has this name
    if (limitReached) return false;
    if (options.maxWatches > 0 && watches.size >= options.maxWatches) {
      hitLimit('source-max-watches', rel, new Error(`--source-max-watches ${options.maxWatches} reached`));
      return false;
    }
    let watcher: FSWatcher;
    try {
      watcher = watchDir(absoluteOf(rel), (eventType, name) => {
        if (!closed) options.onEvent(rel, name ?? undefined, eventType);
      });
    } catch (err) {
      if (hasErrno(err, 'ENOENT') || hasErrno(err, 'ENOTDIR')) return false; // gone again; its removal event follows
      const code = LIMIT_CODES.find((limit) => hasErrno(err, limit));
      // Anything else (EACCES) also leaves this directory unwatched: only scanning can cover it now.
      hitLimit(code ?? (err as { code?: string }).code ?? 'watch failed', rel, err);
      return false;
    }
    watcher.on('error', (err: unknown) => {
      // The kernel dropped this watch: scanning has to cover the directory from now on.
      if (watches.get(rel)?.watcher === watcher) drop(rel);
      options.onCountChange(watches.size);
      hitLimit((err as { code?: string }).code ?? 'watch error', rel, err);
    });
    watches.set(rel, { watcher, ino, bornMs });
    options.onCountChange(watches.size);
    return true;
  }

  return {
    ready: Promise.resolve(),
    kind: () => 'fs-watch',
    startupWalked: () => undefined,
    add,
    inode: (rel) => watches.get(rel)?.ino,
    same(rel, ino, bornMs) {
      const held = watches.get(rel);
      return held !== undefined && held.ino === ino && held.bornMs === bornMs;
    },
    removeSubtree(rel) {
      const under = rel === '' ? '' : `${rel}/`;
      const doomed = [...watches.keys()].filter((key) => key === rel || key.startsWith(under));
      for (const key of doomed) drop(key);
      if (doomed.length > 0) options.onCountChange(watches.size);
      return doomed.length;
    },
    size: () => watches.size,
    limited: () => limitReached,
    close() {
      closed = true;
      for (const held of watches.values()) held.watcher.close();
      watches.clear();
    },
  };
}
