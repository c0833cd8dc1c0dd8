import { join } from 'node:path';
import { SYNC_ROUTES, isDeletion, sha256Hex, type ChangesBatch, type Snapshot } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, describe, expect, it } from 'vitest';
import { createObjectGc } from '../src/store/gc.js';
import { publish, startTestPrimary, type TestPrimary } from './primary-fixture.js';

/**
 * After a collection, what the sync API offers must still be fetchable:
 * a mirror bootstrapping from the snapshot, and a mirror catching up from the
 * oldest seq the journal answers, one generation per batch (so it needs every
 * intermediate generation's objects, not only the head's).
 */
const log = createLogger({ name: 'object-gc-sync-test', level: 'silent' });
const PACKAGES = 10;
const VERSIONS = 6;
const KEEP_GENERATIONS = 20;

let primary: TestPrimary | undefined;
afterEach(async () => {
  await primary?.close();
  primary = undefined;
});

const pathOf = (k: number) => `p2/acme/pkg${k}.json`;
const contentOf = (k: number, v: number) =>
  JSON.stringify({
    packages: { [`acme/pkg${k}`]: [{ version: `${v}.0.0`, dist: { url: `https://example.test/${k}/${v}.zip`, type: 'zip' } }] },
  });

async function fetchObject(p: TestPrimary, sha256: string): Promise<{ status: number; sha256: string }> {
  const response = await p.app.inject({ method: 'GET', url: `${SYNC_ROUTES.objects}/${sha256}` });
  return { status: response.statusCode, sha256: sha256Hex(response.rawPayload) };
}

describe('primary object GC through the sync API', () => {
  it('after a collection, a bootstrapping mirror and a mirror catching up in one-generation batches still get every object they are offered', async () => {
    const p = (primary = await startTestPrimary({ keepGenerations: KEEP_GENERATIONS }));
    // seq = (v - 1) * PACKAGES + k + 1: versions 1-3 up to seq 30, a snapshot file there, versions 4-6 after.
    for (let v = 1; v <= VERSIONS; v++) {
      for (let k = 0; k < PACKAGES; k++) await publish(p, pathOf(k), contentOf(k, v));
      if (v === 3) await p.core.snapshots.take();
    }
    const journal = p.core.publisher.journal;
    expect(journal.headSeq()).toBe(PACKAGES * VERSIONS);
    expect(journal.oldestSeq()).toBe(PACKAGES * VERSIONS - KEEP_GENERATIONS);

    const gc = createObjectGc({
      publisher: p.core.publisher,
      manifest: p.core.manifest,
      snapshotDir: join(p.dataDir, 'snapshots'),
      graceMs: 0,
      intervalMs: 0,
      shardsPerRun: 256,
      log,
    });
    await gc.runOnce();
    const run = await gc.runOnce();
    await gc.close();
    // Versions 1, 2 and 4 are named by no root: 3 is in the snapshot file, 5 in the journal window, 6 is the head.
    expect(run.deleted).toBe(3 * PACKAGES);
    for (let k = 0; k < PACKAGES; k++) {
      for (const v of [1, 2, 4]) expect((await fetchObject(p, sha256Hex(Buffer.from(contentOf(k, v))))).status).toBe(404);
      for (const v of [3, 5, 6]) expect((await fetchObject(p, sha256Hex(Buffer.from(contentOf(k, v))))).status).toBe(200);
    }

    const snapshotResponse = await p.app.inject({ method: 'GET', url: SYNC_ROUTES.snapshot });
    expect(snapshotResponse.statusCode).toBe(200);
    const snapshot = JSON.parse(snapshotResponse.body) as Snapshot;
    expect(snapshot.entries).toHaveLength(PACKAGES);
    for (const entry of snapshot.entries) expect(await fetchObject(p, entry.sha256)).toEqual({ status: 200, sha256: entry.sha256 });

    let since = journal.oldestSeq();
    let fetched = 0;
    for (let round = 0; round < KEEP_GENERATIONS + 1 && since < journal.headSeq(); round++) {
      const response = await p.app.inject({ method: 'GET', url: `${SYNC_ROUTES.changes}?since=${since}&limit=1` });
      expect(response.statusCode).toBe(200);
      const batch = JSON.parse(response.body) as ChangesBatch;
      expect(batch.to).toBe(since + 1);
      for (const entry of batch.entries) {
        if (isDeletion(entry)) continue;
        expect(await fetchObject(p, entry.sha256)).toEqual({ status: 200, sha256: entry.sha256 });
        fetched++;
      }
      since = batch.to;
    }
    expect(since).toBe(journal.headSeq());
    expect(fetched).toBe(KEEP_GENERATIONS);
  });
});
