import { readFile } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { hasErrno, metasyncError } from '@metasync/shared';
import { decodeRecords } from '@metasync/shared/fs';
import type { Journal } from '../journal/journal.js';
import type { Manifest } from '../journal/manifest.js';
import { listSnapshotFiles } from '../journal/snapshots.js';

/**
 * The object GC's roots: what may still ask for an object by hash.
 *
 *   the head manifest           every live path (the repository itself)
 *   the journal window          generations `changes?since=` still answers: a mirror catching up in
 *                               chunks applies intermediate generations and fetches their objects
 *   snapshot files on disk      until pruneSnapshots drops them (replay base, operator restores)
 *
 * One run looks only at the shards it scans (a 256-entry mask). Snapshot files
 * are immutable, so each is read once and kept as 256 buckets of packed
 * 32-byte hashes (3.2 MB per 100k paths, not 100k strings): a run decodes only
 * its shards' buckets.
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

type PackedShas = Buffer[];

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
      for (const generation of journal.generationsAfter(journal.oldestSeq())) {
        for (const entry of generation.entries) {
          if ('sha256' in entry && mask[shardIndexOf(entry.sha256)] === 1) roots.add(entry.sha256);
        }
      }
      return roots;
    },
  };
}

const SHA_KEY = Buffer.from('"sha256":"');
const YIELD_EVERY_ENTRIES = 8_192;

/**
 * The hashes a snapshot file names, bucketed by shard; undefined when the file is gone.
 * Found by the `"sha256":"` key rather than JSON.parse (a 100k-path snapshot is ~15 MB):
 * inside a JSON string every quote is escaped, so the key cannot match inside a path.
 */
async function readSnapshotShas(path: string): Promise<PackedShas | undefined> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const body = decodeRecords(data).records[0];
  if (body === undefined) throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${path} has no snapshot record`, { path });
  // Two passes over the bytes (count per shard, then fill), so no string is made per hash: at 1M paths the
  // strings were ~80 MB beside the file.
  const counts = new Uint32Array(256);
  for (const at of shaOffsets(body)) {
    if (!isHexAt(body, at)) {
      throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${path} has a malformed sha256 at byte ${at}`, {
        path,
        offset: at,
      });
    }
    counts[hexByteAt(body, at)]!++;
  }
  const buckets = Array.from(counts, (count) => Buffer.allocUnsafe(count * 32));
  const filled = new Uint32Array(256);
  let found = 0;
  for (const at of shaOffsets(body)) {
    // Publishes keep flowing while a large snapshot is read.
    if (++found % YIELD_EVERY_ENTRIES === 0) await nextTurn();
    const shard = hexByteAt(body, at);
    const bucket = buckets[shard]!;
    const into = filled[shard]! * 32;
    for (let byte = 0; byte < 32; byte++) bucket[into + byte] = hexByteAt(body, at + byte * 2);
    filled[shard]!++;
  }
  return buckets;
}

/** Where each hash named in the body starts (just after its `"sha256":"` key). */
function* shaOffsets(body: Buffer): Generator<number> {
  for (let at = body.indexOf(SHA_KEY); at !== -1; at = body.indexOf(SHA_KEY, at + SHA_KEY.length + 64)) yield at + SHA_KEY.length;
}

/** 64 lowercase hex digits at `at`. */
function isHexAt(body: Buffer, at: number): boolean {
  if (at + 64 > body.length) return false;
  for (let i = at; i < at + 64; i++) {
    const code = body[i]!;
    if (!((code >= 48 && code <= 57) || (code >= 97 && code <= 102))) return false;
  }
  return true;
}

/** The byte the two hex digits at `at` spell: the hash's shard. */
function hexByteAt(body: Buffer, at: number): number {
  return (hexValue(body[at]!) << 4) | hexValue(body[at + 1]!);
}
