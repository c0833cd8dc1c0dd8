import { allocArray, checkDigestHex, checkedPathHash, createObjectTable, createPathTable } from '@metasync/shared/tables';
import { deferWhileFrozen, type FrozenManifest } from './manifest-freeze.js';
import { sortedView, type ManifestTables } from './manifest-view.js';
import type { JournalGeneration, Origin } from './record.js';
import type { RawSnapshotEntry } from './snapshot-body.js';

/** What the primary knows about one live path. `mtime` is the commit time of the generation that last changed it. */
export interface ManifestEntry {
  sha256: string;
  size: number;
  mtime: number;
  origin: Origin;
}

/**
 * path -> entry for every path that exists at the head generation. The part of
 * Map's interface the primary uses, so a plain Map satisfies it (tests);
 * `createManifest` is the one the daemon holds.
 */
export interface Manifest {
  readonly size: number;
  get(path: string): ManifestEntry | undefined;
  has(path: string): boolean;
  set(path: string, entry: ManifestEntry): unknown;
  delete(path: string): boolean;
  keys(): IterableIterator<string>;
  values(): IterableIterator<ManifestEntry>;
  entries(): IterableIterator<[string, ManifestEntry]>;
  /** The paths one origin published, without building an entry (and its sha256 string) for every path. Optional: a Map has none. */
  pathsWithOrigin?(origin: Origin): IterableIterator<string>;
  /** Every path in sorted order, read by position (a snapshot): no array of every path string. Optional: a Map has none. */
  sorted?(): SortedManifest;
  /**
   * Its tables now, unchanged until thaw() (manifest-freeze.ts): another thread reads them in place for a snapshot
   * while sets and deletes wait beside them. Optional: a Map has none.
   */
  freeze?(): FrozenManifest;
  /** Whether changes made during a freeze wait for its thaw: a freeze now would miss them (it throws). */
  changesWaiting?(): boolean;
  /** Resolves once no change waits (at once when none does). */
  thawed?(): Promise<void>;
  /** Whether some path references the object now: a table lookup, no string or entry made. Optional: a Map has none. */
  hasObject?(sha256: string): boolean;
}

/** The manifest in path order at one moment: valid until the next set or delete. */
export interface SortedManifest {
  readonly size: number;
  pathAt(index: number): string;
  entryAt(index: number): ManifestEntry;
  /**
   * The entry's bytes from the tables, no string built (snapshot-body.ts); one scratch object for every call.
   * It reads arrays taken when sorted() ran: read it only before the manifest changes again (signSnapshot is synchronous).
   */
  rawAt?(index: number): RawSnapshotEntry;
  originAt?(index: number): Origin;
}

/** The manifest the daemon holds: compact tables, frozen while a snapshot reads them (manifest-freeze.ts). */
export function createManifest(expectedPaths = 0): Manifest {
  return deferWhileFrozen(createTableManifest(expectedPaths));
}

/** The compact manifest's own interface: its live tables, read in place. */
export type TableManifest = Manifest &
  Required<Pick<Manifest, 'sorted' | 'hasObject' | 'pathsWithOrigin'>> & {
    tables(): ManifestTables;
    /** Throws what set() would throw for this change, and changes nothing. */
    check(path: string, entry: ManifestEntry): void;
  };

/**
 * The head manifest without a JS object or string per path (DESIGN.md
 * invariant 11): the compact path and object tables the mirror's index uses,
 * plus one byte per entry for its origin. A million paths cost on the order of
 * 130 MB here instead of several hundred MB of Map entries, objects and
 * strings. get() and iteration build an entry (and its sha256 string) on each
 * call: callers hold it only as long as they need it. The arrays are shared
 * memory, so the snapshot signing thread reads them without a copy.
 */
