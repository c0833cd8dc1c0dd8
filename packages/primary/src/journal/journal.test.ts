import { appendFile, mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMetasyncError, sha256Hex } from '@metasync/shared';
import { createLogger } from '@metasync/shared/daemon';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openJournal, type Journal } from './journal.js';
import { encodeGeneration, type JournalGeneration } from './record.js';
import { listSegments } from './segments.js';

const log = createLogger({ name: 'test', level: 'silent' });
let dir: string;
const open: Journal[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'metasync-journal-'));
});
afterEach(async () => {
  for (const journal of open.splice(0)) await journal.close();
  await rm(dir, { recursive: true, force: true });
});

function generation(seq: number): JournalGeneration {
  return {
    seq,
    time: 1_700_000_000_000 + seq,
    entries: [
      { path: `p2/acme/pkg${seq}.json`, sha256: sha256Hex(String(seq)), size: 10 + seq, mtime: 1_700_000_000_000 + seq, origin: 'api' },
    ],
  };
}

async function openIn(options: { keepGenerations?: number; keepEntries?: number; segmentMaxBytes?: number; baseSeq?: number } = {}) {
  const replayed: JournalGeneration[] = [];
  const opened = await openJournal({
    onReplay: (generation) => replayed.push(generation),
    dir,
    keepGenerations: options.keepGenerations ?? 1000,
    ...(options.keepEntries === undefined ? {} : { keepEntries: options.keepEntries }),
    baseSeq: options.baseSeq ?? 0,
    baseTime: 0,
    log,
    ...(options.segmentMaxBytes === undefined ? {} : { segmentMaxBytes: options.segmentMaxBytes }),
  });
  open.push(opened.journal);
  expect(opened.replayed).toBe(replayed.length);
  return { journal: opened.journal, replayed };
}

async function closeAll(): Promise<void> {
  for (const journal of open.splice(0)) await journal.close();
}

async function writeGenerations(count: number, options: { segmentMaxBytes?: number; keepGenerations?: number } = {}): Promise<Journal> {
  const { journal } = await openIn(options);
  for (let seq = journal.headSeq() + 1; seq <= count; seq++) await journal.append(generation(seq));
  return journal;
}

async function onlySegmentPath(): Promise<string> {
  const segments = await listSegments(dir);
  expect(segments).toHaveLength(1);
  return (segments[0] as { path: string }).path;
}

