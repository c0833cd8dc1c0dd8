import { isMetasyncError, metasyncError, type PathEntry, type Snapshot } from '@metasync/shared';
import {
  decodeLinedJson,
  linedItemsAfterHead,
  linedJsonHead,
  LINED_JSON_SEPARATOR,
  LINED_JSON_TAIL,
  parseLinedJsonHead,
  type DocumentLine,
  type LinedJsonHead,
} from '@metasync/shared/fs';

/**
 * The Snapshot JSON a primary signs and serves, written one entry per line:
 *
 *   {"kind":"snapshot","seq":7,"time":1700000000000,"entries":[
 *   {"path":"p2/acme/foo.json","sha256":"...","size":1234,"mtime":1700000000000},
 *   ...
 *   ]}
 *
 * Still one JSON document (newlines are whitespace), so every reader may
 * JSON.parse it whole. The line layout is what lets the primary build it and
 * read it back without holding every entry at once: at a million paths the
 * document is ~150 MB, and `JSON.stringify` of an array of entry objects, or
 * `JSON.parse` of the file, held several hundred MB of objects and strings
 * besides the bytes. It is written in chunks as it is built (streamSnapshotBody),
 * so not even the body is whole in memory.
 */
export interface SnapshotBodyInput {
  seq: number;
  time: number;
  /** The entries in sorted path order, read by position. */
  size: number;
  pathAt(index: number): string;
  entryAt(index: number): Omit<PathEntry, 'path'>;
  /** The entry at `index` as bytes, when the source holds them so (the compact manifest): copied, not built into a line string. */
  rawAt?(index: number): RawSnapshotEntry;
}

/** One entry as bytes, in a scratch object the next rawAt call overwrites. */
export interface RawSnapshotEntry {
  /** The path: bytes[pathStart, pathEnd), one byte a character (as the path table holds it). */
  bytes: Uint8Array;
  pathStart: number;
  pathEnd: number;
  /** The raw sha256: digest[digestStart, digestStart + 32). */
  digest: Uint8Array;
  digestStart: number;
  size: number;
  mtime: number;
}

function lineOf(path: string, entry: Omit<PathEntry, 'path'>): string {
  return `{"path":${JSON.stringify(path)},"sha256":"${entry.sha256}","size":${entry.size},"mtime":${entry.mtime}}`;
}

/*
 * At a million paths, building each line as a string (twice: once to size the body, once to write it)
 * was most of the time a snapshot holds the event loop (bench/snapshot-encode.ts compares). A line whose path
 * needs no JSON escaping and whose numbers are plain integers is copied from the tables' bytes instead;
 * any other goes through lineOf. Either way the bytes are lineOf's (snapshot-body.test.ts compares).
 */
const LINE_PARTS = ['{"path":"', '","sha256":"', '","size":', ',"mtime":', '}'].map((part) => Buffer.from(part, 'latin1'));
const LINE_FIXED_BYTES = LINE_PARTS.reduce((sum, part) => sum + part.length, 0) + 64;
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/** Printable ASCII other than `"` and `\`: JSON.stringify leaves it as it is. */
function isPlainPath(raw: RawSnapshotEntry): boolean {
  for (let i = raw.pathStart; i < raw.pathEnd; i++) {
    const byte = raw.bytes[i]!;
    if (byte < 0x20 || byte > 0x7e || byte === 0x22 || byte === 0x5c) return false;
  }
  return true;
}

