import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrotliBackfill, type BrotliBackfill } from './brotli-backfill.js';
import { openObjectStore, variantsOf, type ObjectStore } from './store.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-backfill-'));
  store = await openObjectStore({ dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const objectOf = (name: string): { raw: Buffer; sha256: string } => {
  const raw = Buffer.from(JSON.stringify({ packages: { [name]: [{ version: '1.0.0', description: `${name} `.repeat(500) }] } }));
  return { raw, sha256: sha256Hex(raw) };
};

/** Postpones the backfill every 100 ms (packs that never stop) until its queue is done. */
async function idleWhilePostponed(backfill: BrotliBackfill): Promise<void> {
  const timer = setInterval(() => backfill.postpone(), 100);
  try {
    await backfill.idle();
  } finally {
    clearInterval(timer);
  }
}

describe('deferred brotli variants', () => {
  it('a put with deferBrotli keeps gzip only; addBrotli then adds a variant that decodes to the object', async () => {
    const { raw, sha256 } = objectOf('acme/foo');
    await store.put({ raw, sha256, deferBrotli: true });
    expect(await variantsOf(store, sha256)).toEqual({ gzipSize: expect.any(Number) as number });
    // A client accepting br meanwhile gets gzip, never an error.
    const before = await store.readPreferred(sha256, ['br', 'gzip', 'identity']);
    expect(before.variant).toBe('gzip');
    expect(gunzipSync(before.bytes)).toEqual(raw);
    expect(await store.verify(sha256)).toBe(true);

    expect(await store.addBrotli([sha256])).toBe(1);
    const after = await store.readPreferred(sha256, ['br', 'gzip', 'identity']);
    expect(after.variant).toBe('br');
    expect(brotliDecompressSync(after.bytes)).toEqual(raw);
    // Made once: a second call finds it present; the temp directory is left empty.
    expect(await store.addBrotli([sha256])).toBe(0);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('a present object without its brotli variant is reused by a put, not rewritten', async () => {
    const { raw, sha256 } = objectOf('acme/bar');
    await store.put({ raw, sha256, deferBrotli: true });
    expect((await store.put({ raw, sha256 })).created).toBe(false);
  });

  it('makes no variant from an object that does not decode or hash to its name, nor for absent objects', async () => {
    const { raw, sha256 } = objectOf('acme/baz');
    await store.put({ raw, sha256, deferBrotli: true });
    await writeFile(store.pathOf(sha256, 'gzip'), gzipSync(Buffer.concat([raw.subarray(0, 100), Buffer.from('garbage')])));
    const undecodable = objectOf('acme/qux');
    await store.put({ ...undecodable, deferBrotli: true });
    await writeFile(store.pathOf(undecodable.sha256, 'gzip'), 'not gzip');
    const absent = objectOf('acme/absent').sha256;
    expect(await store.addBrotli([sha256, undecodable.sha256, absent])).toBe(0);
    expect((await variantsOf(store, sha256)).brSize).toBeUndefined();
    expect((await variantsOf(store, undecodable.sha256)).brSize).toBeUndefined();
    expect(await store.verify(sha256)).toBe(false);
    expect(await store.verify(undecodable.sha256)).toBe(false);
  });

  it('the backfill makes the variants of what it is given in the background, drops beyond its bound, then sweeps the store for those', async () => {
    const objects = Array.from({ length: 300 }, (_, index) => objectOf(`acme/p${index}`));
    for (const object of objects) await store.put({ ...object, deferBrotli: true });
    const errors: unknown[] = [];
    const reported: number[] = [];
    const backfill = createBrotliBackfill({
      store,
      onError: (err) => errors.push(err),
      onDropped: (count) => reported.push(count),
      maxQueued: 290,
      quietMs: 0,
    });
    backfill.add(objects.map((object) => object.sha256));
    expect(backfill.dropped()).toBe(10);
    expect(reported).toEqual([10]);
    await backfill.idle();
    // The 290 it queued, and the 10 it dropped, found by the sweep that follows drops.
    const sizes = await Promise.all(objects.map((object) => variantsOf(store, object.sha256)));
    expect(sizes.filter((size) => size.brSize !== undefined)).toHaveLength(300);
    expect(backfill.sweeps()).toBe(1);
    expect(errors).toEqual([]);
    await backfill.close();
  });

  it('sweeps only after drops, and a sweep holds no more than maxQueued hashes at once', async () => {
    // Twelve objects of one shard directory: the sweep lists them together and must still queue 3 at a time.
    const objects: { raw: Buffer; sha256: string }[] = [];
    for (let index = 0; objects.length < 12 && index < 100_000; index++) {
      const object = objectOf(`acme/s${index}`);
      if (object.sha256.startsWith('00')) objects.push(object);
    }
    for (const object of objects) await store.put({ ...object, deferBrotli: true });
    const chunks: number[] = [];
    const counting = {
      ...store,
      addBrotli: async (sha256s: readonly string[]) => (chunks.push(sha256s.length), await store.addBrotli(sha256s)),
    };
    const backfill = createBrotliBackfill({ store: counting, onError: (err) => expect.fail(String(err)), maxQueued: 3, quietMs: 0 });
    backfill.add(objects.slice(0, 2).map((object) => object.sha256));
    await backfill.idle();
    // Nothing dropped: no sweep, only what it was given.
    expect(backfill.sweeps()).toBe(0);
    expect((await Promise.all(objects.map((object) => variantsOf(store, object.sha256)))).filter((size) => size.brSize).length).toBe(2);
    backfill.add(objects.slice(2, 6).map((object) => object.sha256));
    expect(backfill.dropped()).toBe(1);
    await backfill.idle();
    expect(backfill.sweeps()).toBe(1);
    expect((await Promise.all(objects.map((object) => variantsOf(store, object.sha256)))).every((size) => size.brSize !== undefined)).toBe(
      true,
    );
    expect(Math.max(...chunks)).toBeLessThanOrEqual(3);
    await backfill.close();
  });

  it('sweeps for objects a caller says it did not list, as for drops', async () => {
    const objects = Array.from({ length: 8 }, (_, index) => objectOf(`acme/u${index}`));
    for (const object of objects) await store.put({ ...object, deferBrotli: true });
    const backfill = createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 0 });
    // A bulk apply lists the first few; the rest only as a count.
    backfill.add(
      objects.slice(0, 2).map((object) => object.sha256),
      6,
    );
    expect(backfill.dropped()).toBe(6);
    await backfill.idle();
    expect(backfill.sweeps()).toBe(1);
    expect((await Promise.all(objects.map((object) => variantsOf(store, object.sha256)))).every((size) => size.brSize !== undefined)).toBe(
      true,
    );
    await backfill.close();
  });

  it('a sweep passes over a damaged object it lists, makes no variant of it, and finishes the rest', async () => {
    const objects = Array.from({ length: 6 }, (_, index) => objectOf(`acme/d${index}`));
    for (const object of objects) await store.put({ ...object, deferBrotli: true });
    const damaged = objects[3]!;
    await writeFile(store.pathOf(damaged.sha256, 'gzip'), gzipSync(Buffer.from('{"not":"the object named"}')));
    const errors: unknown[] = [];
    const backfill = createBrotliBackfill({ store, onError: (err) => errors.push(err), maxQueued: 1, quietMs: 0 });
    backfill.add(objects.map((object) => object.sha256));
    await backfill.idle();
    expect(backfill.sweeps()).toBe(1);
    const sizes = await Promise.all(objects.map((object) => variantsOf(store, object.sha256)));
    expect(sizes.map((size) => size.brSize !== undefined)).toEqual([true, true, true, false, true, true]);
    expect(await store.verify(damaged.sha256)).toBe(false);
    expect(errors).toEqual([]);
    await backfill.close();
  });

  it('waits until no hashes were added for quietMs before it compresses, and close() ends the wait', async () => {
    const { raw, sha256 } = objectOf('acme/quiet');
    await store.put({ raw, sha256, deferBrotli: true });
    const backfill = createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 60_000 });
    backfill.add([sha256]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await variantsOf(store, sha256)).brSize).toBeUndefined();
    const started = Date.now();
    await backfill.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await variantsOf(store, sha256)).brSize).toBeUndefined();
  });

  it('postpone() holds waiting work like an add (a primary streaming packs), never beyond maxWaitMs', async () => {
    const { raw, sha256 } = objectOf('acme/postponed');
    await store.put({ raw, sha256, deferBrotli: true });
    const backfill = createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 300, maxWaitMs: 2_000 });
    backfill.add([sha256]);
    const started = Date.now();
    // Postponed every 100 ms: past the quiet window of 300 ms, still waiting.
    for (let i = 0; i < 8; i++) {
      backfill.postpone();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect((await variantsOf(store, sha256)).brSize).toBeUndefined();
    // Postponed without end: made once the oldest waited maxWaitMs.
    await idleWhilePostponed(backfill);
    expect((await variantsOf(store, sha256)).brSize).toEqual(expect.any(Number));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
    await backfill.close();
  });

  it('a run of postpones counts for maxPostponeMs at most: packs that never stop cannot hold it for ever', async () => {
    const { raw, sha256 } = objectOf('acme/held');
    await store.put({ raw, sha256, deferBrotli: true });
    const backfill = createBrotliBackfill({
      store,
      onError: (err) => expect.fail(String(err)),
      quietMs: 300,
      maxWaitMs: 60_000,
      maxPostponeMs: 1_000,
    });
    backfill.add([sha256]);
    const started = Date.now();
    await idleWhilePostponed(backfill);
    expect((await variantsOf(store, sha256)).brSize).toEqual(expect.any(Number));
    // Made about quietMs after the run passed maxPostponeMs, long before maxWaitMs.
    expect(Date.now() - started).toBeLessThan(10_000);
    await backfill.close();
  });
});
