import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '@metasync/shared';
import { openObjectStore, type ObjectStore } from './store.js';

let dir: string;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mirror-store-'));
  store = await openObjectStore(dir);
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const raw = Buffer.from(JSON.stringify({ packages: { 'acme/foo': [{ version: '1.0.0', description: 'x'.repeat(4000) }] } }));
const sha256 = sha256Hex(raw);

describe('mirror object store', () => {
  it('never rewrites the variant of an object that is already present (it may be served that instant)', async () => {
    await store.put({ sha256, raw });
    const before = await stat(store.pathOf(sha256, 'gzip'));
    await store.put({ sha256, raw });
    const after = await stat(store.pathOf(sha256, 'gzip'));
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('replaces a variant that a crashed put left behind without its raw file', async () => {
    await mkdir(join(dir, 'objects', sha256.slice(0, 2)), { recursive: true });
    await writeFile(store.pathOf(sha256, 'gzip'), 'half a gzip');
    await store.put({ sha256, raw });
    expect(gunzipSync(await readFile(store.pathOf(sha256, 'gzip'))).equals(raw)).toBe(true);
  });
});
