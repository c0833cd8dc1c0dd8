import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasNoFileSync, LIST_SHARDS_FROM } from './presence.js';
import { openObjectStore, type ObjectStore } from './store.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-store-presence-'));
  store = await openObjectStore({ dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Even objects are too small to compress (a raw file), odd ones keep a gzip variant (a gzip file only). */
const objectBytes = (i: number): Buffer =>
  Buffer.from(i % 2 === 0 ? `{"present":${i}}` : JSON.stringify({ present: i, pad: 'x'.repeat(400) }));

describe('object presence', () => {
  it.each([
    ['a few (one stat each)', 40],
    ['many (one listing per shard)', LIST_SHARDS_FROM + 10],
  ])('finds exactly the present objects among %s', async (_, count) => {
    // Small objects are stored as their raw file, larger ones as their gzip file alone: both are present.
    const stored = await Promise.all(Array.from({ length: 40 }, (_, i) => store.put({ raw: objectBytes(i) })));
    expect(existsSync(store.pathOf(stored[0]!.sha256))).toBe(true);
    expect(existsSync(store.pathOf(stored[1]!.sha256))).toBe(false);
    expect(existsSync(store.pathOf(stored[1]!.sha256, 'gzip'))).toBe(true);
    // A brotli-only leftover (a crashed removal's) is not present: a gzip or raw file is what makes an object exist.
    const leftover = stored.pop()!.sha256;
    await rm(store.pathOf(leftover, 'gzip'));
    await writeFile(store.pathOf(leftover, 'br'), 'x');
    const absent = Array.from({ length: count - 40 }, (_, i) => sha256Hex(`absent ${i}`));
    const found = await store.presentAmong([...absent, leftover, ...stored.map((s) => s.sha256)]);
    expect([...found].sort()).toEqual(stored.map((s) => s.sha256).sort());
  });

  it('surveys many by listing: present objects, and every hash with any file (a lone brotli leftover too)', async () => {
    const stored = await Promise.all(Array.from({ length: 20 }, (_, i) => store.put({ raw: objectBytes(i) })));
    const leftover = stored.pop()!.sha256;
    await rm(store.pathOf(leftover, 'gzip'));
    await writeFile(store.pathOf(leftover, 'br'), 'x');
    const absent = Array.from({ length: LIST_SHARDS_FROM }, (_, i) => sha256Hex(`absent ${i}`));
    const survey = await store.survey([...absent, leftover, ...stored.map((s) => s.sha256)]);
    expect([...survey.present].sort()).toEqual(stored.map((s) => s.sha256).sort());
    expect([...(survey.withFiles ?? [])].sort()).toEqual([leftover, ...stored.map((s) => s.sha256)].sort());
    // A few are checked by stat: which have files is then unknown, never guessed.
    expect((await store.survey([leftover, stored[0]!.sha256])).withFiles).toBeUndefined();
  });

  it('answers has() by the gzip file, or by the raw file of an object that keeps no gzip variant', async () => {
    const small = await store.put({ raw: Buffer.from('{"has":1}') });
    const large = await store.put({ raw: objectBytes(1) });
    expect(await store.has(small.sha256)).toBe(true);
    expect(await store.has(large.sha256)).toBe(true);
    await rm(store.pathOf(small.sha256));
    await rm(store.pathOf(large.sha256, 'gzip'));
    expect(await store.has(small.sha256)).toBe(false);
    expect(await store.has(large.sha256)).toBe(false);
  });

  it('has the next sync cover present objects a caller found to reuse (a killed process may have left them unsynced)', async () => {
    const { sha256 } = await store.put({ raw: Buffer.from('{"reuse":1}') });
    await store.sync();
    const reopened = await openObjectStore({ dir });
    expect(reopened.unsynced()).toEqual({ files: 0, dirs: 0 });
    expect(await reopened.presentAmong([sha256, sha256Hex('absent')])).toEqual(new Set([sha256]));
    expect(reopened.unsynced().files).toBeGreaterThan(0);
    await reopened.sync();
    expect(reopened.unsynced()).toEqual({ files: 0, dirs: 0 });
  });
});

describe('hasNoFileSync (what a put with knownClean claims)', () => {
  it('is true only while no file of the object exists: a raw file, a gzip file, or a brotli leftover alone', async () => {
    const bytes = objectBytes(1);
    const sha = sha256Hex(bytes);
    expect(hasNoFileSync(dir, sha)).toBe(true);
    await store.put({ raw: bytes, deferBrotli: true });
    expect(hasNoFileSync(dir, sha)).toBe(false); // its gzip file
    await rm(store.pathOf(sha, 'gzip'));
    expect(hasNoFileSync(dir, sha)).toBe(true);
    await writeFile(store.pathOf(sha, 'br'), 'leftover of a removal cut short');
    expect(hasNoFileSync(dir, sha)).toBe(false);
    const small = objectBytes(2);
    await store.put({ raw: small });
    expect(hasNoFileSync(dir, sha256Hex(small))).toBe(false); // its raw file
  });
});

describe('lackingBrotli (what the backfill sweep queues)', () => {
  it('names the objects of a shard that keep a gzip file and no brotli file, and nothing else', async () => {
    const shard = 'ab';
    const stem = (i: number): string => String(i).padStart(62, '0');
    const files = [
      `${stem(1)}.gz`, // lacking
      `${stem(2)}.gz`, // has both
      `${stem(2)}.br`,
      `${stem(3)}.br`, // a lone brotli file: no object to make one from
      stem(4), // raw only: no gzip variant kept, so no brotli either
      `${stem(5)}.gz.tmp`, // not an object's name
      'x.gz',
    ];

    await mkdir(join(dir, shard), { recursive: true });
    for (const name of files) await writeFile(join(dir, shard, name), 'x');
    expect(await store.lackingBrotli(shard)).toEqual([`${shard}${stem(1)}`]);
    expect(await store.lackingBrotli('cd')).toEqual([]);
  });
});