describe('journal', () => {
  it('replays every appended generation in order after reopening', async () => {
    await writeGenerations(5);
    await closeAll();
    const { journal, replayed } = await openIn();
    expect(replayed).toEqual([1, 2, 3, 4, 5].map(generation));
    expect(journal.headSeq()).toBe(5);
    expect(journal.headTime()).toBe(generation(5).time);
    expect([...journal.generationsAfter(3)].map((g) => g.seq)).toEqual([4, 5]);
  });

  it('refuses an append whose seq is not head + 1', async () => {
    const journal = await writeGenerations(2);
    await expect(journal.append(generation(4))).rejects.toThrow(/expected 3/);
  });

  it('cuts a torn tail at every byte offset of the last record and reuses only that unacknowledged seq', async () => {
    await writeGenerations(3);
    await closeAll();
    const path = await onlySegmentPath();
    const full = await readFile(path);
    const lastRecordStart = full.length - encodeGeneration(generation(3)).length;
    for (let cut = lastRecordStart; cut < full.length; cut++) {
      await writeFile(path, full.subarray(0, cut));
      const { journal, replayed } = await openIn();
      expect(replayed.map((g) => g.seq)).toEqual([1, 2]);
      expect(journal.headSeq()).toBe(2);
      const replacement = { ...generation(3), entries: [{ ...generation(3).entries[0]!, size: 999 }] };
      await journal.append(replacement);
      await closeAll();
      const reopened = await openIn();
      expect(reopened.replayed.map((g) => g.seq)).toEqual([1, 2, 3]);
      expect(reopened.replayed[2]).toEqual(replacement);
      await closeAll();
    }
  });

  it('treats a zero-filled or garbage tail as torn', async () => {
    await writeGenerations(2);
    await closeAll();
    const path = await onlySegmentPath();
    await appendFile(path, Buffer.alloc(4096));
    expect((await openIn()).replayed.map((g) => g.seq)).toEqual([1, 2]);
    await closeAll();
    await appendFile(path, Buffer.from('{"seq":3,"ti'));
    expect((await openIn()).replayed.map((g) => g.seq)).toEqual([1, 2]);
  });

  it('fails with METASYNC_ERR_JOURNAL_CORRUPT on a bad record in the middle of the log', async () => {
    await writeGenerations(5);
    await closeAll();
    const path = await onlySegmentPath();
    const data = await readFile(path);
    const secondRecordPayload = encodeGeneration(generation(1)).length + 8 + 5;
    data[secondRecordPayload] = (data[secondRecordPayload] ?? 0) ^ 0xff;
    await writeFile(path, data);
    const error = await openIn().catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_JOURNAL_CORRUPT')).toBe(true);
    expect(await readFile(path)).toEqual(data);
  });

  it('fails with METASYNC_ERR_JOURNAL_CORRUPT when a segment other than the last has a bad tail', async () => {
    await writeGenerations(6, { segmentMaxBytes: 300 });
    await closeAll();
    const segments = await listSegments(dir);
    expect(segments.length).toBeGreaterThan(2);
    const first = (segments[0] as { path: string }).path;
    await truncate(first, (await readFile(first)).length - 3);
    const error = await openIn({ segmentMaxBytes: 300 }).catch((err: unknown) => err);
    expect(isMetasyncError(error, 'METASYNC_ERR_JOURNAL_CORRUPT')).toBe(true);
  });

  it('keeps the configured number of generations and refuses older history', async () => {
    const journal = await writeGenerations(10, { keepGenerations: 3 });
    expect(journal.oldestSeq()).toBe(7);
    expect([...journal.generationsAfter(7)].map((g) => g.seq)).toEqual([8, 9, 10]);
    expect(() => journal.generationsAfter(6)).toThrow(RangeError);
    await closeAll();
    const reopened = await openIn({ keepGenerations: 3 });
    expect(reopened.journal.oldestSeq()).toBe(7);
  });

  it('drops whole segments once a snapshot covers them, and replays from that snapshot', async () => {
    const journal = await writeGenerations(12, { segmentMaxBytes: 300, keepGenerations: 2 });
    const before = (await readdir(dir)).length;
    const dropped = await journal.dropSegmentsCoveredBy(Math.min(10, journal.oldestSeq()));
    expect(dropped).toBeGreaterThan(0);
    expect((await readdir(dir)).length).toBe(before - dropped);
    await closeAll();
    const { replayed, journal: reopened } = await openIn({ segmentMaxBytes: 300, keepGenerations: 2, baseSeq: 10 });
    expect(replayed[0]!.seq).toBeLessThanOrEqual(11);
    expect(reopened.headSeq()).toBe(12);
    await closeAll();
    const missingSnapshot = await openIn({ segmentMaxBytes: 300, keepGenerations: 2, baseSeq: 0 }).catch((err: unknown) => err);
    expect(isMetasyncError(missingSnapshot, 'METASYNC_ERR_JOURNAL_CORRUPT')).toBe(true);
  });

  it('keeps at most keepEntries entries in memory, always the newest generation, and says older asks need a resync', async () => {
    const { journal } = await openIn({ keepGenerations: 1000, keepEntries: 25 });
    const wide = (seq: number, width: number): JournalGeneration => ({
      seq,
      time: 1_700_000_000_000 + seq,
      entries: Array.from({ length: width }, (_, i) => ({
        path: `p2/acme/pkg${seq}-${i}.json`,
        sha256: sha256Hex(`${seq}-${i}`),
        size: 1,
        mtime: 1,
        origin: 'watch' as const,
      })),
    });
    for (let seq = 1; seq <= 5; seq++) await journal.append(wide(seq, 10));
    // 5 x 10 entries with room for 25: generations 4 and 5 (20 entries) stay, 3 would make 30.
    expect(journal.oldestSeq()).toBe(3);
    expect([...journal.generationsAfter(3)].map((g) => g.seq)).toEqual([4, 5]);
    expect(() => journal.generationsAfter(2)).toThrow(RangeError);
    await journal.append(wide(6, 40)); // alone over the cap: still kept, as the newest
    expect(journal.oldestSeq()).toBe(5);
    expect([...journal.generationsAfter(5)].map((g) => g.seq)).toEqual([6]);
    await closeAll();
    // Replay applies the same cap.
    const reopened = await openIn({ keepGenerations: 1000, keepEntries: 25 });
    expect(reopened.journal.oldestSeq()).toBe(5);
    expect(reopened.replayed.map((g) => g.seq)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a generation its history cannot hold before writing it: nothing becomes durable, the head stays', async () => {
    const journal = await writeGenerations(2);
    const bad = generation(3);
    bad.entries = [{ ...bad.entries[0]!, sha256: 'A'.repeat(64) }];
    await expect(journal.append(bad)).rejects.toThrow(/lower-case hex/);
    expect(journal.headSeq()).toBe(2);
    await journal.append(generation(3));
    await closeAll();
    const reopened = await openIn();
    expect(reopened.replayed.map((g) => g.seq)).toEqual([1, 2, 3]);
    expect(reopened.replayed[2]!.entries[0]!).toMatchObject({ sha256: sha256Hex('3') });
  });
});
