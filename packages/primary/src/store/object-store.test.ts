import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { isMetasyncError, objectRelPath, sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openObjectStore } from './object-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-objects-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('object store', () => {
  it('stores bytes under their sha256 with gzip and brotli siblings that decode to the same bytes', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from(JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0' }] } }).repeat(50));
    const stored = await store.put(content);
    expect(stored).toEqual({ sha256: sha256Hex(content), size: content.length, created: true });
    expect(store.pathOf(stored.sha256, 'identity')).toBe(join(dir, objectRelPath(stored.sha256)));
    expect(await readFile(join(dir, objectRelPath(stored.sha256)))).toEqual(content);
    expect(gunzipSync(await store.readVariant(stored.sha256, 'gzip'))).toEqual(content);
    expect(brotliDecompressSync(await store.readVariant(stored.sha256, 'br'))).toEqual(content);
    await store.sync();
  });

  it('never rewrites an existing object: a second put of the same bytes leaves the file untouched', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"same":true}');
    const first = await store.put(content);
    const before = await stat(store.pathOf(first.sha256, 'identity'));
    const second = await store.put(content);
    const after = await stat(store.pathOf(first.sha256, 'identity'));
    expect(second.created).toBe(false);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('creates an object exactly once when many puts of the same bytes race', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"race":1}'.repeat(100));
    const results = await Promise.all(Array.from({ length: 20 }, () => store.put(content)));
    expect(results.filter((result) => result.created)).toHaveLength(1);
    expect(await store.read(sha256Hex(content))).toEqual(content);
  });

  it('rejects bytes that do not hash to the expected address and writes nothing', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"a":1}');
    const wrong = sha256Hex('something else');
    const error = await store.put(content, wrong).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_HASH_MISMATCH')).toBe(true);
    expect(await store.has(sha256Hex(content))).toBe(false);
    expect(await store.has(wrong)).toBe(false);
  });

  it('re-creates an object left empty by a crash before its sync', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"b":2}');
    const { sha256 } = await store.put(content);
    await writeFile(store.pathOf(sha256, 'identity'), '');
    await writeFile(store.pathOf(sha256, 'br'), '');
    const again = await store.put(content);
    expect(again.created).toBe(true);
    expect(await store.read(sha256)).toEqual(content);
    expect(brotliDecompressSync(await store.readVariant(sha256, 'br'))).toEqual(content);
  });

  it('re-creates a leftover object whose bytes are damaged though its size is right (power loss before sync)', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"c":3}');
    const { sha256 } = await store.put(content);
    await writeFile(store.pathOf(sha256, 'identity'), Buffer.alloc(content.length));
    expect((await store.put(content)).created).toBe(true);
    expect(await store.read(sha256)).toEqual(content);
  });

  it('re-creates an object whose brotli sibling does not decode', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"d":4}'.repeat(30));
    const { sha256 } = await store.put(content);
    await writeFile(store.pathOf(sha256, 'br'), Buffer.from('garbage'));
    expect((await store.put(content)).created).toBe(true);
    expect(brotliDecompressSync(await store.readVariant(sha256, 'br'))).toEqual(content);
  });

  it('answers METASYNC_ERR_OBJECT_NOT_FOUND for an unknown object', async () => {
    const store = await openObjectStore({ dir });
    const error = await store.read(sha256Hex('nope')).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_OBJECT_NOT_FOUND')).toBe(true);
  });

  it('makes a burst of new objects durable with one sync', async () => {
    const store = await openObjectStore({ dir });
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.put(Buffer.from(`{"n":${i}}`))));
    await expect(store.sync()).resolves.toBeUndefined();
  });
});
