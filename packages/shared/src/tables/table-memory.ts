/**
 * Where a table's arrays live: ordinary ArrayBuffers (one thread), or
 * SharedArrayBuffers so that other threads read the same bytes without a copy
 * (the mirror's serving workers, packages/mirror/src/index/index-reader.ts).
 * A shared table is written by one thread only; readers guard their reads
 * themselves (a seqlock): nothing here synchronises.
 */
export interface TableMemory {
  /** Back every array with a SharedArrayBuffer (growth keeps it shared). */
  shared?: boolean;
}

type NumberArray = Uint8Array | Uint32Array | Int32Array | Uint16Array | Float64Array | BigInt64Array;
type NumberArrayClass<T extends NumberArray> = { new (buffer: ArrayBufferLike): T; new (length: number): T; BYTES_PER_ELEMENT: number };

export function allocArray<T extends NumberArray>(type: NumberArrayClass<T>, length: number, shared: boolean): T {
  return shared ? new type(new SharedArrayBuffer(length * type.BYTES_PER_ELEMENT)) : new type(length);
}

/** Zero-filled bytes; a Buffer view of a SharedArrayBuffer when shared. */
export function allocBytes(bytes: number, shared: boolean): Buffer {
  return shared ? Buffer.from(new SharedArrayBuffer(bytes)) : Buffer.alloc(bytes);
}

export function isShared(array: ArrayBufferView): boolean {
  return array.buffer instanceof SharedArrayBuffer;
}

/** Below this many entries a full table doubles; from it on it grows by an eighth. */
const DOUBLE_BELOW = 1 << 16;

/**
 * The entry capacity after `current` is full. Large tables grow by an eighth, not double: a mirror's
 * index is built at a snapshot's size, and at a million paths a quarter more of every per-entry array
 * (path and object tables) was 16 MB held for one new package. Growth stays geometric, so inserts stay
 * amortized O(1) (each entry is copied about nine times at most).
 */
export function nextCapacity(current: number): number {
  return current < DOUBLE_BELOW ? current * 2 : current + Math.ceil(current / 8);
}

/**
 * The entry capacity a table built for `expected` entries starts with: a sixty-fourth more (16k paths at a
 * million, under 1 MB), so the publishes after a bootstrap or a restart add paths without growing anything.
 */
export function withHeadroom(expected: number): number {
  return expected + Math.ceil(expected / 64);
}

/** A longer copy of `array`, in the same kind of memory (shared stays shared). */
export function grow<T extends NumberArray>(array: T, length: number): T {
  const next = allocArray(array.constructor as NumberArrayClass<T>, length, isShared(array));
  (next as { set(source: T): void }).set(array);
  return next;
}

/** The fewest slots a table has. */
const MIN_SLOTS = 16;

/**
 * Slots for `entries` keys at a load factor of 3/5 (presizing for a snapshot or a base). Any count, not a
 * power of two: at a million entries a power of two is 2^21, a load of 0.48 and 1.7 MB more a table.
 */
export function slotCapacityFor(entries: number): number {
  return Math.max(MIN_SLOTS, Math.ceil((entries * 5) / 3));
}

/** The first slot to probe for a uniform 32-bit `hash` among `capacity` slots (probing then goes up and wraps). */
export function homeSlot(hash: number, capacity: number): number {
  return (hash >>> 0) % capacity;
}
