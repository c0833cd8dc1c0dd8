import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openArchiveStore, type ArchiveStore } from './archive-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-archives-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(store: ArchiveStore, key: string, bytes: Buffer) {
  const tmpPath = store.tmpPath();
  await writeFile(tmpPath, bytes);
  return store.commit(key, { tmpPath, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length });
}

describe('archive store', () => {
  it('evicts the least recently served archives past the budget, keeping what was just used', async () => {
    const evicted: string[] = [];
    const store = await openArchiveStore({ dir, budgetBytes: 250, onEvict: (key) => evicted.push(key) });
    await put(store, 'acme/a/1.zip', Buffer.alloc(100, 1));
    await put(store, 'acme/b/2.zip', Buffer.alloc(100, 2));
    expect(store.get('acme/a/1.zip')).toBeDefined(); // a is now the most recently used
    await put(store, 'acme/c/3.zip', Buffer.alloc(100, 3));
    expect(evicted).toEqual(['acme/b/2.zip']);
    expect(store.get('acme/b/2.zip')).toBeUndefined();
    expect(store.totalBytes()).toBe(200);
    const a = store.get('acme/a/1.zip')!;
    expect(await readFile(store.pathOf(a.sha256))).toEqual(Buffer.alloc(100, 1));
  });

  it('reopens with the same archives, and two names for the same bytes share one file', async () => {
    const first = await openArchiveStore({ dir, budgetBytes: 1_000 });
    await put(first, 'acme/a/1.zip', Buffer.from('same'));
    await put(first, 'acme/a/2.zip', Buffer.from('same'));
    expect(first.totalBytes()).toBe(4);
    await first.forget('acme/a/1.zip');
    const again = await openArchiveStore({ dir, budgetBytes: 1_000 });
    expect(again.count()).toBe(1);
    const entry = again.get('acme/a/2.zip')!;
    expect(await readFile(again.pathOf(entry.sha256), 'utf8')).toBe('same');
  });
});
