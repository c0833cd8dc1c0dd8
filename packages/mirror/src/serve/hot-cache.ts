import type { Variant } from '@metasync/store';
import { MAX_SYNC_READ_BYTES } from './read-whole-sync.js';

/**
 * A byte-budgeted cache of object bodies, keyed by (sha256, variant). Keys are
 * content addresses, so an entry is never stale: a new generation simply
 * stops asking for old keys and they age out.
 *
 * Bodies live in segments (budget / 8, at most 1 MiB each), not
 * in a Buffer of their own: a miss reads the file straight into the current
 * segment (`reserve`, then `set`), so a long tail of misses allocates no
 * memory outside the heap per request. A Buffer per body did: each one was
 * external memory that only a full GC returns, and at 100k paths under a
 * uniform load those GCs were the serving tail latency.
 *
 *   segments:  [oldest] [ ... ] [current: filled ─▶ free]
 *   full?      a fresh segment takes the oldest's bodies that were read since
 *              they were filed (second chance, flag cleared), then the oldest
 *              is dropped whole
 *
 * A dropped segment is never written again: a response still being sent from
 * it keeps it alive until its bytes are out, and the GC frees it after. So a
 * client that stops reading pins a whole segment with one small body: 1 MiB
 * segments keep that at what one stuck response could already hold (a body
 * read whole is at most 1 MiB, read-whole-sync.ts), and the pipelining and
 * socket-inactivity limits bound how many and how long.
 * A hit is one Map lookup (keyed by the entry's own sha256 string, whose hash
 * V8 keeps) and a flag write.
 *
 * The budget covers each body's bookkeeping too (its Slot, view, key string and
 * Map entry on the heap): at a million paths a 64 MiB cache held 59k gzip bodies
 * and about 16 MB of bookkeeping outside its segments. So many small bodies leave
 * room for fewer segments.
 */
export interface HotCache {
  get(sha256: string, variant: Variant): Buffer | undefined;
  /**
   * Room for a body of `bytes`, to read into; undefined when the cache does
   * not take bodies that large. Nothing is cached until `set` files it.
   */
  reserve(bytes: number): Buffer | undefined;
  /** Files a body: the buffer `reserve` just gave (no copy) or any other (copied in). */
  set(sha256: string, variant: Variant, body: Buffer): void;
  /** Whether a body of this size is cached at all (at most one segment). */
  admits(bytes: number): boolean;
  /** Bytes of bodies held. */
  readonly bytes: number;
  /** Bodies held. */
  readonly size: number;
}

interface Slot {
  sha256: string;
  variants: Map<string, Slot>;
  view: Buffer;
  referenced: boolean;
}

interface Segment {
  memory: ArrayBuffer;
  used: number;
  slots: Slot[];
}

const MAX_SEGMENT_BYTES = MAX_SYNC_READ_BYTES;

/**
 * Heap a filed body costs beside its bytes: ~200 B of Slot, Buffer view and Map entry, and its 64-char key
 * (~80 B), which would otherwise die with the request (measured with 50,000 1.1 KB bodies: 201 B a body
 * without the keys).
 */
export const BOOKKEEPING_BYTES_PER_BODY = 280;

export function createHotCache(budgetBytes: number, options: { bookkeepingBytesPerBody?: number } = {}): HotCache {
  const perBody = options.bookkeepingBytesPerBody ?? BOOKKEEPING_BYTES_PER_BODY;
  const segmentBytes = Math.min(MAX_SEGMENT_BYTES, Math.floor(budgetBytes / 8));
  const maxSegments = segmentBytes > 0 ? Math.floor(budgetBytes / segmentBytes) : 0;
  const maps: Record<Variant, Map<string, Slot>> = { identity: new Map(), gzip: new Map(), br: new Map() };
  const segments: Segment[] = [];
  let bytes = 0;
  let size = 0;
  /** The view `reserve` last handed out, so `set` can file it without a copy. */
  let reserved: Buffer | undefined;

  function newSegment(): Segment {
    const segment: Segment = { memory: new ArrayBuffer(segmentBytes), used: 0, slots: [] };
    segments.push(segment);
    return segment;
  }

  /** A view of the segment's free space (Buffer.from on the ArrayBuffer: no species lookup, unlike subarray). */
  function take(segment: Segment, length: number): Buffer {
    return Buffer.from(segment.memory, segment.used, length);
  }

  /** Whether `more` segments and `bodies` more bodies, with the bodies' bookkeeping, would exceed the budget. */
  function overBudget(more: number, bodies = 0): boolean {
    return (segments.length + more) * segmentBytes + (size + bodies) * perBody > budgetBytes;
  }

  /**
   * Starts a fresh segment, carrying over the oldest's second-chance bodies when the budget is reached.
   * Bookkeeping that has grown past the budget (smaller bodies than before) drops the oldest segments whole.
   */
  function rotate(): Segment {
    while (segments.length > 1 && overBudget(0)) dropSegment(segments.shift()!, undefined);
    if (segments.length < maxSegments && !overBudget(1)) return newSegment();
    const oldest = segments.shift()!;
    const fresh = newSegment();
    dropSegment(oldest, fresh);
    return fresh;
  }

  /** Evicts a segment's bodies, moving those read since they were filed into `fresh` while they fit. */
  function dropSegment(oldest: Segment, fresh: Segment | undefined): void {
    for (const slot of oldest.slots) {
      if (slot.variants.get(slot.sha256) !== slot) continue;
      const length = slot.view.length;
      if (fresh !== undefined && slot.referenced && fresh.used + length <= segmentBytes) {
        const moved = take(fresh, length);
        slot.view.copy(moved);
        fresh.used += length;
        slot.view = moved;
        slot.referenced = false;
        fresh.slots.push(slot);
        continue;
      }
      slot.variants.delete(slot.sha256);
      bytes -= length;
      size -= 1;
    }
  }

  function reserve(length: number): Buffer | undefined {
    if (length > segmentBytes || maxSegments === 0) return undefined;
    let current = segments[segments.length - 1];
    // Bounded: a rotation either frees room or clears the flags that kept bodies, so the next one frees it.
    // A body's bookkeeping counts when it is filed, so a segment of small bodies is closed before the budget is.
    for (
      let rotations = 0;
      current === undefined || current.used + length > segmentBytes || (current.slots.length > 0 && overBudget(0, 1));
      rotations++
    ) {
      if (rotations > maxSegments + 1) return undefined;
      current = rotate();
    }
    reserved = take(current, length);
    return reserved;
  }

  return {
    get(sha256, variant) {
      const slot = maps[variant].get(sha256);
      if (slot === undefined) return undefined;
      slot.referenced = true;
      return slot.view;
    },
    reserve,
    set(sha256, variant, body) {
      let view = body;
      if (body !== reserved || body.length === 0) {
        const room = reserve(body.length);
        if (room === undefined) return;
        body.copy(room);
        view = room;
      }
      reserved = undefined;
      const current = segments[segments.length - 1]!;
      current.used += view.length;
      const variants = maps[variant];
      const old = variants.get(sha256);
      if (old !== undefined) {
        bytes -= old.view.length;
        size -= 1;
      }
      const slot: Slot = { sha256, variants, view, referenced: false };
      variants.set(sha256, slot);
      current.slots.push(slot);
      bytes += view.length;
      size += 1;
    },
    admits: (length) => maxSegments > 0 && length <= segmentBytes,
    get bytes() {
      return bytes;
    },
    get size() {
      return size;
    },
  };
}
