import { MAX_REPO_PATH_BYTES } from '../protocol/repo-path.js';
import { homeSlot } from './table-memory.js';

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
  /** -1 empty, -2 tombstone, else an entry id; probed from homeSlot. */
  readonly slotId: Int32Array;
  readonly offset: Uint32Array;
  /** Bytes stored in the arena, with AFFIXED set for a path stored without `p2/` and `.json`; 0 for a free id. */
  readonly length: Uint16Array;
  readonly object: Uint32Array;
  /** Bytes of the raw object (the primary refuses files over 64 MiB; the table, sizes of 4 GiB and more). */
  readonly size: Uint32Array;
  readonly mtime: Float64Array;
  /** ASCII path bytes. */
  readonly arena: Buffer;
  /** Whether the table stores `p2/<name>.json` paths without those affixes (storedLength). */
  readonly affixes: boolean;
}

export const EMPTY_SLOT = -1;
export const TOMBSTONE_SLOT = -2;

/**
 * Composer's metadata paths are nearly all `p2/<vendor>/<package>(~dev).json`. A table with `affixes` stores
 * such a path without its prefix and suffix: 8 of its ~34 bytes, 8 MB of arena at a million paths. Its
 * `length` word then carries AFFIXED beside the bytes stored (paths are at most 512 bytes).
 */
export const AFFIXED = 0x8000;
const PREFIX = 'p2/';
const SUFFIX = '.json';
const PREFIX_BYTES = PREFIX.length;
const AFFIX_BYTES = PREFIX.length + SUFFIX.length;

/** The `length` word `path` has (or would have) in a table: its stored bytes, with AFFIXED when stored without affixes. */
export function storedLength(path: string, affixes: boolean): number {
  return affixes && path.length > AFFIX_BYTES && path.startsWith(PREFIX) && path.endsWith(SUFFIX)
    ? (path.length - AFFIX_BYTES) | AFFIXED
    : path.length;
}

/** The arena bytes `path` takes in a table with or without `affixes`. */
export function storedPathBytes(path: string, affixes: boolean): number {
  return storedBytes(storedLength(path, affixes));
}

/** The arena bytes of a `length` word. */
export function storedBytes(lengthWord: number): number {
  return lengthWord & ~AFFIXED;
}

/** Where in the path its stored bytes start. */
export function storedStart(lengthWord: number): number {
  return (lengthWord & AFFIXED) === 0 ? 0 : PREFIX_BYTES;
}

/** The whole path of stored bytes (a new string). */
export function pathOfStored(arena: Buffer, offset: number, lengthWord: number): string {
  const stored = arena.toString('latin1', offset, offset + storedBytes(lengthWord));
  return (lengthWord & AFFIXED) === 0 ? stored : `${PREFIX}${stored}${SUFFIX}`;
}

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

/** hashPath of the path stored at `arena[offset...]` with `length` word (a slot rebuild: no string made). */
export function hashStoredPath(arena: Uint8Array, offset: number, lengthWord: number): number {
  const affixed = (lengthWord & AFFIXED) !== 0;
  let hash = affixed ? hashAscii(FNV_OFFSET, PREFIX) : FNV_OFFSET;
  for (let i = offset; i < offset + storedBytes(lengthWord); i++) hash = Math.imul(hash ^ arena[i]!, FNV_PRIME);
  return mix32(affixed ? hashAscii(hash, SUFFIX) : hash);
}

function hashAscii(from: number, text: string): number {
  let hash = from;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash;
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
 * tells entries apart by their length, then their bytes, and at the load factor kept (<= 3/4, 3/5 after a
 * build) a lookup visits about two slots.
 */
export function findPathSlot(a: PathArrays, path: string, hash: number): number {
  const { slotId, offset, length, arena } = a;
  const word = storedLength(path, a.affixes);
  const start = storedStart(word);
  const bytes = storedBytes(word);
  const capacity = slotId.length;
  let slot = homeSlot(hash, capacity);
  for (let probes = 0; probes < capacity; probes++, slot = slot + 1 === capacity ? 0 : slot + 1) {
    const id = slotId[slot]!;
    if (id === EMPTY_SLOT) return -1;
    if (id === TOMBSTONE_SLOT || length[id] !== word) continue;
    const at = offset[id]!;
    let i = 0;
    while (i < bytes && arena[at + i] === path.charCodeAt(start + i)) i++;
    if (i === bytes) return slot;
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
