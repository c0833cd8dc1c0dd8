import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno, metasyncError } from '@metasync/shared';
import type { Logger } from '@metasync/shared/daemon';
import { fsyncDir } from '@metasync/shared/fs';
import { forEachPackedObject, packGeneration, unpackGeneration, type PackedGeneration } from './packed-generation.js';
import { encodeGeneration, type JournalGeneration } from './record.js';
import { listSegments, readSegment, segmentName, type SegmentFile } from './segments.js';

/**
 * The durable, append-only history of generations.
 *
 *   snapshot S (full manifest)      segments: [s1: 1..400] [s2: 401..812] [s3: 813..head]  <- appends
 *   replay = snapshot S + every journal generation with seq > S
 *
 * `append` returns once the record is fsynced: only then may the publisher
 * resolve submits or announce the seq. A crash mid-append leaves a torn tail,
 * which `openJournal` cuts off. Cutting is safe, and re-using that seq for a
 * different generation later is safe, because a torn record was by
 * construction never fsynced, so no submit was acknowledged for it and no
 * mirror or client was ever told its seq: no one can hold the old content.
 * A record that was written completely but not yet fsynced when the process
 * died survives in the page cache and is simply replayed as committed.
 *
 * Retention: generations with seq <= head - keepGenerations are no longer
 * offered (`oldestSeq`), nor are older generations once the newer ones kept
 * hold `keepEntries` entries: the history lives in memory, packed (about 40
 * bytes an entry beyond its path), and one ingest of a million-path tree must
 * not keep a million entries there (a mirror that far behind resyncs from a
 * snapshot, which is smaller than those deltas). Whole segments are deleted
 * once a snapshot covers them (`dropSegmentsCoveredBy`), so replay always
 * starts from a snapshot.
 */
export interface JournalOptions {
  dir: string;
  keepGenerations: number;
  /** Most entries the kept generations hold (at least the newest generation is kept). Default 200,000. */
  keepEntries?: number;
  /** Rotate to a new segment past this size. */
  segmentMaxBytes?: number;
  /** The snapshot replay starts from (0/0 when none). */
  baseSeq: number;
  baseTime: number;
  log: Logger;
  /**
   * Each generation found on disk, oldest first, as it is read (the caller applies those after its snapshot).
   * Only the kept history stays in memory: a million-path ingest replayed as one array peaked near 1 GB.
   */
  onReplay?(generation: JournalGeneration): void;
}

export interface Journal {
  headSeq(): number;
  headTime(): number;
  /** Oldest M for which `generationsAfter(M)` still has the whole history. */
  oldestSeq(): number;
  /** Commit time of a generation still in memory, else undefined. */
  timeOf(seq: number): number | undefined;
  /**
   * Committed generations with seq > afterSeq, oldest first, at most `maxCount`: each unpacked only when the
   * iteration reaches it (a caller that stops early, as a changes batch at its entry cap, unpacks no more).
   * The generations are those kept at the call.
   */
  generationsAfter(afterSeq: number, maxCount?: number): IterableIterator<JournalGeneration>;
  /** Each object a kept generation references whose shard (first byte) `mask` sets: the object GC's roots. */
  forEachKeptObject(mask: Uint8Array, visit: (sha256: string) => void): void;
  /** Appends and fsyncs; `generation.seq` must be headSeq() + 1. */
  append(generation: JournalGeneration): Promise<void>;
  /** The error that made the journal refuse appends (a failed fsync or undo), if any: restart to recover. */
  failure(): unknown;
  /** Deletes closed segments whose generations all have seq <= `seq`. */
  dropSegmentsCoveredBy(seq: number): Promise<number>;
  close(): Promise<void>;
}

export interface OpenedJournal {
  journal: Journal;
  /** How many generations were found on disk (each went to onReplay). */
  replayed: number;
}

export const DEFAULT_SEGMENT_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_JOURNAL_KEEP_ENTRIES = 200_000;

interface LiveSegment extends SegmentFile {
  lastSeq: number;
}

