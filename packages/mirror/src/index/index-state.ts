import { isDeletion, type ChangeEntry, type PathEntry } from '@metasync/shared';
import { createObjectTable, createPathTable, storedPathBytes, type ObjectTable, type PathTable } from '@metasync/shared/tables';
import { createIndexShare, type IndexSharing } from './index-share.js';

/** What the mirror serves for one path. Objects are immutable, so this triple is the whole answer. */
export interface IndexEntry {
  sha256: string;
  size: number;
  /** Publish time of the path (ms): the exact Last-Modified. */
  mtime: number;
}

/**
 * The applied generation in memory: a path table and an object table of typed
 * arrays (path-table.ts, object-table.ts), so the long-lived state holds no JS
 * object or string per path (invariant 11). `lookup` builds a small entry per
 * call (its sha256 hex made from the raw digest) that dies young: the hex costs
 * ~0.3 µs of CPU a lookup (bench/index-memory.ts), under 1% of a request.
 * A cache of hex strings would save it for hot objects only and, under a long
 * tail, push its replaced strings into the old generation (see repository-answer.ts).
 *
 * `set`/`delete` are called only inside one synchronous loop per generation
 * (`applyEntries`, `replaceWithSnapshot`), so a request, which looks its entry
 * up once when it starts, sees generation N or N+1, never a mix: no await can
 * interleave with the switch. Mutating in place keeps a switch O(changed paths)
 * (table growth is amortized into it).
 *
 * Shared (`{ shared: true }`, the mirror with serving workers): the tables live
 * in SharedArrayBuffers that worker threads read in place (index-share.ts,
 * index-reader.ts). Every change then runs inside `write`, a seqlock window:
 * readers that overlap it retry, so they too see N or N+1, never a mix.
 */
export interface IndexState {
  seq: number;
  /** Commit time of `seq` on the primary (ms). */
  time: number;
  /** The entry at `path` now (a new small object), or undefined. */
  lookup(path: string): IndexEntry | undefined;
  /** Whether any path references the object; one at 0 references enters the grace window. */
  hasObject(sha256: string): boolean;
  pathCount(): number;
  /** Bytes the paths take in the table (a base records them, so a restart sizes the arena as a snapshot does). */
  pathBytes(): number;
  /** Gives back path-arena room beyond arenaBytesFor(pathBytes()) (after a load sized by an older base's figure). */
  trimArena(): void;
  objectCount(): number;
  /** Points `path` at an object; returns the sha256 no path references any more, if any. */
  set(path: string, entry: IndexEntry): string | undefined;
  /** Removes `path`; returns the sha256 no path references any more, if any. */
  delete(path: string): string | undefined;
  /**
   * Empties the index, sized for `expectedPaths` (and an arena of `arenaBytes`: arenaBytesFor). Returns a visitor
   * over the objects the cleared index referenced: the old tables live as long as it does, and no longer.
   */
  clear(expectedPaths: number, arenaBytes?: number): (visit: (sha256: string) => void) => void;
  /**
   * Builds the tables of `entries` aside, awaiting `turn()` between slices: the current ones serve meanwhile
   * (a million paths took seconds of one synchronous step, during which nothing answered).
   */
  prepare(entries: readonly PathEntry[], turn: () => Promise<void> | undefined): Promise<PreparedIndex>;
  /**
   * Switches to prepared tables, `seq` and `time` in one `write`; returns a visitor over the objects the old
   * tables referenced, as clear() does. Nothing else may change the state between prepare and this.
   */
  switchTo(prepared: PreparedIndex, generation: { seq: number; time: number }): (visit: (sha256: string) => void) => void;
  /** prepare() in one synchronous step (tests, and callers with nothing to serve meanwhile). */
  prepareNow(entries: readonly PathEntry[]): PreparedIndex;
  /** forEachObject, awaiting `turn()` every 1,024 objects; the caller changes nothing meanwhile. */
  forEachObjectInSlices(visit: (sha256: string) => void, turn: () => Promise<void> | undefined): Promise<void>;
  /** Every path with its entry: O(paths) and allocating, for compaction and tests, never serving. */
  forEachPath(visit: (path: string, entry: IndexEntry) => void): void;
  /** Every referenced object: O(objects), allocating. */
  forEachObject(visit: (sha256: string) => void): void;
  /**
   * Runs `change` (set, delete, clear, seq and time) as one switch: with shared tables,
   * readers in other threads see all of it or none (index-share.ts); else it just runs it.
   */
  write<T>(change: () => T): T;
  /** With `{ shared: true }`: what reader threads need; undefined otherwise. */
  readonly sharing: IndexSharing | undefined;
}

