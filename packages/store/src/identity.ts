import * as fsCallback from 'node:fs';
import { promisify } from 'node:util';
import { gunzip, gunzipSync } from 'node:zlib';
import { hasErrno, zlibChunkFor } from '@metasync/shared';
import { LARGE_OBJECT_BYTES } from './compression.js';
import { MAX_DECODED_OBJECT_BYTES, objectPath } from './layout.js';

// The callback API skips a FileHandle per call.
const readFile = promisify(fsCallback.readFile);
const gunzipAsync = promisify(gunzip);

export async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/**
 * An object's raw bytes as stored (layout.ts): its gzip file decoded, else its raw file. 'absent' when it has
 * neither; 'undecodable' when its gzip file does not decode within `maxBytes` (damaged: a put killed mid-write,
 * a power loss before the sync). Filesystem errors other than ENOENT are thrown.
 */
export async function readIdentity(
  dir: string,
  sha256: string,
  maxBytes = MAX_DECODED_OBJECT_BYTES,
): Promise<Buffer | 'absent' | 'undecodable'> {
  const stored = await readStoredIdentity(dir, sha256, maxBytes);
  return typeof stored === 'string' ? stored : stored.raw;
}

/** readIdentity, saying whether the bytes came from the gzip file (which then needs no second read to be checked). */
export async function readStoredIdentity(
  dir: string,
  sha256: string,
  maxBytes = MAX_DECODED_OBJECT_BYTES,
): Promise<{ raw: Buffer; fromGzip: boolean } | 'absent' | 'undecodable'> {
  const gzip = await readIfPresent(objectPath(dir, sha256, 'gzip'));
  if (gzip === undefined) {
    const raw = await readIfPresent(objectPath(dir, sha256));
    return raw === undefined ? 'absent' : { raw, fromGzip: false };
  }
  try {
    // A large object is decoded on the threadpool so it never stalls the loop (as compression.ts compresses);
    // JSON gzips to a fifth or less, so a quarter of the threshold in gzip bytes is a large object.
    const options = { maxOutputLength: maxBytes, chunkSize: zlibChunkFor(decodedSizeHint(gzip, maxBytes)) };
    const raw = gzip.length <= LARGE_OBJECT_BYTES / 4 ? gunzipSync(gzip, options) : await gunzipAsync(gzip, options);
    return { raw, fromGzip: true };
  } catch {
    return 'undecodable';
  }
}

/** Most bytes one output chunk is sized to from a gzip trailer: a damaged trailer never sizes a larger buffer. */
const MAX_HINTED_CHUNK_BYTES = 64 * 1024 * 1024;

/** The decoded size a gzip member's trailer (ISIZE, the size mod 2^32) announces, bounded; one byte more. */
function decodedSizeHint(gzip: Buffer, maxBytes: number): number {
  const announced = gzip.length >= 18 ? gzip.readUInt32LE(gzip.length - 4) : 0;
  return Math.min(announced + 1, maxBytes, MAX_HINTED_CHUNK_BYTES);
}
