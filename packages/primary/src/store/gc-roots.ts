import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Journal } from '../journal/journal.js';
import type { Manifest } from '../journal/manifest.js';
import { listSnapshotFiles } from '../journal/snapshots.js';
import { forEachKeptSha, hexValue, KEPT_SHA_HEX_CHARS, readSnapshotShas, type PackedShas } from './snapshot-shas.js';

/**
 * The object GC's roots: what may still ask for an object by hash.
 *
 *   the head manifest           every live path (the repository itself)
 *   the journal window          generations `changes?since=` still answers: a mirror catching up in
 *                               chunks applies intermediate generations and fetches their objects
 *   snapshot files on disk      until pruneSnapshots drops them (replay base, operator restores)
 *
 * One run looks only at the shards it scans (a 256-entry mask). Snapshot files
 * are immutable, so each is read once, in chunks (snapshot-shas.ts), and kept
 * as 256 buckets of each hash's leading 9 bytes (0.8 MB per 100k paths, not
 * 100k strings): a run decodes only its shards' buckets, and counts an object
 * whose hash starts with one of them as a root.
 */
export type ShardMask = Uint8Array;

export interface GcRoots {
  /** Roots whose shard is set in `mask` (index = first byte of the hash). */
  collect(mask: ShardMask): Promise<RootSet>;
}

/** What a run asks of its roots: whether a hash (of a masked shard) is one. */
export interface RootSet {
  has(sha256: string): boolean;
}

/** The shard index (first byte) of a lowercase hex sha256, without allocating. */
export function shardIndexOf(sha256: string): number {
  return (hexValue(sha256.charCodeAt(0)) << 4) | hexValue(sha256.charCodeAt(1));
}

export function createGcRoots(options: { manifest: Manifest; journal: Journal; snapshotDir: string }): GcRoots {
  const { manifest, journal } = options;
  /** Snapshot file path -> its hashes by shard. */
  let snapshotCache = new Map<string, PackedShas>();

  async function snapshotRoots(): Promise<PackedShas[]> {
    const files = await listSnapshotFiles(options.snapshotDir);
    const next = new Map<string, PackedShas>();
    for (const file of files) {
      let packed = snapshotCache.get(file.path);
      if (packed === undefined) {
        const read = await readSnapshotShas(file.path);
        // Pruned since the listing: no longer a root.
        if (read === undefined) continue;
        packed = read;
        await nextTurn();
      }
      next.set(file.path, packed);
    }
    snapshotCache = next;
    return [...next.values()];
  }

  return {
    async collect(mask) {
      const snapshotPrefixes = new Set<string>();
      for (const packed of await snapshotRoots()) {
        packed.forEach((bucket, shard) => {
          if (mask[shard] === 1) forEachKeptSha(bucket, shard, (prefix) => snapshotPrefixes.add(prefix));
        });
      }
      const roots = new Set<string>();
      // Synchronous from here on: the journal window is read at one instant.
      journal.forEachKeptObject(mask, (sha256) => roots.add(sha256));
      const { hasObject } = manifest;
      const inSnapshots = (sha256: string) => snapshotPrefixes.has(sha256.slice(0, KEPT_SHA_HEX_CHARS));
      // The head manifest is asked at each check, in its own table: a string per object of the scanned shards
      // made most of a million-path run's garbage. Asked later than the window is read, it can only answer for a
      // later moment, and a path that lets go of an object in between leaves it unreferenced from then on: the
      // run's clock for it starts after that commit (gc.ts reads the time after each turn it gives up).
      if (hasObject !== undefined) return { has: (sha256) => hasObject(sha256) || roots.has(sha256) || inSnapshots(sha256) };
      // A Map manifest (tests) is read here, at the same instant as the window.
      for (const entry of manifest.values()) if (mask[shardIndexOf(entry.sha256)] === 1) roots.add(entry.sha256);
      return { has: (sha256) => roots.has(sha256) || inSnapshots(sha256) };
    },
  };
}
