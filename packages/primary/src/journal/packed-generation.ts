import { isSha256Hex, MAX_OBJECT_BYTES, MAX_REPO_PATH_BYTES } from '@metasync/shared';
import type { JournalEntry, JournalGeneration, Origin } from './record.js';

/**
 * One generation's entries packed into one Buffer, for the history the journal keeps in memory: its 200,000
 * entries were that many objects with a path and a sha256 string each (about 235 bytes an entry, ~47 MB of a
 * million-path primary's heap). Packed, an entry is its path's bytes plus about 40 (15 MB).
 *
 *   per entry: flags u8 | path length u16 | path (utf8) | [sha256, 32 raw bytes | size u32] | [mtime f64]
 *   flags: bit 0 deleted, bits 1-2 origin, bit 3 an mtime of its own (every entry a publisher writes has the
 *   generation's time: only a journal written otherwise carries one)
 */
export interface PackedGeneration {
  seq: number;
  time: number;
  count: number;
  bytes: Buffer;
}

const ORIGINS: readonly Origin[] = ['watch', 'api', 'upstream', 'pins'];
const DELETED = 0x1;
const OWN_MTIME = 0x8;
const ORIGIN_SHIFT = 1;

export function packGeneration(generation: JournalGeneration): PackedGeneration {
  let length = 0;
  for (const entry of generation.entries) length += entryBytes(entry, generation.time);
  const bytes = Buffer.allocUnsafeSlow(length);
  let at = 0;
  for (const entry of generation.entries) {
    const deleted = 'deleted' in entry;
    const ownMtime = entry.mtime !== generation.time;
    bytes[at] = (deleted ? DELETED : 0) | (originCode(entry.origin) << ORIGIN_SHIFT) | (ownMtime ? OWN_MTIME : 0);
    const pathBytes = bytes.write(entry.path, at + 3, 'utf8');
    if (pathBytes > MAX_REPO_PATH_BYTES) throw new RangeError(`journal path of ${pathBytes} bytes: ${entry.path.slice(0, 80)}`);
    bytes.writeUInt16BE(pathBytes, at + 1);
    at += 3 + pathBytes;
    if (!deleted) {
      if (!isSha256Hex(entry.sha256)) throw new RangeError(`journal sha256 ${entry.sha256} is not 64 lower-case hex digits`);
      if (!Number.isInteger(entry.size) || entry.size < 0 || entry.size > MAX_OBJECT_BYTES) {
        throw new RangeError(`journal entry size ${entry.size} is not an integer in 0..${MAX_OBJECT_BYTES}`);
      }
      bytes.write(entry.sha256, at, 'hex');
      bytes.writeUInt32BE(entry.size, at + 32);
      at += 36;
    }
    if (ownMtime) at = bytes.writeDoubleBE(entry.mtime, at);
  }
  return { seq: generation.seq, time: generation.time, count: generation.entries.length, bytes };
}

export function unpackGeneration(packed: PackedGeneration): JournalGeneration {
  const { bytes, time } = packed;
  const entries: JournalEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    const flags = bytes[at]!;
    const origin = ORIGINS[(flags >> ORIGIN_SHIFT) & 0x3]!;
    const pathEnd = at + 3 + bytes.readUInt16BE(at + 1);
    const path = bytes.toString('utf8', at + 3, pathEnd);
    at = pathEnd;
    const deleted = (flags & DELETED) !== 0;
    const sha256 = deleted ? '' : bytes.toString('hex', at, at + 32);
    const size = deleted ? 0 : bytes.readUInt32BE(at + 32);
    if (!deleted) at += 36;
    const mtime = (flags & OWN_MTIME) === 0 ? time : bytes.readDoubleBE(at);
    if ((flags & OWN_MTIME) !== 0) at += 8;
    entries.push(deleted ? { path, deleted: true, mtime, origin } : { path, sha256, size, mtime, origin });
  }
  return { seq: packed.seq, time, entries };
}

/**
 * Each entry's sha256 whose first byte `mask` sets (the object GC's shards), without building entries: the
 * collector reads every kept generation each run.
 */
export function forEachPackedObject(packed: PackedGeneration, mask: Uint8Array, visit: (sha256: string) => void): void {
  const { bytes } = packed;
  let at = 0;
  while (at < bytes.length) {
    const flags = bytes[at]!;
    at += 3 + bytes.readUInt16BE(at + 1);
    if ((flags & DELETED) === 0) {
      if (mask[bytes[at]!] === 1) visit(bytes.toString('hex', at, at + 32));
      at += 36;
    }
    if ((flags & OWN_MTIME) !== 0) at += 8;
  }
}

function entryBytes(entry: JournalEntry, time: number): number {
  return 3 + Buffer.byteLength(entry.path) + ('deleted' in entry ? 0 : 36) + (entry.mtime === time ? 0 : 8);
}

function originCode(origin: Origin): number {
  const code = ORIGINS.indexOf(origin);
  if (code === -1) throw new RangeError(`unknown journal origin ${String(origin)}`);
  return code;
}
