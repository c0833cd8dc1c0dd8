import { allocArray, homeSlot, nextCapacity, grow, slotCapacityFor, withHeadroom, type TableMemory } from './table-memory.js';

/**
 * The objects a generation references, with how many paths point at each
 * (an object whose count reaches 0 enters the grace window). Keyed by the raw
 * 32 digest bytes; nothing here is a JS object or string per object.
 *
 *   slots  Int32Array, linear probing from homeSlot (any capacity, table-memory.ts)
 *          -1 empty, -2 tombstone, else an object id
 *   ids    digest  Uint32Array, 8 words per id (the raw sha256, little-endian words)
 *          count   Uint8Array, paths referencing the id (0 = free id, on the free list); SATURATED
 *                  for 255 and more, the count then in `overflow` (a Map of the few such ids: an
 *                  object is nearly always one path's, and 3 bytes less an object is 3 MB at a million)
 *
 * The first digest word is the hash (sha256 output is already uniform). Load
 * factor, tombstones included, stays <= 3/4: past it the slots are rebuilt,
 * doubled when live ids fill more than 3/5 of them (the load a presized table starts at), else at the same size
 * (which clears tombstones). Free ids are reused through a list threaded
 * through the free ids' first digest word, so ids stay dense. About 41 bytes
 * an object (32 digest, 1 count, 4-8 slot) plus growth slack.
 */
export interface ObjectTable {
  /** The id of `sha256` with its count raised by one (inserted at 1 when new). */
  acquire(sha256: string): number;
  /** Lowers `id`'s count; returns its sha256 when that was the last reference (the id is then free). */
  release(id: number): string | undefined;
  /** Whether any path references `sha256`. */
  has(sha256: string): boolean;
  /** The lowercase hex digest of a live id, made from the raw bytes (a new 64-char string). */
  hexOf(id: number): string;
  countOf(id: number): number;
  /** Live objects. */
  size(): number;
  /** Every live object's digest (O(capacity): compaction, snapshots and tests only). */
  forEach(visit: (sha256: string) => void): void;
  /**
   * forEach over ids `from` up to `from + limit`: returns the id to go on from, or -1 when done. A caller
   * that pauses between calls must not change the table meanwhile.
   */
  forEachFrom(from: number, limit: number, visit: (sha256: string) => void): number;
  /** The live objects whose first byte is set in `mask` (256 entries): a string made only for those. */
  forEachInShards(mask: Uint8Array, visit: (sha256: string) => void): void;
  /**
   * The digest array now: the same object until the table replaces it (growth), so a
   * writer compares identities to know when readers need the new one (`hexOfDigest`).
   */
  arrays(): ObjectArrays;
}

/** What a reader in another thread needs to turn an object id into its sha256 (shared tables). */
export interface ObjectArrays {
  /** 8 little-endian words per id: the raw sha256. */
  readonly digest: Uint32Array;
}

