import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addBrotliVariants } from './brotli-variant.js';
import { createDurability } from './durability.js';
import { createBatchedFiles } from './batched-files.js';
import { openObjectStore, variantsOf, type ObjectStore } from './store.js';
import type { WriteContext } from './write-path.js';

let dir: string;
let store: ObjectStore;
let context: WriteContext;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-brotli-variant-'));
  store = await openObjectStore({ dir });
  // The store's own layout, driven directly so `skip` can change its answer between staging and rename.
  const tmpDir = join(dir, 'tmp');
  await mkdir(tmpDir, { recursive: true });
  context = {
    dir,
    tmpDir,
    durability: createDurability(dir),
    knownShards: new Set(),
    reused: () => undefined,
    files: createBatchedFiles(),
  };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function putWithoutBrotli(count: number): Promise<string[]> {
  const hashes: string[] = [];
  for (let i = 0; i < count; i++) {
    const raw = Buffer.from(JSON.stringify({ packages: { [`acme/v${i}`]: [{ version: '1.0.0', description: 'v '.repeat(300) }] } }));
    await store.put({ raw, sha256: sha256Hex(raw), deferBrotli: true });
    hashes.push(sha256Hex(raw));
  }
  return hashes;
}

describe('addBrotliVariants, staged four at a time', () => {
  it('does not rename in a variant whose object a put or removal took over after it was staged, and leaves no temp', async () => {
    const hashes = await putWithoutBrotli(6);
    const takenOver = hashes[2] as string;
    const asked = new Map<string, number>();
    // Asked once when staged, once before the rename: the second time the object is someone else's.
    const skip = (sha256: string): boolean => {
      const times = (asked.get(sha256) ?? 0) + 1;
      asked.set(sha256, times);
      return sha256 === takenOver && times > 1;
    };
    expect(await addBrotliVariants(context, hashes, skip)).toBe(5);
    expect((await variantsOf(store, takenOver)).brSize).toBeUndefined();
    for (const sha256 of hashes.filter((h) => h !== takenOver)) expect((await variantsOf(store, sha256)).brSize).toBeGreaterThan(0);
    expect(await readdir(context.tmpDir)).toEqual([]);
  });

  it('a stage that fails while others run: every stage settles, no temp is left, nothing is renamed in, the error is reported', async () => {
    const hashes = await putWithoutBrotli(12);
    const failing = hashes[5] as string;
    const skip = (sha256: string): boolean => {
      if (sha256 === failing) throw new Error('stage failed');
      return false;
    };
    await expect(addBrotliVariants(context, hashes, skip)).rejects.toThrow('stage failed');
    expect(await readdir(context.tmpDir)).toEqual([]);
    for (const sha256 of hashes) expect((await variantsOf(store, sha256)).brSize).toBeUndefined();
  });
});
