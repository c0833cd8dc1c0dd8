/**
 * A memo that holds at most about `2 * generationSize` entries: two
 * generations of maps; when the young one is full the old one is dropped
 * whole and the young one becomes old. A hit in the old generation moves the
 * entry back to the young one, so what is asked for often stays, and a
 * repository's long tail (100k paths requested once each) cannot make the
 * memo grow with the repository. O(1) per call, no per-entry bookkeeping,
 * which an LRU list would add to every request of the serving hot path.
 */
export interface BoundedMemo<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): void;
  /** Entries held now (both generations). */
  size(): number;
}

export function createBoundedMemo<K, V>(generationSize: number): BoundedMemo<K, V> {
  if (!(generationSize >= 1)) throw new RangeError(`generationSize must be >= 1, got ${generationSize}`);
  let young = new Map<K, V>();
  let old = new Map<K, V>();
  function set(key: K, value: V): void {
    if (young.size >= generationSize) {
      old = young;
      young = new Map();
    }
    young.set(key, value);
  }
  return {
    get(key) {
      const found = young.get(key);
      if (found !== undefined) return found;
      const aged = old.get(key);
      if (aged !== undefined) {
        old.delete(key);
        set(key, aged);
      }
      return aged;
    },
    set,
    size: () => young.size + old.size,
  };
}