function isPlainInteger(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

function digitsOf(value: number): number {
  let digits = 1;
  for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

function writeDigits(body: Buffer, at: number, value: number): number {
  const end = at + digitsOf(value);
  let rest = value;
  for (let i = end - 1; i >= at; i--) {
    body[i] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return end;
}

/** The copied line's size in bytes, or -1 when the line must go through lineOf. */
function rawLineBytes(raw: RawSnapshotEntry): number {
  if (!isPlainPath(raw) || !isPlainInteger(raw.size) || !isPlainInteger(raw.mtime)) return -1;
  return LINE_FIXED_BYTES + (raw.pathEnd - raw.pathStart) + digitsOf(raw.size) + digitsOf(raw.mtime);
}

/** A byte loop: for the few dozen bytes of a line part, a native copy call costs more than the copying. */
function copyBytes(from: Uint8Array, start: number, end: number, to: Buffer, at: number): number {
  for (let i = start; i < end; i++) to[at++] = from[i]!;
  return at;
}

function writeRawLine(body: Buffer, start: number, raw: RawSnapshotEntry): number {
  const [open, afterPath, afterSha, afterSize, close] = LINE_PARTS as [Buffer, Buffer, Buffer, Buffer, Buffer];
  let at = copyBytes(open, 0, open.length, body, start);
  at = copyBytes(raw.bytes, raw.pathStart, raw.pathEnd, body, at);
  at = copyBytes(afterPath, 0, afterPath.length, body, at);
  for (let i = raw.digestStart; i < raw.digestStart + 32; i++) {
    const byte = raw.digest[i]!;
    body[at++] = HEX_DIGITS[byte >> 4]!;
    body[at++] = HEX_DIGITS[byte & 15]!;
  }
  at = copyBytes(afterSha, 0, afterSha.length, body, at);
  at = writeDigits(body, at, raw.size);
  at = copyBytes(afterSize, 0, afterSize.length, body, at);
  at = writeDigits(body, at, raw.mtime);
  return copyBytes(close, 0, close.length, body, at);
}

/** A chunk of body bytes, to be used before the call returns: the buffer is written again after it. */
export type SnapshotBodySink = (chunk: Buffer) => void;

const DEFAULT_CHUNK_BYTES = 1 << 20;

/**
 * Writes the body to `sink` in chunks of `chunkBytes` (the last one shorter) and returns its length: the
 * body is never whole in memory (~150 MB at a million paths). A line longer than a chunk is given alone.
 */
export function streamSnapshotBody(input: SnapshotBodyInput, sink: SnapshotBodySink, chunkBytes = DEFAULT_CHUNK_BYTES): number {
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let at = 0;
  let total = 0;
  const flush = (): void => {
    if (at > 0) sink(chunk.subarray(0, at));
    total += at;
    at = 0;
  };
  const put = (text: string): void => {
    const bytes = Buffer.byteLength(text);
    if (at + bytes > chunkBytes) flush();
    if (bytes > chunkBytes) {
      sink(Buffer.from(text));
      total += bytes;
    } else at += chunk.write(text, at);
  };
  put(linedJsonHead(`"kind":"snapshot","seq":${input.seq},"time":${input.time}`, 'entries'));
  for (let i = 0; i < input.size; i++) {
    if (i > 0) put(LINED_JSON_SEPARATOR);
    const raw = input.rawAt?.(i);
    const rawBytes = raw === undefined ? -1 : rawLineBytes(raw);
    if (rawBytes === -1 || rawBytes > chunkBytes) {
      put(lineOf(input.pathAt(i), input.entryAt(i)));
      continue;
    }
    if (at + rawBytes > chunkBytes) flush();
    at = writeRawLine(chunk, at, raw!);
  }
  put(LINED_JSON_TAIL);
  flush();
  return total;
}

/** The whole body in one buffer: for tests and tools; the primary streams it (snapshot-file.ts). */
export function encodeSnapshotBody(input: SnapshotBodyInput): Buffer {
  const parts: Buffer[] = [];
  streamSnapshotBody(input, (chunk) => parts.push(Buffer.from(chunk)));
  return Buffer.concat(parts);
}

export interface DecodedSnapshotHead {
  seq: number;
  time: number;
}

/**
 * Reads a snapshot body, calling `visit` for each entry in order: a line at a
 * time in the lined layout, else (files written before it) parsed whole.
 */
export function decodeSnapshotBody(body: Buffer, visit: (entry: PathEntry, index: number) => void): DecodedSnapshotHead {
  let lined: LinedJsonHead | undefined;
  let snapshot: Partial<Snapshot>;
  try {
    lined = decodeLinedJson(body, (item, index) => visit(item as PathEntry, index));
    snapshot = (lined === undefined ? JSON.parse(body.toString('utf8')) : parseLinedJsonHead(lined)) as Partial<Snapshot>;
  } catch (err) {
    throw damaged((err as Error).message);
  }
  if (lined === undefined) {
    if (!Array.isArray(snapshot.entries)) throw damaged('it has no entries');
    snapshot.entries.forEach(visit);
  }
  return checkedHead(snapshot);
}

/**
 * decodeSnapshotBody for a body read in pieces (a snapshot file read in chunks): its head line, then the
 * lines after it. Undefined, visiting nothing, when the body is not in the lined layout.
 */
export function decodeSnapshotLines(
  head: string,
  lines: Iterator<DocumentLine, void>,
  visit: (entry: PathEntry, index: number) => void,
): DecodedSnapshotHead | undefined {
  let lined: LinedJsonHead | undefined;
  try {
    const items = linedItemsAfterHead(head, lines);
    for (let index = 0; ; index++) {
      const next = items.next();
      if (next.done === true) {
        lined = next.value;
        break;
      }
      visit(next.value as PathEntry, index);
    }
    if (lined === undefined) return undefined;
    return checkedHead(parseLinedJsonHead(lined) as Partial<Snapshot>);
  } catch (err) {
    throw isMetasyncError(err) ? err : damaged((err as Error).message);
  }
}

function checkedHead(snapshot: Partial<Snapshot>): DecodedSnapshotHead {
  if (snapshot.kind !== 'snapshot' || typeof snapshot.seq !== 'number' || typeof snapshot.time !== 'number')
    throw damaged('no snapshot head');
  return { seq: snapshot.seq, time: snapshot.time };
}

function damaged(why: string): Error {
  return metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot body is damaged: ${why}`, {});
}
