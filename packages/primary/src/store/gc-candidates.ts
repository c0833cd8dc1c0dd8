import { shardIndexOf } from './gc-roots.js';

/**
 * The object GC's candidates: sha256 -> when a scan first saw it unreferenced (ms), kept by shard. A run
 * scans one shard at a time and forgets the candidates of that shard that are gone from disk: with one map,
 * each of a pass's 256 steps walked every candidate (up to maxCandidates, 500,000) to find its shard's.
 */
export interface GcCandidates {
  readonly size: number;
  get(sha256: string): number | undefined;
  has(sha256: string): boolean;
  /** Starts `sha256`'s clock at `sinceMs` (it must not be a candidate yet). */
  track(sha256: string, sinceMs: number): void;
  forget(sha256: string): void;
  /** The candidates of shard `index` (first byte of the hash); forgetting one while iterating is allowed. */
  ofShard(index: number): ReadonlyMap<string, number>;
}

export function createGcCandidates(): GcCandidates {
  const byShard = Array.from({ length: 256 }, () => new Map<string, number>());
  let size = 0;
  const mapOf = (sha256: string): Map<string, number> => byShard[shardIndexOf(sha256)]!;
  return {
    get size() {
      return size;
    },
    get: (sha256) => mapOf(sha256).get(sha256),
    has: (sha256) => mapOf(sha256).has(sha256),
    track(sha256, sinceMs) {
      const map = mapOf(sha256);
      if (!map.has(sha256)) size++;
      map.set(sha256, sinceMs);
    },
    forget(sha256) {
      if (mapOf(sha256).delete(sha256)) size--;
    },
    ofShard: (index) => byShard[index]!,
  };
}
