import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMetasyncError, sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildChangesBatch } from './changes-batch.js';
import { openJournal, type Journal } from './journal.js';
import type { JournalEntry } from './record.js';

let dir: string;
let journal: Journal;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-changes-'));
  journal = (await openJournal({ dir, keepGenerations: 3, baseSeq: 0, baseTime: 0, log: createLogger({ name: 't', level: 'silent' }) }))
    .journal;
  // seq 1: a, b   seq 2: a   seq 3: c, d, e   seq 4: b deleted   seq 5: f
  const paths = [['a', 'b'], ['a'], ['c', 'd', 'e'], [], ['f']];
  for (const [index, names] of paths.entries()) {
    const seq = index + 1;
    const entries: JournalEntry[] = names.map((name) => ({
      path: `p2/acme/${name}.json`,
      sha256: sha256Hex(`${name}${seq}`),
      size: seq,
      mtime: seq * 1000,
      origin: 'api',
    }));
    if (seq === 4) entries.push({ path: 'p2/acme/b.json', deleted: true, mtime: 4000, origin: 'api' });
    await journal.append({ seq, time: seq * 1000, entries });
  }
});
afterEach(async () => {
  await journal.close();
  await rm(dir, { recursive: true, force: true });
});

describe('changes batch', () => {
  it('merges the kept generations last-write-wins with the commit time of `to`', () => {
    const batch = buildChangesBatch({ journal, since: 2, snapshotSeq: 0 });
    expect(batch).toMatchObject({ kind: 'changes', from: 2, to: 5, head: 5, time: 5000 });
    expect(batch.entries.map((e) => ('deleted' in e ? `-${e.path}` : e.path))).toEqual([
      'p2/acme/c.json',
      'p2/acme/d.json',
      'p2/acme/e.json',
      '-p2/acme/b.json',
      'p2/acme/f.json',
    ]);
  });

  it('stops at a generation boundary once the entry budget is reached, never splitting one', () => {
    const batch = buildChangesBatch({ journal, since: 2, snapshotSeq: 0, maxEntries: 2 });
    expect(batch.to).toBe(3);
    expect(batch.entries).toHaveLength(3);
    const next = buildChangesBatch({ journal, since: batch.to, snapshotSeq: 0, maxEntries: 2 });
    expect(next).toMatchObject({ from: 3, to: 5 });
  });

  it('asks for a resync below the retention and refuses a since ahead of the head', () => {
    const old = (() => {
      try {
        return buildChangesBatch({ journal, since: 1, snapshotSeq: 4 });
      } catch (err) {
        return err;
      }
    })();
    expect(isMetasyncError(old, 'METASYNC_ERR_SYNC_RESYNC_REQUIRED')).toBe(true);
    expect((old as { details: unknown }).details).toMatchObject({ oldestSeq: 2, snapshotSeq: 4 });
    expect(() => buildChangesBatch({ journal, since: 6, snapshotSeq: 0 })).toThrow(/ahead of the head/);
    expect(buildChangesBatch({ journal, since: 5, snapshotSeq: 0 })).toMatchObject({ from: 5, to: 5, entries: [] });
  });
});
