import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openObjectStore, type ObjectStore } from './object-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-objects-remove-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function variantsPresent(store: ObjectStore, sha256: string): Promise<boolean[]> {
  return Promise.all((['identity', 'gzip', 'br'] as const).map((encoding) => exists(store.pathOf(sha256, encoding))));
}

async function expectIntact(store: ObjectStore, content: Buffer): Promise<void> {
  const sha256 = sha256Hex(content);
  expect(await store.read(sha256)).toEqual(content);
  expect(gunzipSync(await store.readVariant(sha256, 'gzip'))).toEqual(content);
  expect(brotliDecompressSync(await store.readVariant(sha256, 'br'))).toEqual(content);
}

describe('object store removal (the GC path)', () => {
  it('removes the raw file and both siblings and reports the bytes freed', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"remove":"me"}'.repeat(100));
    const { sha256 } = await store.put(content);
    const result = await store.remove(sha256);
    expect(result.removed).toBe(true);
    // raw + two compressed siblings, each non-empty
    expect(result.bytesFreed).toBeGreaterThan(content.length);
    expect(await variantsPresent(store, sha256)).toEqual([false, false, false]);
    expect(await store.has(sha256)).toBe(false);
  });

  it('refuses to remove an object whose put is still in flight', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"in":"flight"}');
    const putting = store.put(content);
    const result = await store.remove(sha256Hex(content));
    await putting;
    expect(result).toEqual({ removed: false, bytesFreed: 0 });
    await expectIntact(store, content);
  });

  it('a put that arrives during a removal waits for it and writes the object anew', async () => {
    const store = await openObjectStore({ dir });
    // Every interleaving of the removal's unlinks with the put's stat and writes, over a few ticks.
    for (let delayTicks = 0; delayTicks < 24; delayTicks++) {
      const content = Buffer.from(`{"raced":${delayTicks}}`.repeat(40));
      const { sha256 } = await store.put(content);
      const removing = store.remove(sha256);
      for (let tick = 0; tick < delayTicks; tick++) await new Promise((resolve) => setImmediate(resolve));
      const stored = await store.put(content);
      expect((await removing).removed).toBe(true);
      expect(await variantsPresent(store, sha256)).toEqual([true, true, true]);
      await expectIntact(store, content);
      expect(stored.sha256).toBe(sha256);
    }
  });

  it('a put after a completed removal writes the object again (nothing remembers it existed)', async () => {
    const store = await openObjectStore({ dir });
    const content = Buffer.from('{"back":"again"}'.repeat(30));
    const { sha256 } = await store.put(content);
    await store.remove(sha256);
    const again = await store.put(content);
    expect(again.created).toBe(true);
    expect(await variantsPresent(store, sha256)).toEqual([true, true, true]);
    await expectIntact(store, content);
  });

  it('sync tolerates a file written and then collected before the sync', async () => {
    const store = await openObjectStore({ dir });
    const { sha256 } = await store.put(Buffer.from('{"never":"committed"}'));
    await store.remove(sha256);
    await expect(store.sync()).resolves.toBeUndefined();
  });

  it('lists a shard by hash, counting sibling-only leftovers of a crashed removal, and an absent shard as empty', async () => {
    const store = await openObjectStore({ dir });
    const whole = await store.put(Buffer.from('{"whole":1}'));
    const shard = whole.sha256.slice(0, 2);
    const orphan = `${shard}${'0'.repeat(62)}`;
    await writeFile(`${store.pathOf(orphan, 'identity')}.gz`, 'x');
    await writeFile(join(dir, shard, 'not-an-object'), 'x');
    expect((await store.listShard(shard)).sort()).toEqual([whole.sha256, orphan].sort());
    const otherShard = shard === 'ff' ? 'fe' : 'ff';
    expect(await store.listShard(otherShard)).toEqual([]);
  });
});
