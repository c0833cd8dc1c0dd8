import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodesTo, gzipLevelFor, LARGE_OBJECT_BYTES, MIN_COMPRESS_BYTES, variantsFor } from './compression.js';

/** Packagist-like JSON of about `bytes` bytes: compressible, but not a single repeated run. */
function p2Json(bytes: number): Buffer {
  const versions = [];
  for (let i = 0, length = 0; length < bytes; i++, length += JSON.stringify(versions.at(-1)).length) {
    versions.push({
      version: `1.${i}.0`,
      require: { php: '>=8.1', [`acme/dep${i % 7}`]: `^${i % 5}.0` },
      time: `2026-01-${10 + (i % 18)}T10:00:00+00:00`,
    });
  }
  return Buffer.from(JSON.stringify({ packages: { 'acme/foo': versions }, minified: 'composer/2.0' }));
}

describe('compression policy', () => {
  it('uses gzip 9 up to LARGE_OBJECT_BYTES and 6 above (7x the cost for 7% fewer bytes)', () => {
    expect(gzipLevelFor(1500)).toBe(9);
    expect(gzipLevelFor(LARGE_OBJECT_BYTES)).toBe(9);
    expect(gzipLevelFor(LARGE_OBJECT_BYTES + 1)).toBe(6);
  });

  it('keeps no variant below MIN_COMPRESS_BYTES', async () => {
    expect(await variantsFor(Buffer.from('x'.repeat(MIN_COMPRESS_BYTES - 1)))).toEqual({});
    expect(Object.keys(await variantsFor(Buffer.from('x'.repeat(MIN_COMPRESS_BYTES)))).sort()).toEqual(['br', 'gzip']);
  });

  it.each([
    ['small, on the loop', 1500],
    ['large, on the threadpool', LARGE_OBJECT_BYTES * 3],
  ])('compresses a %s object to variants that decode to it, gzip at the level for its size', async (_, size) => {
    const raw = p2Json(size);
    const kept = await variantsFor(raw);
    expect(brotliDecompressSync(kept.br!)).toEqual(raw);
    expect(gunzipSync(kept.gzip!)).toEqual(raw);
    expect(kept.gzip).toEqual(gzipSync(raw, { level: gzipLevelFor(raw.length) }));
  });

  it('uses given variants as they are and compresses only what is missing', async () => {
    const raw = p2Json(3000);
    const gzip = gzipSync(raw, { level: 1 });
    const kept = await variantsFor(raw, { gzip });
    expect(kept.gzip).toBe(gzip);
    expect(brotliDecompressSync(kept.br!)).toEqual(raw);
  });

  it('drops a variant that is not smaller than the raw bytes', async () => {
    // 64 random-looking bytes: neither brotli nor gzip gets below 64.
    const raw = Buffer.from(Array.from({ length: MIN_COMPRESS_BYTES }, (_, i) => (i * 151 + 7) % 256));
    expect(await variantsFor(raw)).toEqual({});
    // A given variant is held to the same rule: one as large as the raw bytes is dropped, the other still made.
    const json = Buffer.from(`{"a":"${'x'.repeat(200)}"}`);
    const kept = await variantsFor(json, { brotli: Buffer.alloc(json.length) });
    expect(Object.keys(kept)).toEqual(['gzip']);
  });

  it('tells a variant that decodes to the raw bytes from a truncated, foreign or garbage one', async () => {
    const raw = p2Json(2000);
    const { gzip, br } = await variantsFor(raw);
    expect(decodesTo('gzip', gzip!, raw)).toBe(true);
    expect(decodesTo('br', br!, raw)).toBe(true);
    expect(decodesTo('gzip', gzip!.subarray(0, gzip!.length - 4), raw)).toBe(false);
    expect(decodesTo('br', Buffer.from('garbage'), raw)).toBe(false);
    expect(decodesTo('gzip', gzipSync(p2Json(2100)), raw)).toBe(false);
  });
});
