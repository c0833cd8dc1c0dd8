import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { openObjectStore, type ObjectStore } from '@metasync/store';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVariantSizes, LOOK_FOR_MISSING_BROTLI_MS } from './variant-sizes.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'variant-sizes-'));
  store = await openObjectStore({ dir });
  vi.useFakeTimers({ toFake: ['Date'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await rm(dir, { recursive: true, force: true });
});

const raw = Buffer.from(JSON.stringify({ packages: { 'acme/v': [{ description: 'v'.repeat(2000) }] } }));
const entry = { sha256: sha256Hex(raw), size: raw.length, mtime: 1_000 };

describe('variant sizes of served objects', () => {
  it('looks again for a missing brotli variant every 2 s, and finds it once the backfill made it', async () => {
    await store.put({ raw, deferBrotli: true });
    const sizes = createVariantSizes(store);
    expect(sizes.loadSync(entry)?.available).toEqual(['gzip']);
    expect(sizes.known(entry.sha256)).toBeDefined();
    vi.advanceTimersByTime(2_000);
    expect(sizes.known(entry.sha256)).toBeUndefined();
    await store.addBrotli([entry.sha256]);
    expect(sizes.loadSync(entry)?.available).toEqual(['br', 'gzip']);
    vi.advanceTimersByTime(LOOK_FOR_MISSING_BROTLI_MS);
    expect(sizes.known(entry.sha256)?.available).toEqual(['br', 'gzip']);
  });

  it('stops looking after a while: a variant that never comes costs no stat per request forever', async () => {
    await store.put({ raw, deferBrotli: true });
    const sizes = createVariantSizes(store);
    sizes.loadSync(entry);
    // Rechecked (the memo misses, so the caller stats again) until the window has passed since the first miss.
    for (let elapsed = 0; elapsed < LOOK_FOR_MISSING_BROTLI_MS; elapsed += 60_000) {
      vi.advanceTimersByTime(60_000);
      expect(sizes.known(entry.sha256)).toBeUndefined();
      sizes.loadSync(entry);
    }
    vi.advanceTimersByTime(60_000);
    expect(sizes.known(entry.sha256)?.available).toEqual(['gzip']);
  });
});