function createTableManifest(expectedPaths: number): TableManifest {
  const paths = createPathTable(expectedPaths, { shared: true });
  const objects = createObjectTable(expectedPaths, { shared: true });
  /** Origin code by entry id; entry ids are dense, so this grows with the table's high-water mark. */
  let originCodes = allocArray(Uint8Array, Math.max(16, expectedPaths), true);
  const origins: Origin[] = [];

  function codeOf(origin: Origin): number {
    let code = origins.indexOf(origin);
    if (code === -1) code = origins.push(origin) - 1;
    return code;
  }

  function entryOf(id: number): ManifestEntry {
    return {
      sha256: objects.hexOf(paths.objectOf(id)),
      size: paths.sizeOf(id),
      mtime: paths.mtimeOf(id),
      origin: origins[originCodes[id]!]!,
    };
  }

  /**
   * Live entry ids, taken when iteration starts. A caller may await between
   * items while commits change the table (as Map iteration allows): an id freed
   * since is skipped, and one reused for a new path yields that path.
   */
  function* live(): Generator<{ id: number; path: string }> {
    const ids: number[] = [];
    paths.forEach((id) => ids.push(id));
    for (const id of ids) {
      const path = paths.pathOf(id);
      if (path !== '') yield { id, path };
    }
  }

  /** The tables' arrays now (manifest-view.ts): valid until the next set or delete. */
  function tables(): ManifestTables {
    const { offset, length, object, size, mtime, arena, affixes } = paths.arrays();
    // Stored lengths are plain byte counts only without affixes (path-lookup.ts); the manifest never uses them.
    if (affixes) throw new Error('the manifest path table must not use affixes');
    const { digest } = objects.arrays();
    const digestBytes = new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
    return { offset, length, object, size, mtime, originCodes, arena, digest: digestBytes, origins };
  }

  const manifest: TableManifest = {
    get size() {
      return paths.size();
    },
    get(path) {
      const id = paths.find(path);
      return id === -1 ? undefined : entryOf(id);
    },
    has: (path) => paths.find(path) !== -1,
    set(path, entry) {
      // Acquire before release: a path re-pointed at the object it had keeps it referenced.
      const object = objects.acquire(entry.sha256);
      const previous = paths.set(path, { object, size: entry.size, mtime: entry.mtime });
      if (previous !== -1) objects.release(previous);
      const id = paths.find(path);
      if (id >= originCodes.length) {
        const grown = allocArray(Uint8Array, Math.max(id + 1, originCodes.length * 2), true);
        grown.set(originCodes);
        originCodes = grown;
      }
      originCodes[id] = codeOf(entry.origin);
      return manifest;
    },
    delete(path) {
      const previous = paths.delete(path);
      if (previous === -1) return false;
      objects.release(previous);
      return true;
    },
    *keys() {
      for (const { path } of live()) yield path;
    },
    *values() {
      for (const { id } of live()) yield entryOf(id);
    },
    *entries() {
      for (const { id, path } of live()) yield [path, entryOf(id)];
    },
    sorted: () => sortedView(tables()),
    tables,
    check(path, entry) {
      checkedPathHash(path, entry.size);
      checkDigestHex(entry.sha256);
    },
    hasObject: (sha256) => objects.has(sha256),
    *pathsWithOrigin(origin) {
      const code = origins.indexOf(origin);
      if (code === -1) return;
      for (const { id, path } of live()) if (originCodes[id] === code) yield path;
    },
  };
  return manifest;
}

/** Applies a committed generation's changes (a commit, or a replay). */
export function applyToManifest(manifest: Manifest, generation: JournalGeneration): void {
  for (const entry of generation.entries) {
    if ('deleted' in entry) manifest.delete(entry.path);
    else manifest.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime, origin: entry.origin });
  }
}

/** The paths `origin` published: from the compact manifest's origin codes, else (a Map) from its entries. */
export function pathsWithOrigin(manifest: Manifest, origin: Origin): Iterable<string> {
  return manifest.pathsWithOrigin?.(origin) ?? filterByOrigin(manifest.entries(), origin);
}

function* filterByOrigin(entries: Iterable<[string, ManifestEntry]>, origin: Origin): Iterable<string> {
  for (const [path, entry] of entries) if (entry.origin === origin) yield path;
}
