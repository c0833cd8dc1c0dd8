import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import PQueue from 'p-queue';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metasyncError, sha256Hex, type ChangesBatch } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { createBrotliBackfill, LIST_SHARDS_FROM, openObjectStore, type ObjectStore } from '@metasync/store';
import { openIndexLog, type IndexLog } from '../index/index-log.js';
import { createMetrics } from '../metrics.js';
import { applyChanges, type ApplyContext } from './apply.js';
import type { PrimaryClient } from './primary-client.js';

let dir: string;
let log: IndexLog;
let store: ObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'apply-'));
  log = (await openIndexLog(dir)).log;
  store = await openObjectStore({ dir: join(dir, 'objects') });
});
afterEach(async () => {
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

const objects = new Map<string, Buffer>();
function batchOf(from: number, files: Record<string, string>): ChangesBatch {
  const entries = Object.entries(files).map(([path, content]) => {
    const raw = Buffer.from(content);
    const sha256 = sha256Hex(raw);
    objects.set(sha256, raw);
    return { path, sha256, size: raw.length, mtime: 1_000 };
  });
  return { kind: 'changes', from, to: from + 1, head: from + 1, time: 1_000, entries };
}

function contextWith(overrides: { store?: ObjectStore; fetchObject?: PrimaryClient['fetchObject'] } = {}): ApplyContext {
  const client = {
    fetchObject: overrides.fetchObject ?? (async (sha256: string) => ({ raw: objects.get(sha256)!, wireBytes: 1 })),
    fetchPack: async () => ({ delivered: new Set<string>() }),
  } as unknown as PrimaryClient;
  return {
    log,
    store: overrides.store ?? store,
    client,
    queue: new PQueue({ concurrency: 4 }),
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ name: 'test', level: 'silent' }),
    objectAttempts: 3,
  };
}

