import { isDeletion, type ChangeEntry, type PathEntry } from '@metasync/shared';

/** What the mirror serves for one path. Objects are immutable, so this triple is the whole answer. */
export interface IndexEntry {
  sha256: string;
  size: number;
  /** Publish time of the path (ms): the exact Last-Modified. */
  mtime: number;
}

/**
 * The applied generation in memory. `paths` is mutated only inside one
 * synchronous loop per generation (`applyEntries`), so a request, which reads
 * its entry once when it starts, sees generation N or N+1, never a mix: no
 * await can interleave with the switch. Mutating in place (rather than copying
 * the map) keeps a switch O(changed paths).
 */
export interface IndexState {
  seq: number;
  /** Commit time of `seq` on the primary (ms). */
  time: number;
  paths: Map<string, IndexEntry>;
  /** sha256 -> number of paths pointing at it; an object at 0 enters the grace window. */
  refs: Map<string, number>;
}

export interface Dereference {
  sha256: string;
  /** When the generation that dropped it became visible (ms). */
  atMs: number;
}

export function emptyIndex(): IndexState {
  return { seq: 0, time: 0, paths: new Map(), refs: new Map() };
}

/** Root files reference the others: they switch last (invariant 2), even inside one synchronous step. */
export function isRootPath(path: string): boolean {
  return path === 'packages.json' || !path.includes('/');
}

export function orderRootLast<T extends { path: string }>(entries: readonly T[]): T[] {
  return [...entries.filter((e) => !isRootPath(e.path)), ...entries.filter((e) => isRootPath(e.path))];
}

/**
 * Applies one batch's entries synchronously and returns the objects that no
 * path references any more. Cost: O(entries).
 */
export function applyEntries(state: IndexState, entries: readonly ChangeEntry[], atMs: number): Dereference[] {
  const dropped: string[] = [];
  for (const entry of orderRootLast(entries)) {
    const old = state.paths.get(entry.path);
    if (isDeletion(entry)) {
      if (old === undefined) continue;
      state.paths.delete(entry.path);
    } else {
      state.paths.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime });
      state.refs.set(entry.sha256, (state.refs.get(entry.sha256) ?? 0) + 1);
    }
    if (old !== undefined) {
      const count = (state.refs.get(old.sha256) ?? 1) - 1;
      if (count > 0) state.refs.set(old.sha256, count);
      else {
        state.refs.delete(old.sha256);
        dropped.push(old.sha256);
      }
    }
  }
  return [...new Set(dropped)].filter((sha256) => !state.refs.has(sha256)).map((sha256) => ({ sha256, atMs }));
}

/** Replaces the whole state with a snapshot's entries; returns every object no longer referenced. */
export function replaceWithSnapshot(
  state: IndexState,
  snapshot: { seq: number; time: number; entries: readonly PathEntry[] },
  atMs: number,
): Dereference[] {
  const before = new Set(state.refs.keys());
  state.paths.clear();
  state.refs.clear();
  for (const entry of snapshot.entries) {
    state.paths.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime });
    state.refs.set(entry.sha256, (state.refs.get(entry.sha256) ?? 0) + 1);
  }
  state.seq = snapshot.seq;
  state.time = snapshot.time;
  return [...before].filter((sha256) => !state.refs.has(sha256)).map((sha256) => ({ sha256, atMs }));
}
