import * as fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '@metasync/shared';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { openObjectStore, type ObjectStore } from './store.js';

// The real writeFile, except that a write to a path ending in `failing` stores half its bytes and then fails
// as a full disk does: what an in-place write leaves when it breaks off.
let failing: string | undefined;
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  const writeFile = ((path: string, data: Buffer, options: fs.WriteFileOptions, callback: (err: Error | null) => void) => {
    if (failing === undefined || !String(path).endsWith(failing)) return actual.writeFile(path, data, options, callback);
    actual.writeFile(path, data.subarray(0, data.length >> 1), options, () =>
      callback(Object.assign(new Error(`ENOSPC: no space left on device, write '${path}'`), { code: 'ENOSPC' })),
    );
  }) as typeof actual.writeFile;
  return { ...actual, writeFile };
});

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-store-write-failure-'));
  store = await openObjectStore({ dir });
  failing = undefined;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a put whose write fails', () => {
  it('leaves no short file that would read as a present object, and a later put stores it whole', async () => {
    const raw = Buffer.from(JSON.stringify({ packages: { 'acme/full': [{ description: 'f'.repeat(2000) }] } }));
    const sha256 = sha256Hex(raw);
    failing = `${sha256.slice(2)}.gz`;
    const error = await store.put({ raw }).catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'METASYNC_ERR_STORE_NO_SPACE' });
    expect(fs.existsSync(store.pathOf(sha256, 'gzip'))).toBe(false);
    expect(await store.has(sha256)).toBe(false);
    expect(await store.presentAmong([sha256])).toEqual(new Set());

    failing = undefined;
    expect((await store.put({ raw })).created).toBe(true);
    expect(await store.verify(sha256)).toBe(true);
  });
});
