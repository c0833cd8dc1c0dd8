/**
 * A byte-budgeted cache of object bodies, keyed by `<sha256><variant suffix>`.
 * Keys are content addresses, so an entry is never stale: a new generation
 * simply stops asking for old keys and they age out.
 *
 * Eviction is CLOCK (second chance), an LRU approximation whose hit costs one
 * Map lookup and a flag write: a hit on the serving hot path must not reorder
 * a 100k-entry Map. The hand sweeps the Map in insertion order: an entry is
 * evicted unless it was read since the hand last passed it, in which case it
 * moves to the back with its flag cleared (FIFO with second chance).
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

  /**
   * The clock hand: one live Map iterator, kept across calls (Map iterators follow inserts and
   * deletes). A fresh iterator per eviction would walk every deleted slot at the front of the
   * Map's table again, on every miss.
   */
  let hand = entries.entries();

  function evict(): void {
    while (bytes > budgetBytes) {
      let step = hand.next();
      if (step.done === true) {
        hand = entries.entries();
        step = hand.next();
        if (step.done === true) return;
      }
      const [key, slot] = step.value;
      entries.delete(key);
      if (slot.referenced) {
        // Second chance: back of the line with its flag cleared (the hand reaches it again after the others).
        slot.referenced = false;
        entries.set(key, slot);
        continue;
      }
      bytes -= slot.body.length;
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
