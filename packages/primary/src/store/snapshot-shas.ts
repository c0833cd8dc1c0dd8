import { open, type FileHandle } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { hasErrno, metasyncError } from '@metasync/shared';
import { MAX_RECORD_BYTES, RECORD_HEADER_BYTES } from '@metasync/shared/fs';

/**
 * A snapshot file's hashes as 256 buckets by shard (first byte), each hash kept as its next KEPT_SHA_BYTES
 * bytes. A root only ever keeps an object, so a garbage object whose 72 leading bits equal a root's (about
 * one pair in 10^21) is merely kept longer; whole 32-byte hashes took 32 MB a file at a million paths.
 */
export type PackedShas = Buffer[];

export const KEPT_SHA_BYTES = 8;
/** Hex characters of a hash that PackedShas keeps, its shard's two included. */
export const KEPT_SHA_HEX_CHARS = 2 + KEPT_SHA_BYTES * 2;

/** Each kept hash of `bucket` (shard `shard`) as the first KEPT_SHA_HEX_CHARS hex characters of the hash. */
export function forEachKeptSha(bucket: Buffer, shard: number, visit: (prefix: string) => void): void {
  const shardHex = shard.toString(16).padStart(2, '0');
  for (let at = 0; at < bucket.length; at += KEPT_SHA_BYTES) visit(shardHex + bucket.toString('hex', at, at + KEPT_SHA_BYTES));
}

const SHA_KEY = Buffer.from('"sha256":"');
const HEX_CHARS = 64;
/** A key and its hash: a match is complete once this many bytes from its start are in the window. */
const MATCH_BYTES = SHA_KEY.length + HEX_CHARS;
const DEFAULT_CHUNK_BYTES = 1 << 20;
const YIELD_EVERY_CHUNKS = 2;

/**
 * The hashes a snapshot file names, bucketed by shard; undefined when the file is gone.
 *
 * Read in chunks, twice (count per shard, then fill the exact buckets): at a million paths a snapshot
 * file is ~150 MB, and reading it whole made the object GC's first run after a restart the primary's
 * peak (a 156 MB buffer beside the buckets). The first pass checks the record's CRC as it goes, so a
 * damaged file is refused as decodeRecords would. Hashes are found by the `"sha256":"` key rather than a
 * JSON parse: inside a JSON string every quote is escaped, so the key cannot match inside a path.
 */
