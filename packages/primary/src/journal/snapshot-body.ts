import { metasyncError, type PathEntry, type Snapshot } from '@metasync/shared';
import {
  decodeLinedJson,
  linedJsonHead,
  LINED_JSON_SEPARATOR,
  LINED_JSON_TAIL,
  parseLinedJsonHead,
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
 * besides the bytes. Built in two passes over the sorted paths (exact size,
 * then bytes), so the only large allocation is the body itself.
 */
export interface SnapshotBodyInput {
  seq: number;
  time: number;
  /** The entries in sorted path order, read by position. */
  size: number;
  pathAt(index: number): string;
  entryAt(index: number): Omit<PathEntry, 'path'>;
}

function lineOf(path: string, entry: Omit<PathEntry, 'path'>): string {
  return `{"path":${JSON.stringify(path)},"sha256":"${entry.sha256}","size":${entry.size},"mtime":${entry.mtime}}`;
}

export function encodeSnapshotBody(input: SnapshotBodyInput): Buffer {
  const head = linedJsonHead(`"kind":"snapshot","seq":${input.seq},"time":${input.time}`, 'entries');
  let bytes = Buffer.byteLength(head) + LINED_JSON_TAIL.length;
  for (let i = 0; i < input.size; i++) {
    bytes += Buffer.byteLength(lineOf(input.pathAt(i), input.entryAt(i))) + (i > 0 ? LINED_JSON_SEPARATOR.length : 0);
  }
  const body = Buffer.allocUnsafe(bytes);
  let at = body.write(head, 0);
  for (let i = 0; i < input.size; i++) {
    if (i > 0) at += body.write(LINED_JSON_SEPARATOR, at);
    at += body.write(lineOf(input.pathAt(i), input.entryAt(i)), at);
  }
  at += body.write(LINED_JSON_TAIL, at);
  if (at !== bytes) throw new Error(`snapshot body is ${at} bytes, sized ${bytes}: the manifest changed while it was written`);
  return body;
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
  if (snapshot.kind !== 'snapshot' || typeof snapshot.seq !== 'number' || typeof snapshot.time !== 'number')
    throw damaged('no snapshot head');
  if (lined === undefined) {
    if (!Array.isArray(snapshot.entries)) throw damaged('it has no entries');
    snapshot.entries.forEach(visit);
  }
  return { seq: snapshot.seq, time: snapshot.time };
}

function damaged(why: string): Error {
  return metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot body is damaged: ${why}`, {});
}
