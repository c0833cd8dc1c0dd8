import { mkdir, open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { metasyncError, type SigningKey } from '@metasync/shared';
import { decodeRecords } from '@metasync/shared/fs';
import { createManifest, type Manifest, type SortedManifest } from './manifest.js';
import type { Origin } from './record.js';
import { decodeSnapshotBody } from './snapshot-body.js';
import { SNAPSHOT_BODY_OFFSET, snapshotFileName, writeSignedSnapshotFile, type SignedSnapshot } from './snapshot-file.js';

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

function originOfLetter(letter: string | undefined): Origin {
  return letter === 'a' ? 'api' : letter === 'u' ? 'upstream' : letter === 'p' ? 'pins' : 'watch';
}

const SNAPSHOT_NAME = /^snapshot-(\d{16})\.bin$/;
/** A served body's gzip, made once per signed body: `snapshot-<seq>.<first 16 hex of the body's sha256>.gz`. */
const GZIP_NAME = /^snapshot-(\d{16})\.[0-9a-f]{16}\.gz$/;

export function snapshotGzipName(snapshot: Pick<SignedSnapshot, 'seq' | 'sha256'>): string {
  return `${snapshotFileName(snapshot.seq).replace(/\.bin$/, '')}.${snapshot.sha256.slice(0, 16)}.gz`;
}

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

/** Temp files of writes a crash cut short, and gzips of bodies (made again when asked for). */
export async function removeSnapshotLeftovers(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(dir)) {
    if (name.startsWith('.tmp-snapshot-') || GZIP_NAME.test(name)) await rm(join(dir, name), { force: true });
  }
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
export async function loadLatestSnapshot(dir: string): Promise<LoadedSnapshot | undefined> {
  const latest = (await listSnapshotFiles(dir)).at(-1);
  if (latest === undefined) return undefined;
  const decoded = decodeRecords(await readFile(latest.path));
  const [body, metaBytes] = decoded.records;
  if (decoded.tornTail || body === undefined || metaBytes === undefined) {
    throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${latest.path} is damaged`, { path: latest.path });
  }
  const meta = JSON.parse(metaBytes.toString('utf8')) as { origins: string };
  const manifest = createManifest(meta.origins.length);
  const head = decodeSnapshotBody(body, (entry, index) => {
    manifest.set(entry.path, { sha256: entry.sha256, size: entry.size, mtime: entry.mtime, origin: originOfLetter(meta.origins[index]) });
  });
  if (head.seq !== latest.seq || meta.origins.length !== manifest.size) {
    throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${latest.path} does not match its name or origins`, {
      path: latest.path,
    });
  }
  return { seq: head.seq, time: head.time, manifest };
}

/** Keeps the newest `keepCount` snapshot files, and `alsoKeep` (the one being served); gzips go with their file. */
export async function pruneSnapshots(dir: string, keepCount: number, alsoKeep?: string): Promise<number> {
  const files = await listSnapshotFiles(dir);
  const drop = files.slice(0, Math.max(0, files.length - keepCount)).filter((file) => file.path !== alsoKeep);
  for (const file of drop) await unlink(file.path);
  const kept = new Set(files.filter((file) => !drop.includes(file)).map((file) => file.seq));
  for (const name of await readdir(dir)) {
    const gzip = GZIP_NAME.exec(name);
    if (gzip !== null && !kept.has(Number(gzip[1]))) await rm(join(dir, name), { force: true });
  }
  return drop.length;
}