export async function readSnapshotShas(path: string, chunkBytes = DEFAULT_CHUNK_BYTES): Promise<PackedShas | undefined> {
  let file: FileHandle;
  try {
    file = await open(path, 'r');
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  try {
    const corrupt = (why: string, offset?: number) =>
      metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${path} ${why}`, { path, ...(offset === undefined ? {} : { offset }) });
    const header = Buffer.alloc(RECORD_HEADER_BYTES);
    const { bytesRead } = await file.read(header, 0, RECORD_HEADER_BYTES, 0);
    const length = header.readUInt32BE(0);
    if (bytesRead < RECORD_HEADER_BYTES || length > MAX_RECORD_BYTES) throw corrupt('has no snapshot record');
    const counts = new Uint32Array(256);
    let crc = 0;
    await forEachSha(file, length, chunkBytes, {
      onBytes(bytes) {
        crc = crc32(bytes, crc);
      },
      onSha(window, at, offset) {
        if (!isHexAt(window, at)) throw corrupt(`has a malformed sha256 at byte ${offset}`, offset);
        counts[hexByteAt(window, at)]!++;
      },
      onShort: () => {
        throw corrupt('has no snapshot record');
      },
    });
    if (crc !== header.readUInt32BE(4)) throw corrupt('has no snapshot record');
    const buckets = Array.from(counts, (count) => Buffer.allocUnsafe(count * KEPT_SHA_BYTES));
    const filled = new Uint32Array(256);
    await forEachSha(file, length, chunkBytes, {
      onSha(window, at) {
        const shard = hexByteAt(window, at);
        const into = filled[shard]! * KEPT_SHA_BYTES;
        // The file was checked on the first pass; one changed since (they are immutable) must not write past a bucket.
        if (into + KEPT_SHA_BYTES > buckets[shard]!.length) throw corrupt('changed while it was read');
        // The shard is the bucket: the bytes after it are kept.
        for (let byte = 0; byte < KEPT_SHA_BYTES; byte++) buckets[shard]![into + byte] = hexByteAt(window, at + 2 + byte * 2);
        filled[shard]!++;
      },
      onShort: () => {
        throw corrupt('changed while it was read');
      },
    });
    // Fewer hashes on the second pass (a file edited in place) would leave bucket bytes unwritten.
    for (let shard = 0; shard < 256; shard++) if (filled[shard] !== counts[shard]) throw corrupt('changed while it was read');
    return buckets;
  } finally {
    await file.close();
  }
}

interface ShaVisitor {
  /** Each payload chunk as read (the CRC). */
  onBytes?(bytes: Buffer): void;
  /** A `"sha256":"` key whose 64 following bytes start at `window[at]` (payload offset `offset`). */
  onSha(window: Buffer, at: number, offset: number): void;
  /** The file ended before the record's `length` bytes. */
  onShort(): never;
}

/**
 * Visits every hash key of the record payload (`length` bytes after the header) in chunks. A match cut by a
 * chunk's end is carried into the next window whole; one fully seen is never carried, so none is seen twice.
 */
async function forEachSha(file: FileHandle, length: number, chunkBytes: number, visitor: ShaVisitor): Promise<void> {
  // One buffer for the whole file: the carried tail, then the next chunk read after it. A new chunk (and a
  // concatenation) per read made ~300 MB of garbage for three million-path files, freed only as V8 got to it.
  const buffer = Buffer.allocUnsafe(chunkBytes + MATCH_BYTES);
  let carried = 0;
  let carryOffset = 0;
  let read = 0;
  for (let chunks = 1; read < length; chunks++) {
    const want = Math.min(chunkBytes, length - read);
    const { bytesRead } = await file.read(buffer, carried, want, RECORD_HEADER_BYTES + read);
    if (bytesRead === 0) visitor.onShort();
    visitor.onBytes?.(buffer.subarray(carried, carried + bytesRead));
    read += bytesRead;
    const window = buffer.subarray(0, carried + bytesRead);
    const last = read === length;
    // Matches starting at or past `complete` may run beyond the window: they wait for the next one.
    const complete = last ? window.length : window.length - (MATCH_BYTES - 1);
    let next = 0;
    for (let at = window.indexOf(SHA_KEY); at !== -1 && at < complete; at = window.indexOf(SHA_KEY, next)) {
      const hashAt = at + SHA_KEY.length;
      visitor.onSha(window, hashAt, carryOffset + hashAt);
      next = hashAt + HEX_CHARS;
    }
    // What is kept is shorter than MATCH_BYTES (a match not yet complete), so it and the next chunk fit.
    const keepFrom = last ? window.length : Math.max(next, Math.max(0, complete));
    carried = window.length - keepFrom;
    buffer.copy(buffer, 0, keepFrom, window.length);
    carryOffset += keepFrom;
    // Publishes keep flowing while a large snapshot is read.
    if (chunks % YIELD_EVERY_CHUNKS === 0) await nextTurn();
  }
}

/** 64 lowercase hex digits at `at`. */
function isHexAt(body: Buffer, at: number): boolean {
  if (at + HEX_CHARS > body.length) return false;
  for (let i = at; i < at + HEX_CHARS; i++) {
    const code = body[i]!;
    if (!((code >= 48 && code <= 57) || (code >= 97 && code <= 102))) return false;
  }
  return true;
}

/** The byte the two hex digits at `at` spell: the hash's shard. */
function hexByteAt(body: Buffer, at: number): number {
  return (hexValue(body[at]!) << 4) | hexValue(body[at + 1]!);
}

/** The value of one lowercase hex digit's character code. */
export function hexValue(code: number): number {
  return code <= 57 ? code - 48 : code - 87;
}
