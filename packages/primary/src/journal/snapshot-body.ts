import { metasyncError, type PathEntry } from '@metasync/shared';

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
  /** Sorted. */
  paths: readonly string[];
  entryOf(path: string): Omit<PathEntry, 'path'>;
}

function headerOf(seq: number, time: number): string {
  return `{"kind":"snapshot","seq":${seq},"time":${time},"entries":[\n`;
}

const FOOTER = '\n]}';

function lineOf(path: string, entry: Omit<PathEntry, 'path'>): string {
  return `{"path":${JSON.stringify(path)},"sha256":"${entry.sha256}","size":${entry.size},"mtime":${entry.mtime}}`;
}

export function encodeSnapshotBody(input: SnapshotBodyInput): Buffer {
  const header = headerOf(input.seq, input.time);
  let bytes = Buffer.byteLength(header) + FOOTER.length;
  for (let i = 0; i < input.paths.length; i++) {
    const path = input.paths[i]!;
    bytes += Buffer.byteLength(lineOf(path, input.entryOf(path))) + (i > 0 ? 2 : 0);
  }
  const body = Buffer.allocUnsafe(bytes);
  let at = body.write(header, 0);
  for (let i = 0; i < input.paths.length; i++) {
    const path = input.paths[i]!;
    if (i > 0) at += body.write(',\n', at);
    at += body.write(lineOf(path, input.entryOf(path)), at);
  }
  at += body.write(FOOTER, at);
  if (at !== bytes) throw new Error(`snapshot body is ${at} bytes, sized ${bytes}: the manifest changed while it was written`);
  return body;
}

export interface DecodedSnapshotHead {
  seq: number;
  time: number;
}

const HEADER_LINE = /^\{"kind":"snapshot","seq":(\d+),"time":(\d+),"entries":\[$/;

/**
 * Reads a snapshot body, calling `visit` for each entry in order. A body in
 * the line layout is parsed a line at a time; any other valid Snapshot JSON
 * (files written before the layout existed) is parsed whole.
 */
export function decodeSnapshotBody(body: Buffer, visit: (entry: PathEntry, index: number) => void): DecodedSnapshotHead {
  const firstBreak = body.indexOf(10);
  const header = firstBreak === -1 ? null : HEADER_LINE.exec(body.toString('latin1', 0, firstBreak));
  if (header === null) return decodeWhole(body, visit);
  let index = 0;
  let start = firstBreak + 1;
  for (;;) {
    const end = body.indexOf(10, start);
    const line = body.toString('utf8', start, end === -1 ? body.length : end);
    if (end === -1) {
      if (line !== ']}') throw damaged(`its last line is not "]}"`);
      return { seq: Number(header[1]), time: Number(header[2]) };
    }
    const json = line.endsWith(',') ? line.slice(0, -1) : line;
    if (json !== '') visit(JSON.parse(json) as PathEntry, index++);
    start = end + 1;
  }
}

function decodeWhole(body: Buffer, visit: (entry: PathEntry, index: number) => void): DecodedSnapshotHead {
  const snapshot = JSON.parse(body.toString('utf8')) as { seq: number; time: number; entries?: PathEntry[] };
  if (!Array.isArray(snapshot.entries)) throw damaged('it has no entries');
  snapshot.entries.forEach(visit);
  return { seq: snapshot.seq, time: snapshot.time };
}

function damaged(why: string): Error {
  return metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot body is damaged: ${why}`, {});
}
