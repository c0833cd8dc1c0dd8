import { MAX_OBJECT_BYTES } from '../protocol/documents.js';
import { MAX_REPO_PATH_BYTES } from '../protocol/repo-path.js';
import {
  EMPTY_SLOT,
  TOMBSTONE_SLOT,
  findPathId,
  findPathSlot,
  hashPath,
  hashStoredPath,
  pathOfStored,
  storedBytes,
  storedLength,
  storedStart,
  type PathArrays,
} from './path-lookup.js';
import { allocArray, allocBytes, grow, homeSlot, nextCapacity, slotCapacityFor, withHeadroom, type TableMemory } from './table-memory.js';

export { hashPath };

/**
 * Path -> (object id, size, mtime) without a JS object or string per path
 * (invariant 11): typed arrays and one byte arena, a few dozen bytes a path.
 *
 *   slots   linear probing from homeSlot (any capacity, table-memory.ts)
 *     slotId    Int32Array   -1 empty, -2 tombstone, else an entry id (no stored hash: path-lookup.ts)
 *   entries ids dense; a freed id is reused (free list threaded through `offset`)
 *     offset    Uint32Array  start of the path's bytes in the arena
 *     length    Uint16Array  stored bytes, with AFFIXED for a path kept without `p2/` and `.json`
 *                            (tables made with `affixes`, path-lookup.ts); 0 for a free id
 *     object    Uint32Array  id in the object table (digest + refcount)
 *     size      Uint32Array  bytes of the raw object (under 4 GiB)
 *     mtime     Float64Array publish time (ms)
 *   arena   Buffer of ASCII path bytes, appended; compacted into 1.25-1.5x its live bytes when full
 *
 *   slot --> id --> offset,length --> arena: ...p2/acme/foo.json...
 *                   object --> object table
 *
 * Load factor, tombstones included, stays <= 3/4: past it the slots are
 * rebuilt, each path hashed again from the arena, doubled when live entries fill
 * more than 3/5 of them (the load a presized table starts at), else at the same size to clear tombstones. Growth is
 * O(paths) but doubling makes it amortized O(1) a change; it happens inside
 * the synchronous switch, so it is invisible to requests. Repository paths
 * are ASCII (repo-path.ts): a lookup hashes the string's char codes (FNV-1a
 * plus a finalizer) and compares them with the arena, allocating nothing.
 */
export interface PathTable {
  /** The entry id of `path`, or -1 (a non-ASCII or over-long path is never present). */
  find(path: string): number;
  objectOf(id: number): number;
  sizeOf(id: number): number;
  mtimeOf(id: number): number;
  /** The path of a live id (a new string: iteration, not the serving path). */
  pathOf(id: number): string;
  /** Sets `path`; returns the object id it pointed at before, or -1 when it is new. */
  set(path: string, entry: { object: number; size: number; mtime: number }): number;
  /** Removes `path`; returns the object id it pointed at, or -1 when absent. */
  delete(path: string): number;
  size(): number;
  /** Bytes the live paths take in the arena (without the affixes a table with `affixes` leaves out). */
  bytes(): number;
  /** Moves the paths into an arena of `bytes` (at least bytes()) when the current one is larger: O(bytes). */
  trimArena(bytes: number): void;
  /** Every live entry id (O(entries ever allocated)). */
  forEach(visit: (id: number) => void): void;
  /**
   * The arrays now (path-lookup.ts): the same object until the table replaces one of them
   * (growth, slot rebuild, arena compaction), so a writer compares identities to know when
   * readers in other threads need the new ones.
   */
  arrays(): PathArrays;
}

const EMPTY = EMPTY_SLOT;
const TOMBSTONE = TOMBSTONE_SLOT;
const MIN_ENTRIES = 16;
const MIN_ARENA_BYTES = 4096;
const ARENA_SPARE_QUARTER_FROM = 1 << 21;

export interface PathTableOptions extends TableMemory {
  /** Store `p2/<name>.json` paths without those affixes (the mirror's index; the primary's manifest copies raw bytes). */
  affixes?: boolean;
}

/**
 * `expected` paths presize the slots and entries; `arenaBytes` their bytes (a snapshot's builder passes the
 * exact sum, so a million 32-byte paths do not take a 40 MB arena).
 */
