import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@metasync/shared/daemon';
import { decodeRecords } from '@metasync/shared/fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPrimaryCore, type PrimaryCore } from '../data-dir.js';

let dir: string;
let core: PrimaryCore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-snapshot-scheduler-'));
  core = await openPrimaryCore({
    dataDir: dir,
    signingKeyFile: undefined,
    keepGenerations: 1000,
    snapshotEveryGenerations: 1_000_000,
    snapshotIntervalMs: 3_600_000,
    log: createLogger({ name: 'test', level: 'silent' }),
  });
  await core.publisher.submit(
    Array.from({ length: 20 }, (_, i) => ({ path: `p2/acme/p${i}.json`, content: Buffer.from(`{"packages":{"acme/p${i}":[]}}`) })),
    'api',
  );
});

afterEach(async () => {
  await core.close();
  await rm(dir, { recursive: true, force: true });
});

/** The signed body a snapshot file holds (its first record). */
async function bodyOfFile(path: string): Promise<Buffer> {
  return decodeRecords(await readFile(path)).records[0]!;
}

describe('snapshot scheduler', () => {
  it('lets go of a body it signed only to write its file (at a million paths ~150 MB no mirror may ask for)', async () => {
    const { snapshots } = core;
    const written = await snapshots.take();
    expect(snapshots.heldBytes()).toBe(0);
    // A mirror's request signs and keeps it; the next file write of the same head reuses that one.
    const served = snapshots.current();
    expect(snapshots.heldBytes()).toBe(served.body.length);
    await snapshots.gzipped(served);
    expect(snapshots.heldBytes()).toBeGreaterThan(served.body.length);
    await core.publisher.submit([{ path: 'p2/acme/new.json', content: Buffer.from('{"packages":{"acme/new":[]}}') }], 'api');
    const again = snapshots.current();
    expect(again.seq).toBe(served.seq + 1);
    const rewritten = await snapshots.take();
    expect(rewritten.seq).toBe(again.seq);
    expect((await bodyOfFile(rewritten.path)).equals(again.body)).toBe(true);
    expect(snapshots.current()).toBe(again);
    // The first file's body is the same snapshot as the one signed later for its seq.
    expect((await bodyOfFile(written.path)).equals(served.body)).toBe(true);
  });
});
