import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import type { ObjectStore } from '@metasync/store';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPrimaryMetrics } from '../src/metrics.js';
import { createObjectGc, type ObjectGc, type ObjectGcOptions, type ObjectGcRun } from '../src/store/gc.js';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

const log = createLogger({ name: 'object-gc-test', level: 'silent' });
const GRACE_MS = 60_000;
const P = 'p2/acme/foo.json';

let primary: TestPrimary | undefined;
let gcs: ObjectGc[] = [];
let clockMs = 1_700_000_000_000;
const now = () => clockMs;

afterEach(async () => {
  vi.useRealTimers();
  for (const gc of gcs) await gc.close();
  gcs = [];
  await primary?.close();
  primary = undefined;
});

async function setUp(keepGenerations: number): Promise<TestPrimary> {
  primary = await startTestPrimary({ keepGenerations });
  return primary;
}

function gcOf(target: TestPrimary, overrides: Partial<ObjectGcOptions> = {}): ObjectGc {
  const gc = createObjectGc({
    publisher: target.core.publisher,
    manifest: target.core.manifest,
    snapshotDir: join(target.dataDir, 'snapshots'),
    graceMs: GRACE_MS,
    intervalMs: 0,
    shardsPerRun: 256,
    log,
    now,
    ...overrides,
  });
  gcs.push(gc);
  return gc;
}

const shaOf = (text: string) => sha256Hex(Buffer.from(text));
const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );
/** Whether the object's gzip and brotli files exist (an object keeping a gzip variant has no raw file). */
const filesOf = (store: ObjectStore, text: string) =>
  Promise.all((['gzip', 'br'] as const).map((encoding) => exists(store.pathOf(shaOf(text), encoding))));
const bytesOf = async (store: ObjectStore, text: string) =>
  (await stat(store.pathOf(shaOf(text), 'gzip'))).size + (await stat(store.pathOf(shaOf(text), 'br'))).size;

async function expectIntact(store: ObjectStore, text: string): Promise<void> {
  const sha256 = shaOf(text);
  expect((await store.read(sha256)).toString()).toBe(text);
  expect(gunzipSync(await store.readVariant(sha256, 'gzip')).toString()).toBe(text);
  expect(brotliDecompressSync(await store.readVariant(sha256, 'br')).toString()).toBe(text);
}

// Long and repetitive enough (>= 64 bytes, compressible) that the store keeps both compressed variants.
const version = (n: number) => JSON.stringify({ packages: { 'acme/foo': [{ version: `1.0.${n}`, description: 'padding '.repeat(16) }] } });