export function createPathTable(expected = 0, options: PathTableOptions = {}, arenaBytes = expected * 40): PathTable {
  const shared = options.shared === true;
  const affixes = options.affixes === true;
  let slotId = allocArray(Int32Array, slotCapacityFor(expected), shared).fill(EMPTY);
  let used = 0; // live + tombstones in the slots
  let live = 0;
  let entryCapacity = Math.max(MIN_ENTRIES, withHeadroom(expected));
  let offset = allocArray(Uint32Array, entryCapacity, shared);
  let length = allocArray(Uint16Array, entryCapacity, shared);
  let object = allocArray(Uint32Array, entryCapacity, shared);
  let size = allocArray(Uint32Array, entryCapacity, shared);
  let mtime = allocArray(Float64Array, entryCapacity, shared);
  let freeHead = -1;
  let nextId = 0;
  let arena = allocBytes(Math.max(MIN_ARENA_BYTES, arenaBytes), shared);
  let arenaUsed = 0;
  let liveBytes = 0;
  let arrays = currentArrays();

  /** Called after any array is replaced: a new object, so its identity tells that it changed. */
  function currentArrays(): PathArrays {
    return { slotId, offset, length, object, size, mtime, arena, affixes };
  }

  function findSlot(path: string, hash: number): number {
    return findPathSlot(arrays, path, hash);
  }

  /** O(live path bytes): at a million paths about 34 MB hashed, rare (doubling, or tombstones past the load factor). */
  function rebuildSlots(capacity: number): void {
    const oldIds = slotId;
    slotId = allocArray(Int32Array, capacity, shared).fill(EMPTY);
    for (let old = 0; old < oldIds.length; old++) {
      const id = oldIds[old]!;
      if (id < 0) continue;
      let slot = homeSlot(hashStoredPath(arena, offset[id]!, length[id]!), capacity);
      while (slotId[slot] !== EMPTY) slot = slot + 1 === capacity ? 0 : slot + 1;
      slotId[slot] = id;
    }
    used = live;
    arrays = currentArrays();
  }

  function newId(): number {
    if (freeHead !== -1) {
      const id = freeHead;
      freeHead = offset[id]! - 1;
      return id;
    }
    if (nextId === entryCapacity) {
      entryCapacity = nextCapacity(entryCapacity);
      offset = grow(offset, entryCapacity);
      length = grow(length, entryCapacity);
      object = grow(object, entryCapacity);
      size = grow(size, entryCapacity);
      mtime = grow(mtime, entryCapacity);
      arrays = currentArrays();
    }
    return nextId++;
  }

  /**
   * Room for `bytes` more: a new arena holding the live paths (dead bytes dropped) with room for half as
   * many bytes again, a quarter once past ARENA_SPARE_QUARTER_FROM (as the entries grow, table-memory.ts).
   * Growth by less than 2: the arena is the largest part of the table, and its copy stays amortized O(1) a byte.
   */
  function reserveArena(bytes: number): void {
    if (arenaUsed + bytes <= arena.length) return;
    const needed = liveBytes + bytes;
    const spare = needed < ARENA_SPARE_QUARTER_FROM ? needed / 2 : needed / 4;
    moveArena(Math.max(MIN_ARENA_BYTES, Math.ceil(needed + spare)));
  }

  /** A new arena of `bytes` holding the live paths packed (dead bytes dropped). */
  function moveArena(bytes: number): void {
    const next = allocBytes(bytes, shared);
    let at = 0;
    for (let id = 0; id < nextId; id++) {
      if (length[id] === 0) continue;
      const n = storedBytes(length[id]!);
      arena.copy(next, at, offset[id]!, offset[id]! + n);
      offset[id] = at;
      at += n;
    }
    arena = next;
    arenaUsed = at;
    arrays = currentArrays();
  }

  function insert(path: string, hash: number, entry: { object: number; size: number; mtime: number }): void {
    if ((used + 1) * 4 > slotId.length * 3) rebuildSlots((live + 1) * 5 > slotId.length * 3 ? slotId.length * 2 : slotId.length);
    const word = storedLength(path, affixes);
    const bytes = storedBytes(word);
    reserveArena(bytes);
    const id = newId();
    const start = storedStart(word);
    arena.write(bytes === path.length ? path : path.substring(start, start + bytes), arenaUsed, 'latin1');
    offset[id] = arenaUsed;
    length[id] = word;
    arenaUsed += bytes;
    liveBytes += bytes;
    object[id] = entry.object;
    size[id] = entry.size;
    mtime[id] = entry.mtime;
    const capacity = slotId.length;
    let slot = homeSlot(hash, capacity);
    while (slotId[slot]! >= 0) slot = slot + 1 === capacity ? 0 : slot + 1;
    if (slotId[slot] === EMPTY) used++;
    slotId[slot] = id;
    live++;
  }

  return {
    find: (path) => findPathId(arrays, path),
    objectOf: (id) => object[id]!,
    sizeOf: (id) => size[id]!,
    mtimeOf: (id) => mtime[id]!,
    pathOf: (id) => pathOfStored(arena, offset[id]!, length[id]!),
    set(path, entry) {
      const hash = checkedPathHash(path, entry.size);
      const slot = findSlot(path, hash);
      if (slot === -1) {
        insert(path, hash, entry);
        return -1;
      }
      const id = slotId[slot]!;
      const previous = object[id]!;
      object[id] = entry.object;
      size[id] = entry.size;
      mtime[id] = entry.mtime;
      return previous;
    },
    delete(path) {
      if (path.length > MAX_REPO_PATH_BYTES) return -1;
      const hash = hashPath(path);
      if (hash === -1) return -1;
      const slot = findSlot(path, hash);
      if (slot === -1) return -1;
      const id = slotId[slot]!;
      slotId[slot] = TOMBSTONE;
      live--;
      liveBytes -= storedBytes(length[id]!);
      length[id] = 0;
      offset[id] = freeHead + 1;
      freeHead = id;
      return object[id]!;
    },
    size: () => live,
    bytes: () => liveBytes,
    trimArena(bytes) {
      if (bytes < arena.length) moveArena(Math.max(MIN_ARENA_BYTES, liveBytes, bytes));
    },
    forEach(visit) {
      for (let id = 0; id < nextId; id++) if (length[id]! > 0) visit(id);
    },
    arrays: () => arrays,
  };
}

/**
 * The path's hash, once `path` and `size` are known to fit the table (what set() would refuse, refused
 * here without changing anything: the primary's manifest checks a change it defers, manifest-freeze.ts).
 */
export function checkedPathHash(path: string, size: number): number {
  if (!(size >= 0 && size <= MAX_OBJECT_BYTES)) throw new RangeError(`expected an object size under 4 GiB, got ${size}`);
  if (path.length === 0 || path.length > MAX_REPO_PATH_BYTES) {
    throw new TypeError(`expected a repository path of 1 to ${MAX_REPO_PATH_BYTES} bytes, got ${path.length} characters`);
  }
  const hash = hashPath(path);
  if (hash === -1) throw new TypeError(`expected an ASCII repository path, got ${JSON.stringify(path.slice(0, 200))}`);
  return hash;
}
