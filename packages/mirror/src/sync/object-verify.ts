import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { metasyncError, sha256Hex, zlibChunkFor } from '@metasync/shared';

/**
 * Checks of an object fetched from the primary (alone or in a pack), before
 * anything is stored: decoded with its output bounded, sized and hashed
 * against its address, and a shipped gzip variant decoding to those bytes.
 */
/** Decodes a transfer encoding with the output capped just above the announced size. */
export function decodeBounded(body: Buffer, encoding: string, size: number, sha256: string): Buffer {
  try {
    // One output chunk of the announced size (zlibChunkFor: no 16 KiB chunk per object to collect).
    if (encoding === 'br') return brotliDecompressSync(body, { maxOutputLength: size + 1, chunkSize: zlibChunkFor(size + 1) });
    if (encoding === 'gzip') return gunzipSync(body, { maxOutputLength: size + 1, chunkSize: zlibChunkFor(size + 1) });
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_OBJECT_HASH_MISMATCH',
      `object ${sha256} (${encoding}) does not decode: ${(err as Error).message}`,
      { sha256, encoding },
      err,
    );
  }
  if (encoding === 'identity' || encoding === '') return body;
  throw metasyncError('METASYNC_ERR_SYNC_PROTOCOL', `object ${sha256} came with unsupported content-encoding ${encoding}`, {
    sha256,
    encoding,
  });
}

/** A gzip variant is kept only if it decodes to exactly the verified bytes. */
export function verifyGzip(gzip: Buffer, raw: Buffer, sha256: string): void {
  let decoded: Buffer;
  try {
    decoded = gunzipSync(gzip, { maxOutputLength: raw.length + 1, chunkSize: zlibChunkFor(raw.length + 1) });
  } catch (err) {
    throw metasyncError(
      'METASYNC_ERR_OBJECT_HASH_MISMATCH',
      `gzip variant of object ${sha256} does not decode: ${(err as Error).message}`,
      { sha256, encoding: 'gzip' },
      err,
    );
  }
  if (!decoded.equals(raw)) {
    throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `gzip variant of object ${sha256} decodes to other bytes than the object`, {
      sha256,
      encoding: 'gzip',
    });
  }
}

/** The raw object has the announced size and hashes to its address. */
export function verifyRaw(raw: Buffer, sha256: string, size: number): void {
  if (raw.length !== size) {
    throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object ${sha256} is ${raw.length} bytes, expected ${size}`, {
      sha256,
      expected: size,
      got: raw.length,
    });
  }
  const actual = sha256Hex(raw);
  if (actual !== sha256) {
    throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object ${sha256} hashes to ${actual}`, { sha256, actual });
  }
}
