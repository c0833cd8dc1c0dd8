import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/**
 * Objects are compressed once, at ingest, never per request. The qualities are
 * chosen for the publish latency target, measured on this project's p2-like
 * JSON (Node 20, one core):
 *
 *   size     br q5    br q6    br q9    br q11     gzip 9   gzip 6
 *   2 KB     0.25 ms  0.34 ms  0.90 ms  4.1 ms     0.13 ms  0.04 ms
 *   9 KB     0.13 ms  0.17 ms  1.7 ms   14.5 ms    0.08 ms  0.05 ms
 *   90 KB    0.56 ms  0.65 ms  7.8 ms   132 ms     0.87 ms  0.39 ms
 *   900 KB   7.6 ms   6.9 ms   28 ms    1722 ms    12 ms    6.4 ms
 *
 * q11 is 10-100x slower for 5-15% fewer bytes: too slow for "visible in 50 ms"
 * and for a 10k-file burst. q9 costs 10x q6 and was no smaller on this JSON.
 * So: br q6 / gzip 9 up to 64 KiB (sub-ms, the typical p2 file), and br q5 /
 * gzip 6 for the long tail, which keeps a 1 MB object under ~10 ms each.
 */
export const LARGE_OBJECT_BYTES = 64 * 1024;

export function brotliQualityFor(sizeBytes: number): number {
  return sizeBytes <= LARGE_OBJECT_BYTES ? 6 : 5;
}

export function gzipLevelFor(sizeBytes: number): number {
  return sizeBytes <= LARGE_OBJECT_BYTES ? 9 : 6;
}

/** Both precompressed variants, computed in parallel on the libuv pool. */
export async function compressObject(content: Buffer): Promise<{ br: Buffer; gzip: Buffer }> {
  const [br, gz] = await Promise.all([
    brotliAsync(content, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: brotliQualityFor(content.length),
        [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
        [constants.BROTLI_PARAM_SIZE_HINT]: content.length,
      },
    }),
    gzipAsync(content, { level: gzipLevelFor(content.length) }),
  ]);
  return { br, gzip: gz };
}
