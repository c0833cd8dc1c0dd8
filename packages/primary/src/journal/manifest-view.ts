import type { ManifestEntry, SortedManifest } from './manifest.js';
import type { Origin } from './record.js';
import type { RawSnapshotEntry } from './snapshot-body.js';

/**
 * The compact manifest's tables as plain arrays (manifest.ts), in shared memory: read at once by a sorted
 * view here, or by the snapshot signing thread while the manifest is frozen and its changes wait beside
 * them (manifest-freeze.ts, snapshot-signer.ts).
 */
export interface ManifestTables {
  /** Per entry id: where its path is in `arena` and how long (0 for a free id), its object id, size and mtime, its origin's code. */
  offset: Uint32Array;
  length: Uint16Array;
  object: Uint32Array;
  size: Uint32Array;
  mtime: Float64Array;
  originCodes: Uint8Array;
  /** ASCII path bytes. */
  arena: Uint8Array;
  /** 32 raw sha256 bytes per object id. */
  digest: Uint8Array;
  /** Origin by code. */
  origins: readonly Origin[];
}

/** The ids of live entries (a free id has length 0), in id order. */
export function liveIds(tables: ManifestTables): Uint32Array {
  const { length } = tables;
  let count = 0;
  for (let id = 0; id < length.length; id++) if (length[id]! > 0) count++;
  const ids = new Uint32Array(count);
  for (let id = 0, at = 0; id < length.length; id++) if (length[id]! > 0) ids[at++] = id;
  return ids;
}

/** The entries in path order, read by position. */
export function sortedView(tables: ManifestTables): SortedManifest {
  const { offset, length, object, size, mtime, originCodes, arena, digest, origins } = tables;
  const ids = liveIds(tables);
  // Byte order of ASCII paths is the code-unit order of [...keys()].sort(): the same snapshot, 4 bytes a path.
  // A byte loop, not Buffer.compare: a native call per comparison cost twice the sort of the strings.
  ids.sort((a, b) => {
    const endA = offset[a]! + length[a]!;
    const endB = offset[b]! + length[b]!;
    for (let i = offset[a]!, j = offset[b]!; i < endA && j < endB; i++, j++) {
      const difference = arena[i]! - arena[j]!;
      if (difference !== 0) return difference;
    }
    return length[a]! - length[b]!;
  });
  const text = Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
  const digests = Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength);
  const raw: RawSnapshotEntry = { bytes: arena, pathStart: 0, pathEnd: 0, digest, digestStart: 0, size: 0, mtime: 0 };
  const entryOf = (id: number): ManifestEntry => ({
    sha256: digests.toString('hex', object[id]! * 32, object[id]! * 32 + 32),
    size: size[id]!,
    mtime: mtime[id]!,
    origin: origins[originCodes[id]!]!,
  });
  return {
    size: ids.length,
    pathAt: (index) => text.toString('latin1', offset[ids[index]!]!, offset[ids[index]!]! + length[ids[index]!]!),
    entryAt: (index) => entryOf(ids[index]!),
    originAt: (index) => origins[originCodes[ids[index]!]!]!,
    rawAt(index) {
      const id = ids[index]!;
      raw.pathStart = offset[id]!;
      raw.pathEnd = offset[id]! + length[id]!;
      raw.digestStart = object[id]! * 32;
      raw.size = size[id]!;
      raw.mtime = mtime[id]!;
      return raw;
    },
  };
}
