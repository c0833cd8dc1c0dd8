import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import { metasyncError, type PathEntry, type SigningKey } from '@metasync/shared';
import { decodeRecords, MAX_RECORD_BYTES, RECORD_HEADER_BYTES, type DocumentLine } from '@metasync/shared/fs';
import { createManifest, type Manifest, type SortedManifest } from './manifest.js';
import { decodeSnapshotBody, decodeSnapshotLines } from './snapshot-body.js';
import { originOfLetter, SNAPSHOT_BODY_OFFSET, writeSignedSnapshotFile, type SignedSnapshot } from './snapshot-file.js';
import { SERVED_DIR_NAME } from './snapshot-served.js';

export { snapshotFileName, type SignedSnapshot } from './snapshot-file.js';

/**
 * Snapshot files (layout in snapshot-file.ts): every signed snapshot is one, the snapshot served to mirrors
 * and the replay base alike. Replay starts from the newest; journal segments it covers can go.
 */
export interface LoadedSnapshot {
  seq: number;
  time: number;
  manifest: Manifest;
}

const READ_CHUNK_BYTES = 4 << 20;

const SNAPSHOT_NAME = /^snapshot-(\d{16})\.bin$/;
/** Writes and signs the manifest as it is now, on this thread (snapshot-signer.ts signs a copy on another). */
export async function signSnapshot(options: {
  seq: number;
  time: number;
  manifest: Manifest;
  key: SigningKey;
  dir: string;
}): Promise<SignedSnapshot> {
  await mkdir(options.dir, { recursive: true });
  const sorted = options.manifest.sorted?.() ?? sortedOfMap(options.manifest);
  return writeSignedSnapshotFile({ ...options, sorted });
}

/** A manifest without a sorted view (a plain Map, in tests): sorted the plain way. */
function sortedOfMap(manifest: Manifest): SortedManifest {
  const paths = [...manifest.keys()].sort();
  return { size: paths.length, pathAt: (index) => paths[index]!, entryAt: (index) => manifest.get(paths[index]!)! };
}

/** The body of a snapshot file, whole (tests and tools; the primary streams it). */
export async function readSnapshotBody(snapshot: Pick<SignedSnapshot, 'path' | 'length'>): Promise<Buffer> {
  const file = await open(snapshot.path, 'r');
  try {
    const body = Buffer.allocUnsafe(snapshot.length);
    const { bytesRead } = await file.read(body, 0, snapshot.length, SNAPSHOT_BODY_OFFSET);
    if (bytesRead !== snapshot.length) throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${snapshot.path} is short`, {});
    return body;
  } finally {
    await file.close();
  }
}

/** Temp files of writes a crash cut short, and the snapshots served to mirrors (a cache, snapshot-served.ts). */
export async function removeSnapshotLeftovers(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) if (name.startsWith('.tmp-snapshot-')) await rm(join(dir, name), { force: true });
  await rm(join(dir, SERVED_DIR_NAME), { recursive: true, force: true });
}

/** Snapshot files on disk, oldest first. */
export async function listSnapshotFiles(dir: string): Promise<{ path: string; seq: number }[]> {
  await mkdir(dir, { recursive: true });
  return (await readdir(dir))
    .map((name) => ({ name, match: SNAPSHOT_NAME.exec(name) }))
    .filter((item): item is { name: string; match: RegExpExecArray } => item.match !== null)
    .map(({ name, match }) => ({ path: join(dir, name), seq: Number(match[1]) }))
    .sort((a, b) => a.seq - b.seq);
}

/** The newest snapshot, or undefined when there is none yet. */
export async function loadLatestSnapshot(dir: string, chunkBytes = READ_CHUNK_BYTES): Promise<LoadedSnapshot | undefined> {
  const latest = (await listSnapshotFiles(dir)).at(-1);
  if (latest === undefined) return undefined;
  const loaded = readSnapshotFileInChunks(latest.path, chunkBytes) ?? decodeWholeSnapshotFile(latest.path, await readFile(latest.path));
  if (loaded.seq !== latest.seq) {
    throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${latest.path} does not match its name`, { path: latest.path });
  }
  return loaded;
}

/**
 * A snapshot file read a chunk at a time, the body's lines decoded as they come: at a million paths the
 * file is ~150 MB, which a whole read held beside the manifest built from it (the primary's start-up
 * peak). Synchronous: it runs before the primary listens. Undefined when the body is not in the lined
 * layout (files from before it are read whole).
 */
