import { constants, PerformanceObserver } from 'node:perf_hooks';
import { gzipSync } from 'node:zlib';
import { isMetasyncError, sha256Hex } from '@metasync/shared';
import { describe, expect, it } from 'vitest';
import { decodeBounded, verifyGzip, verifyRaw } from './object-verify.js';

const raw = Buffer.from(JSON.stringify({ packages: { 'acme/x': Array.from({ length: 40 }, (_, i) => ({ version: `1.${i}.0` })) } }));
const sha256 = sha256Hex(raw);
const gzip = gzipSync(raw);

/** Full collections while `run` goes, with `live` entries kept alive as a bootstrap's snapshot is. */
async function fullCollectionsDuring(run: () => void): Promise<number> {
  let major = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if ((entry as { detail?: { kind: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
  });
  observer.observe({ entryTypes: ['gc'] });
  run();
  // GC entries are delivered asynchronously.
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return major;
}

describe('object checks before a put', () => {
  it('decodes, sizes and hashes an object, and refuses bytes that decode past the announced size', () => {
    const decoded = decodeBounded(gzip, 'gzip', raw.length, sha256);
    expect(decoded).toEqual(raw);
    expect(() => verifyRaw(decoded, sha256, raw.length)).not.toThrow();
    verifyGzip(gzip, raw, sha256);
    const error = (() => {
      try {
        return decodeBounded(gzip, 'gzip', raw.length - 10, sha256);
      } catch (err) {
        return err;
      }
    })();
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_HASH_MISMATCH')).toBe(true);
  });

  it('decodes 50,000 small objects without a full collection every few thousand (one output chunk each, sized)', async () => {
    const live = Array.from({ length: 50_000 }, (_, i) => ({ path: `p2/acme/p${i}.json`, size: i }));
    const major = await fullCollectionsDuring(() => {
      for (let i = 0; i < 50_000; i++) verifyGzip(gzip, decodeBounded(gzip, 'gzip', raw.length, sha256), sha256);
    });
    // Node's default 16 KiB chunk per call made this about 24 full collections (bench/zlib-chunk-gc.ts).
    expect(major).toBeLessThanOrEqual(3);
    expect(live.length).toBe(50_000);
  });
});