export async function openJournal(options: JournalOptions): Promise<OpenedJournal> {
  const { dir, log } = options;
  const segmentMaxBytes = options.segmentMaxBytes ?? DEFAULT_SEGMENT_MAX_BYTES;
  await mkdir(dir, { recursive: true });
  const files = await listSegments(dir);
  const segments: LiveSegment[] = [];
  const keepEntries = options.keepEntries ?? DEFAULT_JOURNAL_KEEP_ENTRIES;
  /** The generations still offered, packed (packed-generation.ts): no object or string per entry. */
  let history: PackedGeneration[] = [];
  let historyEntries = 0;
  let replayed = 0;
  let first: JournalGeneration | undefined;
  let last: JournalGeneration | undefined;
  let activeSize = 0;
  for (const [index, file] of files.entries()) {
    const isLast = index === files.length - 1;
    const contents = await readSegment(file);
    if (contents.tailBytes > 0 && !isLast) {
      throw corrupt(
        `journal segment ${file.path} has ${contents.tailBytes} bad bytes at ${contents.validBytes} but is not the last segment`,
        file.path,
      );
    }
    let expectedSeq = file.firstSeq;
    for (const generation of contents.generations) {
      if (generation.seq !== expectedSeq) {
        throw corrupt(`journal segment ${file.path} holds seq ${generation.seq} where ${expectedSeq} was expected`, file.path);
      }
      if (last !== undefined && generation.seq !== last.seq + 1) {
        throw corrupt(`journal segment ${file.path} starts at seq ${generation.seq} after ${last.seq}`, file.path);
      }
      options.onReplay?.(generation);
      first ??= generation;
      last = generation;
      replayed++;
      history.push(packGeneration(generation));
      historyEntries += generation.entries.length;
      trimHistory();
      expectedSeq++;
    }
    if (isLast && contents.tailBytes > 0) {
      log.warn({ path: file.path, validBytes: contents.validBytes, tailBytes: contents.tailBytes }, 'journal torn tail cut');
      const handle = await open(file.path, 'r+');
      await handle.truncate(contents.validBytes);
      await handle.sync();
      await handle.close();
    }
    if (isLast) activeSize = contents.validBytes;
    segments.push({ ...file, lastSeq: expectedSeq - 1 });
  }
  if (first !== undefined && first.seq > options.baseSeq + 1) {
    throw corrupt(`journal starts at seq ${first.seq} but the latest snapshot is at seq ${options.baseSeq}: generations are missing`, dir);
  }
  let headSeq = Math.max(options.baseSeq, last?.seq ?? 0);
  let headTime = last !== undefined && last.seq >= options.baseSeq ? last.time : options.baseTime;

  let active: { segment: LiveSegment; handle: FileHandle; size: number };
  const lastSegment = segments.at(-1);
  if (lastSegment === undefined) {
    active = await createSegment(headSeq + 1);
  } else if (lastSegment.lastSeq === headSeq) {
    active = { segment: lastSegment, handle: await open(lastSegment.path, 'r+'), size: activeSize };
  } else {
    // Snapshots are written only of committed generations and the segment holding the head is never dropped.
    throw corrupt(`journal ends at seq ${lastSegment.lastSeq} but the latest snapshot is at seq ${headSeq}`, lastSegment.path);
  }

  let broken: unknown;

  /** Drops the oldest kept generations beyond keepGenerations (with slack, so slicing is rare) or keepEntries. */
  function trimHistory(): void {
    let drop = history.length > options.keepGenerations + 1024 ? history.length - options.keepGenerations : 0;
    let entries = historyEntries;
    for (let i = 0; i < drop; i++) entries -= history[i]!.count;
    while (entries > keepEntries && drop < history.length - 1) entries -= history[drop++]!.count;
    if (drop === 0) return;
    history = history.slice(drop);
    historyEntries = entries;
  }

  async function createSegment(firstSeq: number): Promise<{ segment: LiveSegment; handle: FileHandle; size: number }> {
    const segment: LiveSegment = { path: join(dir, segmentName(firstSeq)), firstSeq, lastSeq: firstSeq - 1 };
    // 'w', not 'wx': a file of this name can only be an empty leftover of a failed rotation,
    // since any record in it would have a seq above the head and would have been replayed.
    const handle = await open(segment.path, 'w');
    try {
      await fsyncDir(dir);
    } catch (err) {
      await handle.close();
      throw err;
    }
    segments.push(segment);
    return { segment, handle, size: 0 };
  }

  async function append(generation: JournalGeneration): Promise<void> {
    if (broken !== undefined) throw broken;
    if (generation.seq !== headSeq + 1) throw new Error(`journal append of seq ${generation.seq}, expected ${headSeq + 1}`);
    const frame = encodeGeneration(generation);
    // Packed before the write: a generation the history cannot hold is refused before it is durable.
    const packed = packGeneration(generation);
    const before = active.size;
    try {
      await active.handle.write(frame, 0, frame.length, before);
    } catch (err) {
      await active.handle.truncate(before).catch((truncateErr: unknown) => {
        broken = truncateErr;
      });
      if (hasErrno(err, 'ENOSPC')) {
        throw metasyncError(
          'METASYNC_ERR_STORE_NO_SPACE',
          `no space left appending seq ${generation.seq} to ${active.segment.path}`,
          { path: active.segment.path },
          err,
        );
      }
      throw err;
    }
    try {
      await active.handle.datasync();
    } catch (err) {
      // After a failed fsync the page cache state is unknown: refuse further appends.
      broken = err;
      throw err;
    }
    active.size = before + frame.length;
    active.segment.lastSeq = generation.seq;
    headSeq = generation.seq;
    headTime = generation.time;
    history.push(packed);
    historyEntries += generation.entries.length;
    trimHistory();
    if (active.size >= segmentMaxBytes) await rotate();
  }

  /** The record is already durable: a failed rotation must not fail the append, so it is retried next time. */
  async function rotate(): Promise<void> {
    let next: Awaited<ReturnType<typeof createSegment>>;
    try {
      next = await createSegment(headSeq + 1);
    } catch (err) {
      log.error({ err, path: active.segment.path, sizeBytes: active.size }, 'journal segment rotation failed');
      return;
    }
    const previous = active.handle;
    active = next;
    await previous.close().catch((err: unknown) => log.error({ err }, 'journal segment close failed'));
  }

  function oldestSeq(): number {
    const firstKept = history[0];
    if (firstKept === undefined) return headSeq;
    return Math.max(firstKept.seq - 1, headSeq - options.keepGenerations, 0);
  }

  function generationsAfter(afterSeq: number, maxCount = Number.POSITIVE_INFINITY): IterableIterator<JournalGeneration> {
    // Checked now, not when the iteration starts.
    if (afterSeq < oldestSeq()) throw new RangeError(`seq ${afterSeq} is older than the journal keeps (${oldestSeq()})`);
    const firstKept = history[0];
    if (firstKept === undefined || afterSeq >= headSeq) return [][Symbol.iterator]();
    const start = afterSeq + 1 - firstKept.seq;
    return unpackEach(history, start, Math.min(history.length, start + Math.min(maxCount, history.length)));
  }

  function forEachKeptObject(mask: Uint8Array, visit: (sha256: string) => void): void {
    const from = oldestSeq();
    for (const packed of history) if (packed.seq > from) forEachPackedObject(packed, mask, visit);
  }

  function timeOf(seq: number): number | undefined {
    if (seq === headSeq) return headTime;
    const firstKept = history[0];
    return firstKept === undefined ? undefined : history[seq - firstKept.seq]?.time;
  }

  async function dropSegmentsCoveredBy(seq: number): Promise<number> {
    const drop = segments.filter((segment) => segment !== active.segment && segment.lastSeq <= seq);
    for (const segment of drop) {
      await unlink(segment.path);
      segments.splice(segments.indexOf(segment), 1);
    }
    if (drop.length > 0) {
      await fsyncDir(dir);
      log.info({ segments: drop.length, coveredSeq: seq }, 'journal segments dropped');
    }
    return drop.length;
  }

  const journal: Journal = {
    headSeq: () => headSeq,
    headTime: () => headTime,
    oldestSeq,
    timeOf,
    failure: () => broken,
    generationsAfter,
    forEachKeptObject,
    append,
    dropSegmentsCoveredBy,
    close: () => active.handle.close(),
  };
  return { journal, replayed };
}

/** `kept[from..to)` unpacked one at a time; `kept` is the array of the call (a trim replaces the array, never edits it). */
function* unpackEach(kept: readonly PackedGeneration[], from: number, to: number): IterableIterator<JournalGeneration> {
  for (let index = from; index < to; index++) yield unpackGeneration(kept[index]!);
}

function corrupt(message: string, path: string): Error {
  return metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', message, { path });
}