/** Tables built by prepare(), not yet switched to. */
export interface PreparedIndex {
  hasObject(sha256: string): boolean;
}

/** What serving needs: the applied seq and one lookup per request. */
export type IndexView = Pick<IndexState, 'seq' | 'time' | 'lookup' | 'pathCount'>;

export interface Dereference {
  sha256: string;
  /** When the generation that dropped it became visible (ms). */
  atMs: number;
}

type Prepared = PreparedIndex & { paths: PathTable; objects: ObjectTable; basis: { paths: PathTable; objects: ObjectTable; seq: number } };

/** Entries or objects handled between two turns of a sliced step. */
const SLICE_ENTRIES = 1_024;

export function emptyIndex(expectedPaths = 0, options: { shared?: boolean } = {}): IndexState {
  // Paths without `p2/` and `.json` in the arena (path-lookup.ts): 8 MB less at a million paths.
  const memory = { shared: options.shared === true, affixes: true };
  let paths: PathTable = createPathTable(expectedPaths, memory);
  let objects: ObjectTable = createObjectTable(expectedPaths, memory);
  const share = memory.shared ? createIndexShare({ paths: () => paths.arrays(), objects: () => objects.arrays() }) : undefined;
  // seq and time: in the share's words when shared (readers take them inside their read), else plain numbers.
  const numbers = share?.numbers ?? new Float64Array(2);

  /** The tables of `entries`, built beside the current ones; yields every SLICE_ENTRIES entries. */
  function* buildAside(entries: readonly PathEntry[]): Generator<void, Prepared> {
    const basis = { paths, objects, seq: numbers[0]! };
    const next = {
      paths: createPathTable(entries.length, memory, arenaBytesFor(pathBytesOf(entries))),
      objects: createObjectTable(entries.length, memory),
    };
    for (const [index, entry] of entries.entries()) {
      const object = next.objects.acquire(entry.sha256);
      const previous = next.paths.set(entry.path, { object, size: entry.size, mtime: entry.mtime });
      if (previous !== -1) next.objects.release(previous);
      if (index % SLICE_ENTRIES === SLICE_ENTRIES - 1) yield;
    }
    return { ...next, basis, hasObject: (sha256) => next.objects.has(sha256) };
  }

  function entryOf(id: number): IndexEntry {
    return { sha256: objects.hexOf(paths.objectOf(id)), size: paths.sizeOf(id), mtime: paths.mtimeOf(id) };
  }

  const state: IndexState = {
    get seq() {
      return numbers[0]!;
    },
    set seq(seq) {
      numbers[0] = seq;
    },
    get time() {
      return numbers[1]!;
    },
    set time(time) {
      numbers[1] = time;
    },
    lookup(path) {
      const id = paths.find(path);
      return id === -1 ? undefined : entryOf(id);
    },
    hasObject: (sha256) => objects.has(sha256),
    pathCount: () => paths.size(),
    pathBytes: () => paths.bytes(),
    trimArena() {
      const room = arenaBytesFor(paths.bytes());
      // Only past twice the slack a sized arena keeps: a copy of the arena is not worth a few bytes.
      if (paths.arrays().arena.length > room + (room - paths.bytes())) state.write(() => paths.trimArena(room));
    },
    objectCount: () => objects.size(),
    set(path, entry) {
      // Acquire before release: a path re-pointed at the object it had keeps it referenced.
      const object = objects.acquire(entry.sha256);
      const previous = paths.set(path, { object, size: entry.size, mtime: entry.mtime });
      return previous === -1 ? undefined : objects.release(previous);
    },
    delete(path) {
      const previous = paths.delete(path);
      return previous === -1 ? undefined : objects.release(previous);
    },
    clear(expectedPaths, arenaBytes) {
      const previous = objects;
      paths = createPathTable(expectedPaths, memory, arenaBytes);
      objects = createObjectTable(expectedPaths, memory);
      return (visit) => previous.forEach(visit);
    },
    async prepare(entries, turn) {
      const build = buildAside(entries);
      for (let step = build.next(); ; step = build.next()) {
        if (step.done === true) return step.value;
        await turn();
      }
    },
    prepareNow(entries) {
      const build = buildAside(entries);
      for (let step = build.next(); ; step = build.next()) if (step.done === true) return step.value;
    },
    switchTo(prepared, generation) {
      const next = prepared as Prepared;
      // Prepared from other tables or another generation: switching would silently drop what changed since.
      if (next.basis.paths !== paths || next.basis.objects !== objects || next.basis.seq !== state.seq)
        throw new Error(`index changed between prepare and switch (seq ${next.basis.seq} -> ${state.seq})`);
      const previous = objects;
      state.write(() => {
        paths = next.paths;
        objects = next.objects;
        state.seq = generation.seq;
        state.time = generation.time;
      });
      return (visit) => previous.forEach(visit);
    },
    async forEachObjectInSlices(visit, turn) {
      const table = objects;
      for (let from = table.forEachFrom(0, SLICE_ENTRIES, visit); from !== -1; from = table.forEachFrom(from, SLICE_ENTRIES, visit))
        await turn();
    },
    forEachPath(visit) {
      paths.forEach((id) => visit(paths.pathOf(id), entryOf(id)));
    },
    forEachObject: (visit) => objects.forEach(visit),
    write: (change) => (share === undefined ? change() : share.write(change, () => paths.size())),
    sharing: share?.sharing,
  };
  return state;
}

