/**
 * A byte-budgeted LRU of object bodies, keyed by `<sha256><variant suffix>`.
 * Keys are content addresses, so an entry is never stale: a new generation
 * simply stops asking for old keys and they age out. A Map keeps insertion
 * order, so "touch" = delete + set and the oldest key is the first one.
 */
export interface HotCache {
  get(key: string): Buffer | undefined;
  set(key: string, body: Buffer): void;
  /** Whether a body of this size is worth caching at all (at most 1/8 of the budget). */
  admits(bytes: number): boolean;
  readonly bytes: number;
  readonly size: number;
}

export function createHotCache(budgetBytes: number): HotCache {
  const entries = new Map<string, Buffer>();
  let bytes = 0;
  const maxEntryBytes = Math.floor(budgetBytes / 8);
  return {
    get(key) {
      const body = entries.get(key);
      if (body !== undefined) {
        entries.delete(key);
        entries.set(key, body);
      }
      return body;
    },
    set(key, body) {
      if (body.length > maxEntryBytes) return;
      const old = entries.get(key);
      if (old !== undefined) {
        bytes -= old.length;
        entries.delete(key);
      }
      entries.set(key, body);
      bytes += body.length;
      for (const [oldest, oldBody] of entries) {
        if (bytes <= budgetBytes) break;
        entries.delete(oldest);
        bytes -= oldBody.length;
      }
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
