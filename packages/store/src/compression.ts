import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzip, gzipSync } from 'node:zlib';
import { zlibChunkFor } from '@metasync/shared';

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * The one compression policy. Objects are compressed once, when stored, never
 * per request. Measured on Packagist-like p2 JSON (Node 20, one core of a
 * 2-core machine; time per object, compressed size):
 *
 *   input    br q4          br q5          br q6          br q9           gzip 6         gzip 9
 *   1.5 KB   -              38 us  279 B   49 us  279 B   751 us  283 B   26 us  326 B   32 us  326 B
 *   15 KB    89 us 1182 B   151 us 1051 B  187 us 1051 B  2.0 ms 1063 B   93 us 1426 B   107 us 1305 B
 *   150 KB   531 us 9872 B  1.1 ms 7765 B  1.2 ms 7784 B  49 ms  7896 B   1.3 ms 11642 B 8.8 ms 10816 B
 *   (br q11: 4-15 ms for a few KB, 1.7 s for 900 KB.)
 *
 * q9 and q11 cost 10-100x more for no gain on this JSON, so brotli runs at q5
 * everywhere (q6 was never smaller). gzip 9 is cheap below 64 KiB and 7x the
 * cost of gzip 6 above for 7% fewer bytes, so large objects use 6.
 *
 * Below MIN_COMPRESS_BYTES headers dominate, and a variant that is not smaller
 * than the raw bytes is useless (serving falls back to identity): neither is
 * kept, so "no variant" is a normal state every reader handles.
 *
 * Small objects are compressed synchronously: async zlib costs ~2 ms of
 * threadpool and allocation overhead per call under a burst (measured 2.3 ms vs
 * 0.34 ms per 1.2 KB object for 2,000 objects), far more than the work itself,
 * and blocking the loop for well under a millisecond is harmless. Objects above
 * LARGE_OBJECT_BYTES go to the threadpool so a 1 MB file never stalls serving.
 */
export const MIN_COMPRESS_BYTES = 64;
export const LARGE_OBJECT_BYTES = 64 * 1024;
export const BROTLI_QUALITY = 5;

export function gzipLevelFor(sizeBytes: number): number {
  return sizeBytes <= LARGE_OBJECT_BYTES ? 9 : 6;
}

/**
 * The window just covers the input (10..24 bits; the default is 22): the encoder then sets up and clears
 * far less state per call, and no match can reach further back than the input's start anyway. Measured on
 * the bench corpus (5,000 p2 files, 5.4 KB average): 188 -> 151 us per file, the same 18.5% of raw bytes.
 */
export function brotliWindowBits(sizeBytes: number): number {
  return Math.max(constants.BROTLI_MIN_WINDOW_BITS, Math.min(constants.BROTLI_MAX_WINDOW_BITS, Math.ceil(Math.log2(sizeBytes + 16))));
}

function brotliOptions(sizeBytes: number) {
  return {
    chunkSize: zlibChunkFor(sizeBytes),
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: sizeBytes,
      [constants.BROTLI_PARAM_LGWIN]: brotliWindowBits(sizeBytes),
    },
  };
}

/** The brotli variant alone (a deferred variant made after the commit, brotli-backfill.ts); undefined when not worth keeping. */
export function brotliFor(raw: Buffer): Buffer | undefined {
  if (raw.length < MIN_COMPRESS_BYTES) return undefined;
  const br = brotliCompressSync(raw, brotliOptions(raw.length));
  return br.length < raw.length ? br : undefined;
}

/** Compressed variants a caller already holds, each known to decode to the raw bytes. */
export interface GivenVariants {
  brotli?: Buffer | undefined;
  gzip?: Buffer | undefined;
}

/** The variants an object keeps on disk: absent when too small to compress or not smaller than `raw`. */
export interface KeptVariants {
  br?: Buffer;
  gzip?: Buffer;
}

/**
 * The variants to store for `raw`. A variant the caller passes is used as it is
 * (the mirror's pack frames carry the primary's, checked by decoding), so a
 * bootstrap never recompresses; only missing ones are compressed here. With
 * `deferBrotli` a missing brotli variant is not made here (a bulk ingest or
 * bootstrap makes it after its commit, brotli-backfill.ts): brotli is two
 * thirds of the compression time and one file of three.
 */
export async function variantsFor(raw: Buffer, given: GivenVariants = {}, options: { deferBrotli?: boolean } = {}): Promise<KeptVariants> {
  if (raw.length < MIN_COMPRESS_BYTES) return {};
  const makeBrotli = given.brotli === undefined && options.deferBrotli !== true;
  let br = given.brotli;
  let gz = given.gzip;
  if (raw.length <= LARGE_OBJECT_BYTES) {
    if (makeBrotli) br = brotliCompressSync(raw, brotliOptions(raw.length));
    // Output chunks sized to the input (zlibChunkFor): compressed JSON is smaller, so one chunk holds it.
    gz ??= gzipSync(raw, { level: gzipLevelFor(raw.length), chunkSize: zlibChunkFor(raw.length) });
  } else {
    [br, gz] = await Promise.all([
      makeBrotli ? brotliAsync(raw, brotliOptions(raw.length)) : br,
      gz ?? gzipAsync(raw, { level: gzipLevelFor(raw.length) }),
    ]);
  }
  const kept: KeptVariants = {};
  if (br !== undefined && br.length < raw.length) kept.br = br;
  if (gz.length < raw.length) kept.gzip = gz;
  return kept;
}

/** True when `bytes` (a stored variant) decodes to exactly `raw`; a truncated or garbage file does not. */
export function decodesTo(encoding: 'br' | 'gzip', bytes: Buffer, raw: Buffer): boolean {
  try {
    const decoded =
      encoding === 'br'
        ? brotliDecompressSync(bytes, { maxOutputLength: raw.length + 1, chunkSize: zlibChunkFor(raw.length + 1) })
        : gunzipSync(bytes, { maxOutputLength: raw.length + 1, chunkSize: zlibChunkFor(raw.length + 1) });
    return decoded.equals(raw);
  } catch {
    return false; // any decode failure means damaged: the caller re-creates the object
  }
}
