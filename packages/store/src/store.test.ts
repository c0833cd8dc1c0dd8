import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, brotliDecompressSync, constants, gunzipSync, gzipSync } from 'node:zlib';
import { isMetasyncError, objectRelPath, sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openObjectStore, variantsOf, type ObjectStore } from './store.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-store-'));
  store = await openObjectStore({ dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const json = Buffer.from(JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0', description: 'x'.repeat(4000) }] } }));
const sha = sha256Hex(json);

describe('object store: put and read', () => {
  it('stores bytes under their sha256 as gzip and brotli variants that decode to the same bytes, and no raw file', async () => {
    const stored = await store.put({ raw: json });
    expect(stored).toEqual({ sha256: sha, size: json.length, created: true });
    expect(store.pathOf(sha)).toBe(join(dir, objectRelPath(sha)));
    expect(store.pathOf(sha, 'identity')).toBe(join(dir, objectRelPath(sha)));
    expect(store.pathOf(sha, 'gzip')).toBe(join(dir, `${objectRelPath(sha)}.gz`));
    // The gzip file is the object's one copy: read() decodes it.
    expect(existsSync(store.pathOf(sha))).toBe(false);
    expect(await store.read(sha)).toEqual(json);
    expect(await store.readVariant(sha, 'identity')).toEqual(json);
    expect(await store.readPreferred(sha, ['identity'])).toEqual({ variant: 'identity', bytes: json });
    expect(gunzipSync(await store.readVariant(sha, 'gzip'))).toEqual(json);
    expect(brotliDecompressSync(await store.readVariant(sha, 'br'))).toEqual(json);
    expect(await variantsOf(store, sha)).toEqual({
      gzipSize: (await stat(store.pathOf(sha, 'gzip'))).size,
      brSize: (await stat(store.pathOf(sha, 'br'))).size,
    });
  });

  it('never rewrites an existing object: a second put of the same bytes leaves its files untouched', async () => {
    await store.put({ raw: json });
    const before = await Promise.all((['gzip', 'br'] as const).map((v) => stat(store.pathOf(sha, v))));
    const second = await store.put({ sha256: sha, raw: json });
    const after = await Promise.all((['gzip', 'br'] as const).map((v) => stat(store.pathOf(sha, v))));
    expect(second.created).toBe(false);
    expect(after.map((s) => [s.ino, s.mtimeMs])).toEqual(before.map((s) => [s.ino, s.mtimeMs]));
  });

  it('creates an object exactly once when many puts of the same bytes race', async () => {
    const content = Buffer.from('{"race":1}'.repeat(100));
    const results = await Promise.all(Array.from({ length: 20 }, () => store.put({ raw: content })));
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(await store.read(sha256Hex(content))).toEqual(content);
  });

  it('rejects bytes that do not hash to the expected address, says both hashes, and writes nothing', async () => {
    const wrong = sha256Hex('something else');
    const error = await store.put({ sha256: wrong, raw: json }).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_HASH_MISMATCH')).toBe(true);
    expect((error as { details?: unknown }).details).toEqual({ expected: wrong, got: sha });
    expect(await store.has(sha)).toBe(false);
    expect(await store.has(wrong)).toBe(false);
    expect(store.unsynced()).toEqual({ files: 0, dirs: 0 });
  });

  it('answers METASYNC_ERR_OBJECT_NOT_FOUND for an unknown object and for a variant it does not keep', async () => {
    expect(isMetasyncError(await store.read(sha256Hex('nope')).catch((err: unknown) => err), 'METASYNC_ERR_OBJECT_NOT_FOUND')).toBe(true);
    const tiny = await store.put({ raw: Buffer.from('{"a":1}') });
    expect(isMetasyncError(await store.readVariant(tiny.sha256, 'br').catch((err: unknown) => err), 'METASYNC_ERR_OBJECT_NOT_FOUND')).toBe(
      true,
    );
  });

  it('reads the first variant an object keeps, falling back to identity', async () => {
    const tiny = Buffer.from('{"a":1}');
    const { sha256 } = await store.put({ raw: tiny });
    await store.put({ raw: json });
    expect(await store.readPreferred(sha256, ['br', 'identity'])).toEqual({ variant: 'identity', bytes: tiny });
    const best = await store.readPreferred(sha, ['br', 'identity']);
    expect(best.variant).toBe('br');
    expect(brotliDecompressSync(best.bytes)).toEqual(json);
    const error = await store.readPreferred(sha256, ['gzip', 'br']).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_NOT_FOUND')).toBe(true);
  });
});

describe('object store: variants the caller already holds', () => {
  // Bytes the store would never produce itself (other brotli quality, gzip level 1), so "used as given" is visible.
  const givenBr = brotliCompressSync(json, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  const givenGz = gzipSync(json, { level: 1 });

  it('keeps both variants of a pack frame as given instead of recompressing (mirror bootstrap)', async () => {
    await store.put({ sha256: sha, raw: json, brotli: givenBr, gzip: givenGz });
    expect(await store.readVariant(sha, 'br')).toEqual(givenBr);
    expect(await store.readVariant(sha, 'gzip')).toEqual(givenGz);
  });

  it('keeps a given brotli body and compresses only the missing gzip (mirror single GET)', async () => {
    await store.put({ sha256: sha, raw: json, brotli: givenBr });
    expect(await store.readVariant(sha, 'br')).toEqual(givenBr);
    const gz = await store.readVariant(sha, 'gzip');
    expect(gz).not.toEqual(givenGz);
    expect(gunzipSync(gz)).toEqual(json);
  });

  it('compresses both when none is given (primary ingest)', async () => {
    await store.put({ raw: json });
    expect(await store.readVariant(sha, 'br')).not.toEqual(givenBr);
    expect(brotliDecompressSync(await store.readVariant(sha, 'br'))).toEqual(json);
  });

  it('does not keep a given variant that is not smaller than the raw bytes', async () => {
    const raw = Buffer.from('{"v":"' + 'q'.repeat(80) + '"}');
    const bloated = Buffer.concat([gzipSync(raw, { level: 0 }), Buffer.alloc(0)]);
    expect(bloated.length).toBeGreaterThanOrEqual(raw.length);
    const { sha256 } = await store.put({ raw, gzip: bloated });
    expect(await variantsOf(store, sha256)).toEqual({ brSize: expect.any(Number) as number });
  });
});

describe('object store: leftovers of a crash', () => {
  it('re-creates an object left empty by a crash before its sync', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha, 'gzip'), '');
    await writeFile(store.pathOf(sha, 'br'), '');
    const again = await store.put({ raw: json });
    expect(again.created).toBe(true);
    expect(await store.read(sha)).toEqual(json);
    expect(brotliDecompressSync(await store.readVariant(sha, 'br'))).toEqual(json);
  });

  it('a put told the object is absent replaces a damaged leftover it did not check: raw and variants intact after', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha, 'gzip'), Buffer.from('garbage'));
    await writeFile(store.pathOf(sha, 'br'), Buffer.from('garbage'));
    // An older version's raw file beside them, zero-filled by a power loss: reads would take it.
    await writeFile(store.pathOf(sha), Buffer.alloc(json.length));
    expect(await store.verify(sha)).toBe(false);
    expect((await store.put({ raw: json, knownAbsent: true })).created).toBe(true);
    expect(existsSync(store.pathOf(sha))).toBe(false);
    expect(await store.verify(sha)).toBe(true);
    expect(gunzipSync(await store.readVariant(sha, 'gzip'))).toEqual(json);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('re-creates a leftover whose gzip file decodes to other bytes of the same size (power loss before sync)', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha, 'gzip'), gzipSync(Buffer.alloc(json.length)));
    expect((await store.put({ raw: json })).created).toBe(true);
    expect(await store.read(sha)).toEqual(json);
  });

  it('re-creates a leftover of an older version whose raw file beside the gzip one is damaged', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha), Buffer.alloc(json.length));
    expect(await store.verify(sha)).toBe(false);
    expect((await store.put({ raw: json })).created).toBe(true);
    expect(existsSync(store.pathOf(sha))).toBe(false);
    expect(await store.verify(sha)).toBe(true);
  });

  it('reads a stored gzip file that does not decode as METASYNC_ERR_OBJECT_HASH_MISMATCH, never as bytes', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha, 'gzip'), Buffer.from('garbage'));
    const error = await store.read(sha).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_HASH_MISMATCH')).toBe(true);
  });

  it('re-creates an object whose brotli variant does not decode', async () => {
    await store.put({ raw: json });
    await writeFile(store.pathOf(sha, 'br'), Buffer.from('garbage'));
    expect((await store.put({ raw: json })).created).toBe(true);
    expect(brotliDecompressSync(await store.readVariant(sha, 'br'))).toEqual(json);
  });

  it('re-creates an object stored as its raw file though the policy keeps a gzip variant', async () => {
    await store.put({ raw: json });
    await rm(store.pathOf(sha, 'gzip'));
    await writeFile(store.pathOf(sha), json);
    expect((await store.put({ raw: json })).created).toBe(true);
    expect(existsSync(store.pathOf(sha))).toBe(false);
    expect(gunzipSync(await store.readVariant(sha, 'gzip'))).toEqual(json);
  });

  it('trusts a small object without variants: the policy keeps none, so nothing is missing', async () => {
    const tiny = Buffer.from('{"b":2}');
    const { sha256 } = await store.put({ raw: tiny });
    const before = await stat(store.pathOf(sha256));
    expect((await store.put({ raw: tiny })).created).toBe(false);
    expect((await stat(store.pathOf(sha256))).ino).toBe(before.ino);
  });

  it('replaces a file that a crashed put left behind by a new file, never truncating it', async () => {
    await mkdir(join(dir, sha.slice(0, 2)), { recursive: true });
    await writeFile(store.pathOf(sha, 'gzip'), 'half a gzip');
    // A reader that opened the leftover keeps reading the bytes it opened.
    const reader = await open(store.pathOf(sha, 'gzip'), 'r');
    try {
      await store.put({ raw: json });
      expect(gunzipSync(await readFile(store.pathOf(sha, 'gzip')))).toEqual(json);
      expect((await reader.readFile()).toString()).toBe('half a gzip');
    } finally {
      await reader.close();
    }
  });

  it('removes a leftover brotli file the put does not replace, so it never sits beside the new object', async () => {
    const tiny = Buffer.from('{"c":3}');
    const sha256 = sha256Hex(tiny);
    await mkdir(join(dir, sha256.slice(0, 2)), { recursive: true });
    await writeFile(store.pathOf(sha256, 'br'), 'stale');
    await store.put({ raw: tiny });
    expect(await variantsOf(store, sha256)).toEqual({});
  });

  it('clears temp files on open and keeps them out of the shard directories', async () => {
    await writeFile(join(dir, 'tmp', 'half-written'), 'x');
    const reopened = await openObjectStore({ dir });
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await reopened.put({ raw: json });
    expect((await readdir(join(dir, sha.slice(0, 2)))).sort()).toEqual([`${sha.slice(2)}.br`, `${sha.slice(2)}.gz`]);
  });
});