const EMPTY = -1;
const TOMBSTONE = -2;
/** A count word meaning "255 or more: see overflow". */
const SATURATED = 255;
const WORDS = 8;
const MIN_CAPACITY = 16;
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function createObjectTable(expected = 0, memory: TableMemory = {}): ObjectTable {
  const shared = memory.shared === true;
  let slots = newSlots(slotCapacityFor(expected), shared);
  let used = 0; // live + tombstones in `slots`
  let live = 0;
  let idCapacity = Math.max(MIN_CAPACITY, withHeadroom(expected));
  let digest = allocArray(Uint32Array, idCapacity * WORDS, shared);
  let digestBytes = Buffer.from(digest.buffer);
  let count = allocArray(Uint8Array, idCapacity, shared);
  const overflow = new Map<number, number>();
  let arrays: ObjectArrays = { digest };
  let freeHead = -1;
  let nextId = 0;
  // The key of the current call, parsed once from hex: no allocation per call.
  const key = new Uint32Array(WORDS);
  const keyBytes = Buffer.from(key.buffer);

  function parseKey(sha256: string): boolean {
    return sha256.length === 64 && SHA256_HEX.test(sha256) && keyBytes.write(sha256, 0, 32, 'hex') === 32;
  }

  function matches(id: number): boolean {
    const at = id * WORDS;
    for (let w = 0; w < WORDS; w++) if (digest[at + w] !== key[w]) return false;
    return true;
  }

  /** The slot holding the key, or -1. */
  function find(): number {
    const capacity = slots.length;
    for (let slot = homeSlot(key[0]!, capacity); ; slot = slot + 1 === capacity ? 0 : slot + 1) {
      const id = slots[slot]!;
      if (id === EMPTY) return -1;
      if (id !== TOMBSTONE && matches(id)) return slot;
    }
  }

  function place(id: number): void {
    const capacity = slots.length;
    let slot = homeSlot(digest[id * WORDS]!, capacity);
    while (slots[slot] !== EMPTY) slot = slot + 1 === capacity ? 0 : slot + 1;
    slots[slot] = id;
  }

  function rebuildSlots(capacity: number): void {
    const old = slots;
    slots = newSlots(capacity, shared);
    for (const id of old) if (id >= 0) place(id);
    used = live;
  }

  function newId(): number {
    if (freeHead !== -1) {
      const id = freeHead;
      freeHead = digest[id * WORDS]! - 1;
      return id;
    }
    if (nextId === idCapacity) {
      idCapacity = nextCapacity(idCapacity);
      digest = grow(digest, idCapacity * WORDS);
      digestBytes = Buffer.from(digest.buffer);
      arrays = { digest };
      count = grow(count, idCapacity);
    }
    return nextId++;
  }

  function countOf(id: number): number {
    const word = count[id]!;
    return word === SATURATED ? overflow.get(id)! : word;
  }

  function setCount(id: number, value: number): void {
    if (value < SATURATED) {
      overflow.delete(id);
      count[id] = value;
    } else {
      overflow.set(id, value);
      count[id] = SATURATED;
    }
  }

  function raise(id: number): void {
    if (count[id]! < SATURATED - 1) count[id]!++;
    else setCount(id, countOf(id) + 1);
  }

  return {
    acquire(sha256) {
      if (!parseKey(sha256)) throw new TypeError(`expected a lowercase sha256 hex digest, got ${JSON.stringify(sha256.slice(0, 80))}`);
      const found = find();
      if (found !== -1) {
        const id = slots[found]!;
        raise(id);
        return id;
      }
      if ((used + 1) * 4 > slots.length * 3) rebuildSlots((live + 1) * 5 > slots.length * 3 ? slots.length * 2 : slots.length);
      const id = newId();
      digest.set(key, id * WORDS);
      count[id] = 1;
      const capacity = slots.length;
      let slot = homeSlot(key[0]!, capacity);
      while (slots[slot]! >= 0) slot = slot + 1 === capacity ? 0 : slot + 1;
      if (slots[slot] === EMPTY) used++;
      slots[slot] = id;
      live++;
      return id;
    },
    release(id) {
      const remaining = countOf(id) - 1;
      if (remaining < 0) throw new Error(`object id ${id} released more often than acquired`);
      setCount(id, remaining);
      if (remaining > 0) return undefined;
      const sha256 = digestBytes.toString('hex', id * 32, id * 32 + 32);
      key.set(digest.subarray(id * WORDS, id * WORDS + WORDS));
      slots[find()] = TOMBSTONE;
      live--;
      digest[id * WORDS] = freeHead + 1;
      freeHead = id;
      return sha256;
    },
    has: (sha256) => parseKey(sha256) && find() !== -1,
    hexOf: (id) => hexOfDigest(digestBytes, id),
    countOf,
    size: () => live,
    forEach(visit) {
      for (let id = 0; id < nextId; id++) if (count[id]! > 0) visit(hexOfDigest(digestBytes, id));
    },
    forEachFrom(from, limit, visit) {
      const end = Math.min(nextId, from + limit);
      for (let id = from; id < end; id++) if (count[id]! > 0) visit(hexOfDigest(digestBytes, id));
      return end < nextId ? end : -1;
    },
    forEachInShards(mask, visit) {
      for (let id = 0; id < nextId; id++) {
        if (count[id]! > 0 && mask[digestBytes[id * WORDS * 4]!] === 1) visit(hexOfDigest(digestBytes, id));
      }
    },
    arrays: () => arrays,
  };
}

/** The lowercase hex sha256 of `id`, from the digest array's bytes (an id beyond them gives a short string). */
export function hexOfDigest(digestBytes: Buffer, id: number): string {
  return digestBytes.toString('hex', id * 32, id * 32 + 32);
}

/** A power of two of slots for `entries` keys at a load factor of at most 1/2 (tables that probe with a mask). */
export function capacityFor(entries: number): number {
  let capacity = MIN_CAPACITY;
  while (entries * 2 > capacity) capacity *= 2;
  return capacity;
}

function newSlots(capacity: number, shared: boolean): Int32Array {
  return allocArray(Int32Array, capacity, shared).fill(EMPTY);
}

/** Refuses what acquire() would refuse as a key, without changing anything (manifest-freeze.ts). */
export function checkDigestHex(sha256: string): void {
  if (!(sha256.length === 64 && SHA256_HEX.test(sha256)))
    throw new TypeError(`expected a lowercase sha256 hex digest, got ${JSON.stringify(sha256.slice(0, 80))}`);
}
