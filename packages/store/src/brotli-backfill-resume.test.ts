import { access, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createBrotliBackfill } from './brotli-backfill.js';
import { openObjectStore, variantsOf, type ObjectStore } from './store.js';

let dir: string;
let marker: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-backfill-resume-'));
  store = await openObjectStore({ dir: join(dir, 'objects') });
  marker = join(dir, 'owed');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

async function putDeferred(count: number): Promise<string[]> {
  const hashes: string[] = [];
  for (let index = 0; index < count; index++) {
    const raw = Buffer.from(JSON.stringify({ packages: { [`acme/p${index}`]: [{ description: 'x '.repeat(400 + index) }] } }));
    const sha256 = sha256Hex(raw);
    await store.put({ raw, sha256, deferBrotli: true });
    hashes.push(sha256);
  }
  return hashes;
}

const withBrotli = async (hashes: string[]): Promise<number> =>
  (await Promise.all(hashes.map((sha256) => variantsOf(store, sha256)))).filter((sizes) => sizes.brSize !== undefined).length;

describe('brotli work owed across a restart', () => {
  it('the owed file exists while work is queued or dropped, and a stop with work left keeps it', async () => {
    const hashes = await putDeferred(6);
    const backfill = createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 0 });
    backfill.add(hashes.slice(0, 3));
    await backfill.idle();
    expect(await withBrotli(hashes)).toBe(3);
    expect(await exists(marker)).toBe(false);
    // Queued, then stopped before its quiet period ended: the file stays for the next start.
    const stopped = createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 60_000 });
    stopped.add(hashes.slice(3));
    await stopped.close();
    expect(await withBrotli(hashes)).toBe(3);
    expect(await exists(marker)).toBe(true);
  });

  it('a backfill started while the owed file exists sweeps the store without being given a hash, then removes it', async () => {
    const hashes = await putDeferred(5);
    await writeFile(marker, '');
    const backfill = createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 0 });
    await backfill.idle();
    expect(await withBrotli(hashes)).toBe(5);
    expect(backfill.sweeps()).toBe(1);
    expect(await exists(marker)).toBe(false);
    await backfill.close();
  });

  it('the sweep a start owes waits for quiet like any other work, and close() ends the wait', async () => {
    const hashes = await putDeferred(3);
    await writeFile(marker, '');
    const backfill = createBrotliBackfill({
      store,
      pendingMarkerPath: marker,
      onError: (err) => expect.fail(String(err)),
      quietMs: 60_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await withBrotli(hashes)).toBe(0);
    await backfill.close();
    expect(await withBrotli(hashes)).toBe(0);
    expect(await exists(marker)).toBe(true);
  });

  it('work that failed keeps the owed file, so the next start sweeps for it', async () => {
    const hashes = await putDeferred(2);
    const errors: unknown[] = [];
    const failing = { ...store, addBrotli: () => Promise.reject(new Error('ENOSPC: no space left on device')) };
    const backfill = createBrotliBackfill({ store: failing, pendingMarkerPath: marker, onError: (err) => errors.push(err), quietMs: 0 });
    backfill.add(hashes);
    await backfill.idle();
    expect(errors).toHaveLength(1);
    expect(await exists(marker)).toBe(true);
    await backfill.close();
  });

  it('without the owed file a start sweeps nothing', async () => {
    const hashes = await putDeferred(2);
    const backfill = createBrotliBackfill({ store, pendingMarkerPath: marker, onError: (err) => expect.fail(String(err)), quietMs: 0 });
    await backfill.idle();
    expect(backfill.sweeps()).toBe(0);
    expect(await withBrotli(hashes)).toBe(0);
    await backfill.close();
  });
});
