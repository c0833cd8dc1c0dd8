/**
 * A byte-budgeted cache of object bodies, keyed by `<sha256><variant suffix>`.
 * Keys are content addresses, so an entry is never stale: a new generation
 * simply stops asking for old keys and they age out.
 *
 * Eviction is CLOCK (second chance), an LRU approximation whose hit costs one
 * Map lookup and a flag write: a hit on the serving hot path must not reorder
 * a 100k-entry Map. The Map's insertion order is the clock hand's sweep: the
 * oldest entry is evicted unless it was read since it last came round, in
 * which case it moves to the back with its flag cleared.
 */
export interface HotCache {
  get(key: string): Buffer | undefined;
  set(key: string, body: Buffer): void;
  /** Whether a body of this size is worth caching at all (at most 1/8 of the budget). */
  admits(bytes: number): boolean;
  readonly bytes: number;
  readonly size: number;
}

interface Slot {
  body: Buffer;
  referenced: boolean;
}

export function createHotCache(budgetBytes: number): HotCache {
  const entries = new Map<string, Slot>();
  let bytes = 0;
  const maxEntryBytes = Math.floor(budgetBytes / 8);

  function evict(): void {
    for (const [key, slot] of entries) {
      if (bytes <= budgetBytes) return;
      entries.delete(key);
      if (slot.referenced) {
        // Second chance; a moved entry comes round again at the end of this sweep, then unflagged.
        slot.referenced = false;
        entries.set(key, slot);
      } else {
        bytes -= slot.body.length;
      }
    }
  }

  return {
    get(key) {
      const slot = entries.get(key);
      if (slot === undefined) return undefined;
      slot.referenced = true;
      return slot.body;
    },
    set(key, body) {
      if (body.length > maxEntryBytes) return;
      const old = entries.get(key);
      if (old !== undefined) {
        bytes -= old.body.length;
        entries.delete(key);
      }
      entries.set(key, { body, referenced: false });
      bytes += body.length;
      if (bytes > budgetBytes) evict();
    },
    admits: (size) => size <= maxEntryBytes,
    get bytes() {
      return bytes;
    },
    get size() {
      return entries.size;
    },
  };
}
