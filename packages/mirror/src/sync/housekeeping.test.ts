import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '@metasync/shared/daemon';
import { openObjectStore, type ObjectStore } from '@metasync/store';
import { openIndexLog, type IndexLog } from '../index/index-log.js';
import { runHousekeeping } from './housekeeping.js';

/** Counts the memory releases the code under test asks for. */
const released = { calls: 0, release: () => void released.calls++ };

let dir: string;
let log: IndexLog;
let store: ObjectStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'housekeeping-'));
  log = (await openIndexLog(dir)).log;
  store = await openObjectStore({ dir: join(dir, 'objects') });
  released.calls = 0;
});
afterEach(async () => {
  await log.close();
  await rm(dir, { recursive: true, force: true });
});

async function commitPaths(count: number): Promise<void> {
  const entries = Array.from({ length: count }, (_, i) => ({
    path: `p2/vendor${i % 97}/package-${i}.json`,
    sha256: i.toString(16).padStart(64, '0'),
    size: 100 + i,
    mtime: 1_000,
  }));
  await log.commitBatch({ from: log.state.seq, to: log.state.seq + 1, time: 1_000, appliedAt: 1_000, entries });
}

describe('housekeeping', () => {
  const logger = createLogger({ name: 'housekeeping-test', level: 'silent' });

  it('gives the memory of a compaction back: the base text of every path is garbage once written', async () => {
    await commitPaths(12_000); // over 1 MiB of log: compaction is due
    expect(log.logBytes()).toBeGreaterThan(1024 * 1024);
    await runHousekeeping({ log, store, gcGraceMs: 600_000, logger, release: released.release });
    expect(log.logBytes()).toBe(0);
    expect(released.calls).toBe(1);
  });

  it('leaves memory alone when there was nothing to compact', async () => {
    await commitPaths(10);
    await runHousekeeping({ log, store, gcGraceMs: 600_000, logger, release: released.release });
    expect(log.logBytes()).toBeGreaterThan(0);
    expect(released.calls).toBe(0);
  });
});
