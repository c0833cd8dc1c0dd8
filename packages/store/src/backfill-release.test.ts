import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '@metasync/shared';
import { releasingAfterBackfill } from './backfill-release.js';
import { createBrotliBackfill } from './brotli-backfill.js';
import { openObjectStore, variantsOf, type ObjectStore } from './store.js';

/** Counts the memory releases the code under test asks for. */
const released = { calls: 0, release: () => void released.calls++ };

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'backfill-release-'));
  store = await openObjectStore({ dir });
  released.calls = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Objects stored as a bootstrap stores them when the primary sent no brotli variant. */
async function putWithoutBrotli(count: number): Promise<string[]> {
  const hashes: string[] = [];
  for (let i = 0; i < count; i++) {
    const raw = Buffer.from(JSON.stringify({ packages: { [`acme/p${i}`]: [{ version: '1.0.0', description: 'x '.repeat(300) }] } }));
    const sha256 = sha256Hex(raw);
    await store.put({ raw, sha256, deferBrotli: true });
    hashes.push(sha256);
  }
  return hashes;
}

describe('releasingAfterBackfill', () => {
  it('releases memory once a large run of variants is made, not before', async () => {
    const backfill = releasingAfterBackfill(createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 0 }), {
      fromVariants: 6,
      release: released.release,
    });
    const hashes = await putWithoutBrotli(8);
    backfill.add(hashes.slice(0, 3));
    backfill.add(hashes.slice(3));
    expect(released.calls).toBe(0);
    await backfill.idle();
    await new Promise((resolve) => setImmediate(resolve));
    for (const sha256 of hashes) expect((await variantsOf(store, sha256)).brSize).toBeGreaterThan(0);
    expect(released.calls).toBe(1);
    await backfill.close();
  });

  it('leaves memory alone after a few variants', async () => {
    const backfill = releasingAfterBackfill(createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 0 }), {
      fromVariants: 6,
      release: released.release,
    });
    backfill.add(await putWithoutBrotli(2));
    await backfill.idle();
    await new Promise((resolve) => setImmediate(resolve));
    expect(released.calls).toBe(0);
    await backfill.close();
  });

  it('releases memory once a sweep it resumed at start (owed by a stopped process) is done, and not when none was owed', async () => {
    const hashes = await putWithoutBrotli(3);
    const marker = join(dir, 'owed');
    const quiet = releasingAfterBackfill(
      createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 0 }),
      { fromVariants: 1_000, release: released.release },
    );
    await quiet.idle();
    await new Promise((resolve) => setImmediate(resolve));
    expect(released.calls).toBe(0);
    await quiet.close();
    await writeFile(marker, '');
    const resumed = releasingAfterBackfill(
      createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 0 }),
      { fromVariants: 1_000, release: released.release },
    );
    await resumed.idle();
    await new Promise((resolve) => setImmediate(resolve));
    for (const sha256 of hashes) expect((await variantsOf(store, sha256)).brSize).toBeGreaterThan(0);
    expect(released.calls).toBe(1);
    await resumed.close();
  });
});