describe('object store: verifying an object reused without its bytes', () => {
  it('accepts an intact object, and refuses an absent one, one whose bytes do not hash to its name, or one with a damaged variant', async () => {
    await store.put({ raw: json });
    expect(await store.verify(sha)).toBe(true);
    expect(await store.verify(sha256Hex('absent'))).toBe(false);
    const original = await readFile(store.pathOf(sha, 'br'));
    await writeFile(store.pathOf(sha, 'br'), original.subarray(0, original.length - 3));
    expect(await store.verify(sha)).toBe(false);
    await writeFile(store.pathOf(sha, 'br'), original);
    expect(await store.verify(sha)).toBe(true);
    const gzip = await readFile(store.pathOf(sha, 'gzip'));
    await writeFile(store.pathOf(sha, 'gzip'), gzip.subarray(0, gzip.length - 3));
    expect(await store.verify(sha)).toBe(false);
    await writeFile(store.pathOf(sha, 'gzip'), gzipSync(Buffer.alloc(json.length)));
    expect(await store.verify(sha)).toBe(false);
  });

  it('accepts a small object that keeps no variants', async () => {
    const { sha256 } = await store.put({ raw: Buffer.from('{"small":true}') });
    expect(await store.verify(sha256)).toBe(true);
  });
});

describe('object store: a stale knownClean hint', () => {
  it('keeps an intact object it meets (same inode, no put of its own), and replaces a damaged one', async () => {
    await store.put({ raw: json, deferBrotli: true });
    const gz = store.pathOf(sha, 'gzip');
    const before = await stat(gz);
    // The hint was taken before that put: a committed generation may be serving the file now.
    const again = await store.put({ raw: json, knownClean: true, deferBrotli: true });
    expect(again.created).toBe(false);
    expect((await stat(gz)).ino).toBe(before.ino);
    expect(await store.read(sha)).toEqual(json);

    await writeFile(gz, Buffer.from('not gzip')); // a put killed mid-write, then a stale hint
    const repaired = await store.put({ raw: json, knownClean: true, deferBrotli: true });
    expect(repaired.created).toBe(true);
    expect(await store.read(sha)).toEqual(json);
  });
});
