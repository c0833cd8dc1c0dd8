import { MAX_REPO_PATH_BYTES } from '../protocol/repo-path.js';

/**
 * The arrays of a path table that a lookup reads (path-table.ts draws them),
 * and the lookup itself: one implementation for the table's own thread and
 * for readers in other threads holding the same shared arrays.
 *
 * A reader in another thread may run while the writer changes the arrays
 * (it detects that afterwards and retries: the mirror's index-reader.ts), so
 * the probe must end and must not throw on any bytes: it stops after
 * `capacity` slots, and an id beyond the entry arrays reads `undefined`,
 * which matches nothing.
 */
export interface PathArrays {
  /** -1 empty, -2 tombstone, else an entry id; capacity a power of two. */
  readonly slotId: Int32Array;
  readonly offset: Uint32Array;
  /** Path bytes, 0 for a free id. */
  readonly length: Uint16Array;
  readonly object: Uint32Array;
  /** Bytes of the raw object (the primary refuses files over 64 MiB; the table, sizes of 4 GiB and more). */
  readonly size: Uint32Array;
  readonly mtime: Float64Array;
  /** ASCII path bytes. */
  readonly arena: Buffer;
}

export const EMPTY_SLOT = -1;
export const TOMBSTONE_SLOT = -2;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over char codes, then murmur3's finalizer so the low bits (the probe start) mix well; -1 when not ASCII. */
export function hashPath(path: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < path.length; i++) {
    const code = path.charCodeAt(i);
    if (code > 0x7f) return -1;
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return mix32(hash);
}

/** hashPath of the ASCII path stored at `bytes[offset, offset + length)` (a slot rebuild: no string made). */
export function hashPathBytes(bytes: Uint8Array, offset: number, length: number): number {
  let hash = FNV_OFFSET;
  for (let i = offset; i < offset + length; i++) hash = Math.imul(hash ^ bytes[i]!, FNV_PRIME);
  return mix32(hash);
}

/** murmur3's 32-bit finalizer: every input bit reaches the low bits (which pick a slot); unsigned. */
export function mix32(value: number): number {
  let hash = value ^ (value >>> 16);
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  return (hash ^ (hash >>> 16)) >>> 0;
}

/**
 * The slot holding `path` (its `hashPath` given), or -1. Slots keep no hash (8 MB at a million paths): a probe
 * tells entries apart by their length, then their bytes, and at the load factor kept (<= 3/4, about 1/2 after
 * a build) a lookup visits about two slots.
 */
export function findPathSlot(a: PathArrays, path: string, hash: number): number {
  const { slotId, offset, length, arena } = a;
  const mask = slotId.length - 1;
  let slot = hash & mask;
  for (let probes = 0; probes <= mask; probes++, slot = (slot + 1) & mask) {
    const id = slotId[slot]!;
    if (id === EMPTY_SLOT) return -1;
    if (id === TOMBSTONE_SLOT || length[id] !== path.length) continue;
    const at = offset[id]!;
    let i = 0;
    while (i < path.length && arena[at + i] === path.charCodeAt(i)) i++;
    if (i === path.length) return slot;
  }
  return -1;
}

/** The entry id of `path`, or -1 (a non-ASCII or over-long path is never present). */
export function findPathId(a: PathArrays, path: string): number {
  if (path.length > MAX_REPO_PATH_BYTES) return -1;
  const hash = hashPath(path);
  if (hash === -1) return -1;
  const slot = findPathSlot(a, path, hash);
  return slot === -1 ? -1 : a.slotId[slot]!;
}