describe('two-phase apply', () => {
  it('makes a batch visible only after all its objects are stored', async () => {
    const batch = batchOf(0, { 'p2/a/b.json': 'b', 'packages.json': '{}' });
    await applyChanges(contextWith(), batch);
    expect(log.state.seq).toBe(1);
    for (const entry of batch.entries) expect(await store.has((entry as { sha256: string }).sha256)).toBe(true);
  });

  it('leaves the served generation untouched when the disk is full, with METASYNC_ERR_STORE_NO_SPACE', async () => {
    await applyChanges(contextWith(), batchOf(0, { 'p2/a/b.json': 'b' }));
    const full: ObjectStore = {
      ...store,
      put: async () => {
        throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      },
    };
    await expect(applyChanges(contextWith({ store: full }), batchOf(1, { 'p2/a/b.json': 'b2', 'p2/a/c.json': 'c' }))).rejects.toMatchObject(
      {
        code: 'METASYNC_ERR_STORE_NO_SPACE',
      },
    );
    expect(log.state.seq).toBe(1);
    expect(log.state.lookup('p2/a/b.json')?.sha256).toBe(sha256Hex('b'));
    expect(log.state.lookup('p2/a/c.json') !== undefined).toBe(false);
  });

  it('retries an object whose bytes fail their hash, and fails the batch if they keep failing', async () => {
    let calls = 0;
    const liar: PrimaryClient['fetchObject'] = async (sha256) => {
      calls++;
      throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object ${sha256} hashes to something else`);
    };
    await expect(applyChanges(contextWith({ fetchObject: liar }), batchOf(0, { 'p2/a/b.json': 'b' }))).rejects.toMatchObject({
      code: 'METASYNC_ERR_OBJECT_HASH_MISMATCH',
    });
    expect(calls).toBe(3);
    expect(log.state.seq).toBe(0);
  });
});

describe('objects an earlier run left behind', () => {
  it('verifies present objects in its first apply and refetches a damaged one; once an apply committed, it trusts them', async () => {
    const left = JSON.stringify({ c: 'c'.repeat(200) });
    const leftSha = sha256Hex(left);
    // A put whose apply never reached its sync, then a power loss: the object's file holds other bytes.
    await store.put({ raw: Buffer.from(left) });
    await writeFile(store.pathOf(leftSha, 'gzip'), gzipSync(Buffer.alloc(left.length, '!')));
    const fetched: string[] = [];
    let verified = 0;
    const context = contextWith({
      store: { ...store, verify: (sha256) => (verified++, store.verify(sha256)) },
      fetchObject: async (sha256) => {
        fetched.push(sha256);
        return { raw: objects.get(sha256)!, wireBytes: 1 };
      },
    });
    await applyChanges(context, batchOf(0, { 'p2/a/c.json': left }));
    expect(fetched).toEqual([leftSha]);
    expect(verified).toBe(1);
    expect((await store.read(leftSha)).toString()).toBe(left);
    expect(await store.verify(leftSha)).toBe(true);

    const intact = JSON.stringify({ d: 'd'.repeat(200) });
    await store.put({ raw: Buffer.from(intact) });
    await applyChanges(context, batchOf(1, { 'p2/a/d.json': intact }));
    expect(fetched).toEqual([leftSha]);
    expect(verified).toBe(1);
    expect(log.state.lookup('p2/a/d.json')?.sha256).toBe(sha256Hex(intact));
  });

  it('a large apply skips looking for leftovers only of objects its shard listing saw no file of', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < LIST_SHARDS_FROM + 10; i++) files[`p2/big/p${i}.json`] = JSON.stringify({ i, pad: 'b'.repeat(200) });
    // A crashed removal's lone brotli file, of bytes other than the object's: it must not sit beside the new object.
    const stale = sha256Hex(files['p2/big/p7.json']!);
    await mkdir(dirname(store.pathOf(stale, 'br')), { recursive: true });
    await writeFile(store.pathOf(stale, 'br'), 'stale');
    // Brotli deferred (as a mirror runs): the put writes no brotli file that would replace the stale one.
    const brotliBackfill = createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), quietMs: 60_000 });
    await applyChanges({ ...contextWith(), trustPresent: true, brotliBackfill }, batchOf(0, files));
    expect(existsSync(store.pathOf(stale, 'br'))).toBe(false);
    await brotliBackfill.close();
    expect(await store.verify(stale)).toBe(true);
    expect((await store.read(sha256Hex(files['p2/big/p8.json']!))).toString()).toBe(files['p2/big/p8.json']);
  });

  it('hands the backfill no more hashes lacking brotli than it queues, and the count of the rest', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 7; i++) files[`p2/cap/p${i}.json`] = JSON.stringify({ i, pad: 'c'.repeat(300) });
    const backfill = createBrotliBackfill({ store, onError: (err) => expect.fail(String(err)), maxQueued: 3, quietMs: 60_000 });
    const handed: { listed: number; unlisted: number }[] = [];
    const recording = {
      ...backfill,
      add: (sha256s: Iterable<string>, unlisted = 0) => handed.push({ listed: [...sha256s].length, unlisted }),
    };
    await applyChanges({ ...contextWith(), trustPresent: true, brotliBackfill: recording }, batchOf(0, files));
    expect(handed).toEqual([{ listed: 3, unlisted: 4 }]);
    await backfill.close();
  });

  it('after a failed apply, verifies present objects again until an apply commits', async () => {
    let verified = 0;
    let failing = false;
    const context = contextWith({
      store: { ...store, verify: (sha256) => (verified++, store.verify(sha256)) },
      fetchObject: async (sha256) => {
        if (failing) throw metasyncError('METASYNC_ERR_SYNC_UNREACHABLE', 'primary went away', {});
        return { raw: objects.get(sha256)!, wireBytes: 1 };
      },
    });
    await applyChanges(context, batchOf(0, { 'p2/a/e.json': JSON.stringify({ e: 'e'.repeat(200) }) }));
    failing = true;
    await expect(applyChanges(context, batchOf(1, { 'p2/a/f.json': JSON.stringify({ f: 'f'.repeat(200) }) }))).rejects.toThrow();
    // What a failed put could leave (files are written in place): the object present, its bytes wrong.
    const left = JSON.stringify({ g: 'g'.repeat(200) });
    await store.put({ raw: Buffer.from(left) });
    await writeFile(store.pathOf(sha256Hex(left), 'gzip'), gzipSync(Buffer.alloc(left.length, '!')));
    failing = false;
    verified = 0;
    await applyChanges(context, batchOf(1, { 'p2/a/g.json': left }));
    expect(verified).toBe(1);
    expect((await store.read(sha256Hex(left))).toString()).toBe(left);
  });
});
