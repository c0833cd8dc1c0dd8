import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Journal } from '../journal/journal.js';
import type { Manifest } from '../journal/manifest.js';
import { listSnapshotFiles } from '../journal/snapshots.js';
import { hexValue, readSnapshotShas, type PackedShas } from './snapshot-shas.js';

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
 * as 256 buckets of packed 32-byte hashes (3.2 MB per 100k paths, not 100k
 * strings): a run decodes only its shards' buckets.
 */
export type ShardMask = Uint8Array;

export interface GcRoots {
  /** Roots whose shard is set in `mask` (index = first byte of the hash). */
  collect(mask: ShardMask): Promise<Set<string>>;
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
      const roots = new Set<string>();
      for (const packed of await snapshotRoots()) {
        packed.forEach((bucket, shard) => {
          if (mask[shard] !== 1) return;
          for (let offset = 0; offset < bucket.length; offset += 32) roots.add(bucket.toString('hex', offset, offset + 32));
        });
      }
      // Synchronous from here on: the manifest and the window are read at one instant.
      // From the manifest's object table where it has one: at 1M paths, an entry and its sha256 string for every
      // path made a run's garbage.
      if (manifest.objectsInShards !== undefined) manifest.objectsInShards(mask, (sha256) => roots.add(sha256));
      else for (const entry of manifest.values()) if (mask[shardIndexOf(entry.sha256)] === 1) roots.add(entry.sha256);
      journal.forEachKeptObject(mask, (sha256) => roots.add(sha256));
      return roots;
    },
  };
}