/** Bytes `entries`' paths take in the index's path table (without the affixes it leaves out). */
export function pathBytesOf(entries: readonly { path: string }[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += storedPathBytes(entry.path, true);
  return bytes;
}

/**
 * An arena for `pathBytes` of paths and a sixteenth more: the next publishes add paths without a copy, and
 * a million 32-byte paths do not take the default 40 bytes a path.
 */
export function arenaBytesFor(pathBytes: number): number {
  return pathBytes + Math.ceil(pathBytes / 16);
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
  const dropped = new Set<string>();
  state.write(() => {
    // An empty index taking a batch (a bootstrap from seq 0, or its replay) is sized for it at once, as a
    // loaded base is: grown an insert at a time, its tables keep up to twice the room until a restart
    // (measured at 100k paths: ~6 MB more than the same index restarted).
    if (state.pathCount() === 0 && entries.length > 0) state.clear(entries.length, arenaBytesFor(pathBytesOf(entries)));
    for (const entry of orderRootLast(entries)) {
      const gone = isDeletion(entry) ? state.delete(entry.path) : state.set(entry.path, entry);
      if (gone !== undefined) dropped.add(gone);
    }
  });
  // An object dropped and referenced again within the batch stays.
  return [...dropped].filter((sha256) => !state.hasObject(sha256)).map((sha256) => ({ sha256, atMs }));
}

/**
 * Replaces the whole state with a snapshot's entries in one synchronous step;
 * returns every object no longer referenced. The old tables stay alive only
 * until the comparison at the end.
 */
export function replaceWithSnapshot(
  state: IndexState,
  snapshot: { seq: number; time: number; entries: readonly PathEntry[] },
  atMs: number,
): Dereference[] {
  const before = state.switchTo(state.prepareNow(snapshot.entries), snapshot);
  const dropped: Dereference[] = [];
  before((sha256) => {
    if (!state.hasObject(sha256)) dropped.push({ sha256, atMs });
  });
  return dropped;
}

/** The whole index as a Map (tests and diagnostics: one object per path). */
export function indexToMap(state: IndexState): Map<string, IndexEntry> {
  const map = new Map<string, IndexEntry>();
  state.forEachPath((path, entry) => map.set(path, entry));
  return map;
}