describe('primary object GC', () => {
  it('deletes a superseded object (gzip, brotli) once it has been unreferenced for the grace period, not a millisecond before', async () => {
    const p = await setUp(1);
    const store = p.core.publisher.store;
    for (const n of [1, 2, 3]) await publish(p, P, version(n));
    const gc = gcOf(p);
    expect((await gc.runOnce()).deleted).toBe(0);
    clockMs += GRACE_MS - 1;
    expect((await gc.runOnce()).deleted).toBe(0);
    expect(await filesOf(store, version(1))).toEqual([true, true]);
    const stored = (await bytesOf(store, version(1))) + (await bytesOf(store, version(2)));
    clockMs += 1;
    const run = await gc.runOnce();
    expect(run.deleted).toBe(2);
    expect(run.bytesFreed).toBe(stored);
    expect(await filesOf(store, version(1))).toEqual([false, false]);
    expect(await filesOf(store, version(2))).toEqual([false, false]);
    await expectIntact(store, version(3));
  });

  it('keeps an object a kept snapshot file names, and collects it after the snapshot is pruned', async () => {
    const p = await setUp(1);
    const store = p.core.publisher.store;
    await publish(p, P, version(1));
    await p.core.snapshots.take();
    for (const n of [2, 3]) await publish(p, P, version(n));
    const gc = gcOf(p);
    await gc.runOnce();
    clockMs += GRACE_MS;
    expect((await gc.runOnce()).deleted).toBe(1);
    expect(await filesOf(store, version(2))).toEqual([false, false]);
    await expectIntact(store, version(1));
    // Three newer snapshots (the core keeps three files) push the seq-1 snapshot out.
    for (const n of [4, 5, 6]) {
      await publish(p, P, version(n));
      await p.core.snapshots.take();
    }
    await gc.runOnce();
    await expectIntact(store, version(1));
    clockMs += GRACE_MS;
    await gc.runOnce();
    expect(await filesOf(store, version(1))).toEqual([false, false]);
    await expectIntact(store, version(6));
  });

  it('keeps objects of journal records `changes?since=` still answers, and collects them once the window moves on', async () => {
    const p = await setUp(3);
    const store = p.core.publisher.store;
    for (const n of [1, 2, 3]) await publish(p, P, version(n));
    const gc = gcOf(p);
    await gc.runOnce();
    clockMs += GRACE_MS * 10;
    expect((await gc.runOnce()).deleted).toBe(0);
    for (const n of [1, 2]) await expectIntact(store, version(n));
    for (const n of [1, 2, 3]) await publish(p, 'p2/acme/other.json', version(100 + n));
    await gc.runOnce();
    clockMs += GRACE_MS;
    expect((await gc.runOnce()).deleted).toBe(2);
    expect(await filesOf(store, version(1))).toEqual([false, false]);
  });

  it('forgets a candidate whose files went by other means (an operator), so it is not counted or unlinked later', async () => {
    const p = await setUp(1);
    for (const n of [1, 2, 3]) await publish(p, P, version(n));
    const gc = gcOf(p);
    expect((await gc.runOnce()).candidates).toBe(2);
    await p.core.publisher.store.remove(shaOf(version(1)));
    expect((await gc.runOnce()).candidates).toBe(1);
    clockMs += GRACE_MS;
    expect((await gc.runOnce()).deleted).toBe(1);
    expect((await gc.runOnce()).candidates).toBe(0);
    await expectIntact(p.core.publisher.store, version(3));
  });

  it('a restart never deletes early: a new collector restarts every grace clock', async () => {
    const p = await setUp(1);
    for (const n of [1, 2]) await publish(p, P, version(n));
    await gcOf(p).runOnce();
    clockMs += GRACE_MS;
    const restarted = gcOf(p);
    expect((await restarted.runOnce()).deleted).toBe(0);
    clockMs += GRACE_MS - 1;
    expect((await restarted.runOnce()).deleted).toBe(0);
    clockMs += 1;
    expect((await restarted.runOnce()).deleted).toBe(1);
  });

  it('tracks at most maxCandidates unreferenced objects; the rest wait for a later pass instead of being deleted untracked', async () => {
    const p = await setUp(1);
    for (const n of [1, 2, 3, 4]) await publish(p, P, version(n));
    const gc = gcOf(p, { maxCandidates: 1 });
    const deletedPerRun: number[] = [];
    for (let run = 0; run < 8; run++) {
      const report = await gc.runOnce();
      expect(report.candidates).toBeLessThanOrEqual(1);
      deletedPerRun.push(report.deleted);
      clockMs += GRACE_MS;
    }
    // Tracked one at a time: each waits out a full grace after its first sighting, then goes (the next may be
    // first seen later in the same run, when its shards come after the deleted one's).
    expect(deletedPerRun[0]).toBe(0);
    expect(deletedPerRun.every((deleted) => deleted <= 1)).toBe(true);
    expect(deletedPerRun.reduce((sum, deleted) => sum + deleted, 0)).toBe(3);
    for (const n of [1, 2, 3]) expect(await filesOf(p.core.publisher.store, version(n))).toEqual([false, false]);
    await expectIntact(p.core.publisher.store, version(4));
  });

  it('an object re-referenced by a commit loses its candidacy: its grace restarts when it is dropped again', async () => {
    const p = await setUp(1);
    for (const n of [1, 2]) await publish(p, P, version(n));
    const gc = gcOf(p);
    await gc.runOnce();
    clockMs += GRACE_MS - 10;
    await publish(p, P, version(1));
    await publish(p, P, version(3));
    await gc.runOnce();
    clockMs += 10;
    await gc.runOnce();
    await expectIntact(p.core.publisher.store, version(1));
  });

  it('never loses the current object when a publish of the same content races the collection of it', async () => {
    const p = await setUp(1);
    const store = p.core.publisher.store;
    // Deterministic worst case: the re-publish arrives right after the GC claimed the object for removal.
    let republishing: Promise<unknown> | undefined;
    const racedStore: ObjectStore = {
      ...store,
      remove(sha256) {
        const removal = store.remove(sha256);
        if (sha256 === shaOf(version(1))) republishing ??= publish(p, P, version(1));
        return removal;
      },
    };
    for (const n of [1, 2]) await publish(p, P, version(n));
    const gc = gcOf(p, { publisher: { ...p.core.publisher, store: racedStore } });
    await gc.runOnce();
    clockMs += GRACE_MS;
    expect((await gc.runOnce()).deleted).toBe(1);
    expect(republishing).toBeDefined();
    await republishing;
    expect(p.core.publisher.getEntry(P)?.sha256).toBe(shaOf(version(1)));
    await expectIntact(store, version(1));

    // And every other interleaving over a few ticks: a publish of the superseded content against a run that collects it.
    const raceGc = gcOf(p, { graceMs: 0 });
    for (let delayTicks = 0; delayTicks < 30; delayTicks++) {
      const [older, newer] = [version(1000 + 2 * delayTicks), version(1001 + 2 * delayTicks)];
      await publish(p, P, older);
      await publish(p, P, newer);
      await raceGc.runOnce(); // older is now a candidate; the next run may delete it
      const collecting = raceGc.runOnce();
      for (let tick = 0; tick < delayTicks; tick++) await new Promise((resolve) => setImmediate(resolve));
      await Promise.all([collecting, publish(p, P, older)]);
      expect(p.core.publisher.getEntry(P)?.sha256).toBe(shaOf(older));
      await expectIntact(store, older);
    }
  });

  it('runs on its interval and stops on close', async () => {
    const p = await setUp(1);
    for (const n of [1, 2]) await publish(p, P, version(n));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const gc = gcOf(p, { graceMs: 0, intervalMs: 60_000 });
    const nextRun = () =>
      new Promise<ObjectGcRun>((resolve) => {
        const off = gc.onRun((run) => {
          off();
          resolve(run);
        });
      });
    gc.start();
    expect(vi.getTimerCount()).toBe(1);
    let run = nextRun();
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await run).deleted).toBe(0); // first sighting starts the (zero) grace clock
    await vi.waitUntil(() => vi.getTimerCount() === 1); // the next run is scheduled once this one settled
    run = nextRun();
    await vi.advanceTimersByTimeAsync(60_000);
    expect((await run).deleted).toBe(1);
    await gc.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('counts runs, deleted objects and freed bytes in Prometheus', async () => {
    const p = await setUp(1);
    for (const n of [1, 2]) await publish(p, P, version(n));
    const gc = gcOf(p, { graceMs: 0 });
    const metrics = createPrimaryMetrics({ publisher: p.core.publisher, connectedMirrors: () => 0, objectGc: gc });
    await gc.runOnce();
    const run = await gc.runOnce();
    const text = await metrics.registry.metrics();
    metrics.close();
    expect(text).toMatch(/^metasync_object_gc_runs_total 2$/m);
    expect(text).toMatch(/^metasync_object_gc_deleted_objects_total 1$/m);
    expect(text).toContain(`metasync_object_gc_freed_bytes_total ${run.bytesFreed}`);
    expect(run.bytesFreed).toBeGreaterThan(0);
  });
});
