import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { metasyncError, signBody, type SigningKey } from '@metasync/shared';
import { decodeRecords, encodeRecord, encodeRecordHeader, writeFileAtomic } from '@metasync/shared/fs';
import { createManifest, type Manifest, type SortedManifest } from './manifest.js';
import type { Origin } from './record.js';
import { decodeSnapshotBody, encodeSnapshotBody } from './snapshot-body.js';

/**
 * Snapshot files: `<dir>/snapshot-<seq, 16 digits>.bin`, written atomically,
 * two record-log frames:
 *
 *   [0] the signed Snapshot JSON bytes (exactly what `GET /sync/v1/snapshot` serves)
 *   [1] {"signature": "<keyId>.<sig>", "origins": "wwaw..."}  (internal: one origin per entry)
 *
 * Replay starts from the newest snapshot; journal segments it covers can go.
 */
export interface SignedSnapshot {
  seq: number;
  time: number;
  /** Exact JSON bytes of the Snapshot. */
  body: Buffer;
  /** HEADERS.signature value over `body`. */
  signature: string;
  /** Internal: one origin letter (`w`/`a`/`u`) per entry, in entry order. */
  origins: string;
}

export interface LoadedSnapshot {
  seq: number;
  time: number;
  manifest: Manifest;
}

const ORIGIN_LETTERS = { watch: 'w', api: 'a', upstream: 'u', pins: 'p' } as const satisfies Record<Origin, string>;

function originOfLetter(letter: string | undefined): Origin {
  return letter === 'a' ? 'api' : letter === 'u' ? 'upstream' : letter === 'p' ? 'pins' : 'watch';
}

const SNAPSHOT_NAME = /^snapshot-(\d{16})\.bin$/;

export function snapshotFileName(seq: number): string {
  return `snapshot-${String(seq).padStart(16, '0')}.bin`;
}

/** The Snapshot of `manifest` at `seq`, paths sorted, one entry per line (snapshot-body.ts), signed with `key`. */
/** Signs the manifest as it is now, on this thread (snapshot-signer.ts signs a copy on another). */
export function signSnapshot(options: { seq: number; time: number; manifest: Manifest; key: SigningKey }): SignedSnapshot {
  return signSorted({ ...options, sorted: options.manifest.sorted?.() ?? sortedOfMap(options.manifest) });
}

export function signSorted(options: { seq: number; time: number; sorted: SortedManifest; key: SigningKey }): SignedSnapshot {
  const { sorted } = options;
  const letters: string[] = [];
  // originAt, where there is one, builds no entry (and no sha256 string) for every path.
  const originAt = sorted.originAt ?? ((index: number) => sorted.entryAt(index).origin);
  for (let i = 0; i < sorted.size; i++) letters.push(ORIGIN_LETTERS[originAt(i)]);
  const origins = letters.join('');
  const body = encodeSnapshotBody({ seq: options.seq, time: options.time, ...sorted });
  return { seq: options.seq, time: options.time, body, signature: signBody(options.key, body), origins };
}

/** A manifest without a sorted view (a plain Map, in tests): sorted the plain way. */
function sortedOfMap(manifest: Manifest): SortedManifest {
  const paths = [...manifest.keys()].sort();
  return { size: paths.length, pathAt: (index) => paths[index]!, entryAt: (index) => manifest.get(paths[index]!)! };
}

export async function writeSnapshotFile(options: { dir: string; snapshot: SignedSnapshot }): Promise<string> {
  await mkdir(options.dir, { recursive: true });
  const meta = Buffer.from(JSON.stringify({ signature: options.snapshot.signature, origins: options.snapshot.origins }));
  const path = join(options.dir, snapshotFileName(options.snapshot.seq));
  await writeFileAtomic(path, [encodeRecordHeader(options.snapshot.body), options.snapshot.body, encodeRecord(meta)]);
  return path;
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

/** Keeps the newest `keepCount` snapshot files. */
export async function pruneSnapshots(dir: string, keepCount: number): Promise<number> {
  const files = await listSnapshotFiles(dir);
  const drop = files.slice(0, Math.max(0, files.length - keepCount));
  for (const file of drop) await unlink(file.path);
  return drop.length;
}
