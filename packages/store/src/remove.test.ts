import { access, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openObjectStore, type ObjectStore } from './store.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-store-remove-'));
  store = await openObjectStore({ dir });
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function filesPresent(sha256: string): Promise<boolean[]> {
  return Promise.all((['identity', 'gzip', 'br'] as const).map((variant) => exists(store.pathOf(sha256, variant))));
}

async function expectIntact(content: Buffer): Promise<void> {
  const sha256 = sha256Hex(content);
  expect(await store.read(sha256)).toEqual(content);
  expect(gunzipSync(await store.readVariant(sha256, 'gzip'))).toEqual(content);
  expect(brotliDecompressSync(await store.readVariant(sha256, 'br'))).toEqual(content);
}

describe('object store removal (the GC path)', () => {
  it("removes the object's files (a raw one left by an older version too) and reports the bytes freed", async () => {
    const content = Buffer.from('{"remove":"me"}'.repeat(100));
    const { sha256 } = await store.put({ raw: content });
    const compressed = (await stat(store.pathOf(sha256, 'gzip'))).size + (await stat(store.pathOf(sha256, 'br'))).size;
    // Older versions kept the raw file beside the gzip one.
    await writeFile(store.pathOf(sha256), content);
    const result = await store.remove(sha256);
    expect(result.removed).toBe(true);
    expect(result.bytesFreed).toBe(content.length + compressed);
    expect(await filesPresent(sha256)).toEqual([false, false, false]);
    expect(await store.has(sha256)).toBe(false);
  });

  it('refuses to remove an object whose put is still in flight', async () => {
    const content = Buffer.from('{"in":"flight"}'.repeat(10));
    const putting = store.put({ raw: content });
    const result = await store.remove(sha256Hex(content));
    await putting;
    expect(result).toEqual({ removed: false, bytesFreed: 0 });
    await expectIntact(content);
  });

  it('refuses a second removal of the same object while the first runs', async () => {
    const { sha256 } = await store.put({ raw: Buffer.from('{"twice":1}'.repeat(10)) });
    const [first, second] = await Promise.all([store.remove(sha256), store.remove(sha256)]);
    expect(first.removed).toBe(true);
    expect(second).toEqual({ removed: false, bytesFreed: 0 });
  });

  it('a put that arrives during a removal waits for it and writes the object anew', async () => {
    // Every interleaving of the removal's unlinks with the put's stat and writes, over a few ticks.
    for (let delayTicks = 0; delayTicks < 24; delayTicks++) {
      const content = Buffer.from(`{"raced":${delayTicks}}`.repeat(40));
      const { sha256 } = await store.put({ raw: content });
      const removing = store.remove(sha256);
      for (let tick = 0; tick < delayTicks; tick++) await new Promise((resolve) => setImmediate(resolve));
      const stored = await store.put({ raw: content });
      expect((await removing).removed).toBe(true);
      expect(stored).toEqual({ sha256, size: content.length, created: true });
      expect(await filesPresent(sha256)).toEqual([false, true, true]);
      await expectIntact(content);
    }
  });

  it('a put after a completed removal writes the object again (nothing remembers it existed)', async () => {
    const content = Buffer.from('{"back":"again"}'.repeat(30));
    const { sha256 } = await store.put({ raw: content });
    await store.remove(sha256);
    const again = await store.put({ raw: content });
    expect(again.created).toBe(true);
    expect(await filesPresent(sha256)).toEqual([false, true, true]);
    await expectIntact(content);
  });

  it('sync tolerates a file written and then collected before the sync', async () => {
    const { sha256 } = await store.put({ raw: Buffer.from('{"never":"committed"}'.repeat(10)) });
    await store.remove(sha256);
    await expect(store.sync()).resolves.toBeUndefined();
    expect(store.unsynced()).toEqual({ files: 0, dirs: 0 });
  });

  it('lists a shard by hash, counting brotli-only leftovers of a crashed removal, and an absent shard as empty', async () => {
    const whole = await store.put({ raw: Buffer.from('{"whole":1}') });
    const shard = whole.sha256.slice(0, 2);
    const orphan = `${shard}${'0'.repeat(62)}`;
    await writeFile(store.pathOf(orphan, 'br'), 'x');
    await writeFile(join(dir, shard, 'not-an-object'), 'x');
    expect((await store.listShard(shard)).sort()).toEqual([whole.sha256, orphan].sort());
    // Each once, whatever foreign names sort between an object's files (a raw file, its .br~ and its .gz).
    const stem = whole.sha256.slice(2);
    for (const name of [stem, `${stem}.br`, `${stem}.br~`, `${stem}.bak`, `${stem}-x`]) await writeFile(join(dir, shard, name), 'x');
    expect((await store.listShard(shard)).sort()).toEqual([whole.sha256, orphan].sort());
    const otherShard = shard === 'ff' ? 'fe' : 'ff';
    expect(await store.listShard(otherShard)).toEqual([]);
  });
});
