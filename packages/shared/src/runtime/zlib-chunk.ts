/**
 * The `chunkSize` for a one-shot zlib call whose output size is known (or
 * bounded): one output buffer of about that size. Node's default is a 16 KiB
 * chunk per call whatever the output, and every one is an ArrayBuffer that V8
 * counts as external memory, which starts full collections: decoding 100,000
 * objects of ~2 KB with the default ran 24 full GCs of the whole heap (each
 * marking everything live, a bootstrap's snapshot and index included), sized
 * chunks ran 1 (`node bench/zlib-chunk-gc.ts`).
 */
export function zlibChunkFor(expectedBytes: number): number {
  // zlib's own lower bound (Z_MIN_CHUNK).
  return Math.max(64, Math.ceil(expectedBytes));
}
