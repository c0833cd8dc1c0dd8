import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '@metasync/shared';
import { openObjectStore, type ObjectStore } from '@metasync/store';
import { openIndexLog, type IndexLog } from '../index/index-log.js';
import { collectGarbage } from './gc.js';

let dir: string;
let log: IndexLog;
let store: ObjectStore;
const GRACE_MS = 600_000;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gc-'));
  log = (await openIndexLog(dir)).log;
  store = await openObjectStore({ dir: join(dir, 'objects') });
});
afterEach(async () => {
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function publish(seq: number, path: string, content: string, appliedAt: number): Promise<string> {
  const raw = Buffer.from(content.repeat(40));
  const sha256 = sha256Hex(raw);
  await store.put({ sha256, raw });
  await log.commitBatch({
    from: seq - 1,
    to: seq,
    time: appliedAt,
    appliedAt,
    entries: [{ path, sha256, size: raw.length, mtime: appliedAt }],
  });
  return sha256;
}

describe('grace-window garbage collection', () => {
  it('keeps a dereferenced object for the whole grace window, then removes it', async () => {
    const old = await publish(1, 'p2/a/b.json', 'one', 1_000);
    await publish(2, 'p2/a/b.json', 'two', 2_000);
    expect(await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 2_000 + GRACE_MS - 1 })).toBe(0);
    expect(await store.has(old)).toBe(true);
    expect(await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 2_000 + GRACE_MS })).toBe(1);
    expect(await store.has(old)).toBe(false);
    expect(log.derefs).toEqual([]);
  });

  it('never removes an object a later generation references again', async () => {
    const one = await publish(1, 'p2/a/b.json', 'one', 1_000);
    await publish(2, 'p2/a/b.json', 'two', 2_000);
    await publish(3, 'p2/a/b.json', 'one', 3_000);
    await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 10_000_000 });
    expect(await store.has(one)).toBe(true);
  });

  it('gives an object dropped twice the grace window of its latest drop', async () => {
    const one = await publish(1, 'p2/a/b.json', 'one', 1_000);
    await publish(2, 'p2/a/b.json', 'two', 2_000);
    await publish(3, 'p2/a/b.json', 'one', 3_000);
    await publish(4, 'p2/a/b.json', 'three', 500_000);
    expect(await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 2_000 + GRACE_MS })).toBe(0);
    expect(await store.has(one)).toBe(true);
    expect(await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 500_000 + GRACE_MS })).toBeGreaterThan(0);
    expect(await store.has(one)).toBe(false);
  });

  it('remembers pending dereferences across a restart', async () => {
    const old = await publish(1, 'p2/a/b.json', 'one', 1_000);
    await publish(2, 'p2/a/b.json', 'two', 2_000);
    await log.close();
    log = (await openIndexLog(dir)).log;
    expect(log.derefs.map((d) => d.sha256)).toEqual([old]);
    expect(await collectGarbage({ log, store, graceMs: GRACE_MS, nowMs: 2_000 + GRACE_MS })).toBe(1);
  });
});
