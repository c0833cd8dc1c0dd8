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

type NumberArray = Uint32Array | Int32Array | Uint16Array | Float64Array | BigInt64Array;
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

/** Below this many entries a full table doubles; from it on it grows by a quarter. */
const DOUBLE_BELOW = 1 << 16;

/**
 * The entry capacity after `current` is full. Large tables grow by a quarter, not double: a mirror's
 * index is built at exactly a snapshot's size, so the first path a publish adds after a bootstrap would
 * otherwise double every per-entry array (at a million paths, 62 MB more for one new package). Growth stays
 * geometric, so inserts stay amortized O(1) (each entry is copied at most about five times).
 */
export function nextCapacity(current: number): number {
  return current < DOUBLE_BELOW ? current * 2 : current + Math.ceil(current / 4);
}

/** A longer copy of `array`, in the same kind of memory (shared stays shared). */
export function grow<T extends NumberArray>(array: T, length: number): T {
  const next = allocArray(array.constructor as NumberArrayClass<T>, length, isShared(array));
  (next as { set(source: T): void }).set(array);
  return next;
}
