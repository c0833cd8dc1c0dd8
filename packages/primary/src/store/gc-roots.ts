import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Journal } from '../journal/journal.js';
import type { Manifest } from '../journal/manifest.js';
import { listSnapshotFiles } from '../journal/snapshots.js';
import { readSnapshotShas, type PackedShas } from './snapshot-shas.js';

/**
 * The object GC's roots: what may still ask for an object by hash.
 *
 *   the head manifest           every live path (the repository itself)
 *   the journal window          generations `changes?since=` still answers: a mirror catching up in
 *                               chunks applies intermediate generations and fetches their objects
 *   snapshot files on disk      until pruneSnapshots drops them (replay base, operator restores)
 *
 * One run looks only at the shards it scans (a 256-entry mask). Snapshot files
 * are read in chunks by each run (snapshot-shas.ts), keeping only the run's
 * shards' hashes, packed (32 bytes a hash, not a string).
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

function hexValue(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}

export function createGcRoots(options: { manifest: Manifest; journal: Journal; snapshotDir: string }): GcRoots {
  const { manifest, journal } = options;
  /**
   * The masked shards' hashes of every snapshot file, read again each run: keeping every file's packed hashes
   * held 64 MB at a million paths (two files) for the primary's whole life, and a run reads the files from the
   * page cache in about a second.
   */
  async function snapshotRoots(mask: ShardMask): Promise<PackedShas[]> {
    const packed: PackedShas[] = [];
    for (const file of await listSnapshotFiles(options.snapshotDir)) {
      const read = await readSnapshotShas(file.path, { shards: mask });
      // Pruned since the listing: no longer a root.
      if (read !== undefined) packed.push(read);
      await nextTurn();
    }
    return packed;
  }

  return {
    async collect(mask) {
      const roots = new Set<string>();
      for (const packed of await snapshotRoots(mask)) {
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
      for (const generation of journal.generationsAfter(journal.oldestSeq())) {
        for (const entry of generation.entries) {
          if ('sha256' in entry && mask[shardIndexOf(entry.sha256)] === 1) roots.add(entry.sha256);
        }
      }
      return roots;
    },
  };
}
