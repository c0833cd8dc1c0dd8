import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { metasyncError } from '@metasync/shared';
import { MAX_RECORD_BYTES, RECORD_HEADER_BYTES } from '@metasync/shared/fs';
import { parseGeneration, type JournalGeneration } from './record.js';

/**
 * Journal segments: `<dir>/segment-<first seq, 16 digits>.log`, each an
 * append-only run of record-log frames, one generation per record.
 */
export interface SegmentFile {
  path: string;
  /** The seq the segment was opened for; its first record has this seq. */
  firstSeq: number;
}

const SEGMENT_NAME = /^segment-(\d{16})\.log$/;

export function segmentName(firstSeq: number): string {
  return `segment-${String(firstSeq).padStart(16, '0')}.log`;
}

export async function listSegments(dir: string): Promise<SegmentFile[]> {
  const names = await readdir(dir);
  return names
    .map((name) => ({ name, match: SEGMENT_NAME.exec(name) }))
    .filter((item): item is { name: string; match: RegExpExecArray } => item.match !== null)
    .map(({ name, match }) => ({ path: join(dir, name), firstSeq: Number(match[1]) }))
    .sort((a, b) => a.firstSeq - b.firstSeq);
}

export interface SegmentContents {
  generations: JournalGeneration[];
  /** Bytes of whole, valid generations from the start. */
  validBytes: number;
  /** Bytes after `validBytes` (a torn tail when the segment is the last one). */
  tailBytes: number;
}

/**
 * Reads a segment and tells a torn tail from corruption.
 *
 * A torn tail is what a crash mid-append leaves: the last record's frame cut
 * short, its CRC failing over half-written bytes, or a zero-filled extension.
 * Nothing valid can follow it, because each append is one record written after
 * the previous one was fsynced. So: if any valid generation frame can be found
 * after the first bad byte, the damage is in the middle of the log
 * (METASYNC_ERR_JOURNAL_CORRUPT); otherwise it is a torn tail, which the caller
 * cuts off only for the last segment.
 */
export async function readSegment(segment: SegmentFile): Promise<SegmentContents> {
  const data = await readFile(segment.path);
  const generations: JournalGeneration[] = [];
  let offset = 0;
  for (;;) {
    const frame = frameAt(data, offset);
    if (frame === undefined) break;
    generations.push(frame.generation);
    offset = frame.end;
  }
  if (offset < data.length) {
    const laterValid = findValidFrameAfter(data, offset + 1);
    if (laterValid !== undefined) {
      throw metasyncError(
        'METASYNC_ERR_JOURNAL_CORRUPT',
        `journal segment ${segment.path} has a bad record at byte ${offset} followed by a valid one at byte ${laterValid}`,
        { path: segment.path, offset, nextValidOffset: laterValid },
      );
    }
  }
  return { generations, validBytes: offset, tailBytes: data.length - offset };
}

function frameAt(data: Buffer, offset: number): { generation: JournalGeneration; end: number } | undefined {
  if (offset + RECORD_HEADER_BYTES > data.length) return undefined;
  const length = data.readUInt32BE(offset);
  const end = offset + RECORD_HEADER_BYTES + length;
  if (length === 0 || length > MAX_RECORD_BYTES || end > data.length) return undefined;
  const payload = data.subarray(offset + RECORD_HEADER_BYTES, end);
  if (crc32(payload) !== data.readUInt32BE(offset + 4)) return undefined;
  const generation = parseGeneration(payload);
  return generation === undefined ? undefined : { generation, end };
}

function findValidFrameAfter(data: Buffer, start: number): number | undefined {
  for (let offset = start; offset + RECORD_HEADER_BYTES <= data.length; offset++) {
    // Cheap filter before the CRC: a generation payload is JSON starting with `{`.
    if (data[offset + RECORD_HEADER_BYTES] !== 0x7b) continue;
    if (frameAt(data, offset) !== undefined) return offset;
  }
  return undefined;
}
