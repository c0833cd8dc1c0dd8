import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants, gzip, gzipSync } from 'node:zlib';

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * Objects are compressed once, at ingest, never per request. Measured on
 * Packagist-like p2 JSON (Node 20, one core of this 2-core machine; time per
 * object, compressed size):
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
 * Small objects are compressed synchronously: async zlib costs ~2 ms of
 * threadpool and allocation overhead per call under a burst (measured 2.3 ms vs
 * 0.34 ms per 1.2 KB object for 2,000 objects), far more than the work itself,
 * and blocking the loop for well under a millisecond is harmless. Objects above
 * LARGE_OBJECT_BYTES go to the threadpool so a 1 MB file never stalls serving.
 */
export const LARGE_OBJECT_BYTES = 64 * 1024;
export const BROTLI_QUALITY = 5;

export function gzipLevelFor(sizeBytes: number): number {
  return sizeBytes <= LARGE_OBJECT_BYTES ? 9 : 6;
}

function brotliOptions(sizeBytes: number) {
  return {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: sizeBytes,
    },
  };
}

/** Both precompressed variants of `content`. */
export async function compressObject(content: Buffer): Promise<{ br: Buffer; gzip: Buffer }> {
  if (content.length <= LARGE_OBJECT_BYTES) {
    return { br: brotliCompressSync(content, brotliOptions(content.length)), gzip: gzipSync(content, { level: gzipLevelFor(content.length) }) };
  }
  const [br, gz] = await Promise.all([brotliAsync(content, brotliOptions(content.length)), gzipAsync(content, { level: gzipLevelFor(content.length) })]);
  return { br, gzip: gz };
}