function readSnapshotFileInChunks(path: string, chunkBytes: number): LoadedSnapshot | undefined {
  const fd = openSync(path, 'r');
  try {
    const { length, crc } = frameHeader(fd, 0, path);
    const metaAt = SNAPSHOT_BODY_OFFSET + length;
    const { length: metaLength } = frameHeader(fd, metaAt, path);
    // Exactly two frames, as the whole-file read required: nothing after the origins record.
    if (fstatSync(fd).size !== metaAt + RECORD_HEADER_BYTES + metaLength) throw damaged(path, 'is not two whole frames');
    const lines = bodyLines(fd, { length, crc }, path, chunkBytes);
    const first = lines.next();
    if (first.done === true || first.value.last) return undefined;
    const built = manifestOf(path, readMetaFrame(fd, metaAt, metaLength, path).origins);
    const head = decodeSnapshotLines(first.value.text, lines, built.set);
    return head === undefined ? undefined : { ...head, manifest: built.done() };
  } finally {
    closeSync(fd);
  }
}

/** The payload length of the frame at `offset`, checked against the largest record, and its CRC. */
function frameHeader(fd: number, offset: number, path: string): { length: number; crc: number } {
  const header = Buffer.alloc(RECORD_HEADER_BYTES);
  if (readSync(fd, header, 0, RECORD_HEADER_BYTES, offset) !== RECORD_HEADER_BYTES) throw damaged(path, 'is cut short');
  const length = header.readUInt32BE(0);
  if (length > MAX_RECORD_BYTES) throw damaged(path, 'has a frame longer than any record');
  return { length, crc: header.readUInt32BE(4) };
}

function readMetaFrame(fd: number, offset: number, length: number, path: string): { origins: string } {
  const frame = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  if (readSync(fd, frame, 0, frame.length, offset) !== frame.length) throw damaged(path, 'is cut short');
  const meta = decodeRecords(frame).records[0];
  if (meta === undefined) throw damaged(path, 'has a damaged origins record');
  return JSON.parse(meta.toString('utf8')) as { origins: string };
}

/** The body's lines, read in chunks; its CRC is checked before the last line is given. */
function* bodyLines(fd: number, frame: { length: number; crc: number }, path: string, chunkBytes: number): Generator<DocumentLine, void> {
  const { length } = frame;
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let carry = Buffer.alloc(0);
  let crc = 0;
  for (let read = 0; read < length;) {
    const got = readSync(fd, chunk, 0, Math.min(chunk.length, length - read), SNAPSHOT_BODY_OFFSET + read);
    if (got === 0) throw damaged(path, 'is cut short');
    crc = crc32(chunk.subarray(0, got), crc);
    read += got;
    const window = carry.length === 0 ? chunk.subarray(0, got) : Buffer.concat([carry, chunk.subarray(0, got)]);
    let start = 0;
    for (let end = window.indexOf(10); end !== -1; end = window.indexOf(10, start)) {
      yield { text: window.toString('utf8', start, end), last: false };
      start = end + 1;
    }
    // Copied: `chunk` is read into again.
    carry = Buffer.from(window.subarray(start));
  }
  if (crc !== frame.crc) throw damaged(path, 'fails its checksum');
  yield { text: carry.toString('utf8'), last: true };
}

/** A snapshot file read whole: bodies from before the lined layout. */
function decodeWholeSnapshotFile(path: string, bytes: Buffer): LoadedSnapshot {
  const decoded = decodeRecords(bytes);
  const [body, metaBytes] = decoded.records;
  if (decoded.tornTail || body === undefined || metaBytes === undefined) throw damaged(path, 'is damaged');
  const built = manifestOf(path, (JSON.parse(metaBytes.toString('utf8')) as { origins: string }).origins);
  const head = decodeSnapshotBody(body, built.set);
  return { ...head, manifest: built.done() };
}

/** The manifest a snapshot file's entries fill, each with its origin letter; `done` checks there was one letter an entry. */
function manifestOf(path: string, origins: string): { set(entry: PathEntry, index: number): void; done(): Manifest } {
  const manifest = createManifest(origins.length);
  return {
    set(entry, index) {
      manifest.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime, origin: originOfLetter(origins[index]) });
    },
    done() {
      if (origins.length !== manifest.size) throw damaged(path, 'does not match its origins');
      return manifest;
    },
  };
}

function damaged(path: string, why: string): Error {
  return metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${path} ${why}`, { path });
}

/** Keeps the newest `keepCount` snapshot files. */
export async function pruneSnapshots(dir: string, keepCount: number): Promise<number> {
  const files = await listSnapshotFiles(dir);
  const drop = files.slice(0, Math.max(0, files.length - keepCount));
  for (const file of drop) await rm(file.path, { force: true });
  return drop.length;
}
