/**
 * Everything the watcher does with a source file before it is published,
 * except storing it: read it (paths.ts), apply the completeness rule's checks
 * (content.ts), add the dist mirrors (dist-mirrors.ts), hash and gzip what will
 * be stored. Pure CPU and blocking reads, so it runs in a prepare thread
 * (prepare-pool.ts) and the main thread only batches and stores the result.
 */
import { sha256Hex } from '@metasync/shared';
import { hasNoFileSync, variantsFor } from '@metasync/store';
import { storedContentFor } from '../dists/dist-mirrors.js';
import { NOT_JSON, p2Problem, parseJson } from './content.js';
import { readSourceFile, type ReadSourceOptions, type SourceFile, type SourceRead } from './paths.js';

export interface PrepareSettings extends ReadSourceOptions {
  /** --dists-url: what the publisher's contentFor adds to p2 files and the root (the same pure function). */
  distsUrl?: string | undefined;
  /** The publisher's object store: whether it holds any file of the object yet (StoredContent.absent). */
  storeDir?: string | undefined;
}

/** What the publisher stores for a complete file: its bytes, their sha256, and their gzip variant if one is kept. */
export interface StoredContent {
  content: Buffer;
  sha256: string;
  gzip?: Buffer | undefined;
  /**
   * The store held no file of this object (raw, gzip or brotli) when it was prepared: the put need not look
   * for a copy or leftovers (store.put's knownClean). Only a hint, possibly stale by the time of the put (a
   * put of the same bytes since): a put that meets the file then checks it as any put does (write-path.ts).
   */
  absent?: boolean | undefined;
}

export type PreparedRead =
  /** Missing (an unlink event follows) or skipped: nothing to publish. */
  | { kind: 'missing' }
  | { kind: 'skipped' }
  /** Refused by the read (a symlink out, too large) or by a check (a p2 file holding another package). */
  | { kind: 'refused'; reason: string }
  /** A `*.json` file that does not parse (yet): a writer may be mid-file. */
  | { kind: 'not-json' }
  | { kind: 'file'; file: SourceFile; stored: StoredContent };

export function prepareSourceFile(settings: PrepareSettings, relPath: string): Promise<PreparedRead> {
  return prepareRead(relPath, readSourceFile(settings, relPath), settings.distsUrl, settings.storeDir);
}

/** The checks, the dist mirrors, the hash and the gzip, applied to one read of `relPath`. */
export async function prepareRead(relPath: string, read: SourceRead, distsUrl?: string, storeDir?: string): Promise<PreparedRead> {
  if (read.kind !== 'file') return read;
  const { bytes } = read.file;
  if (relPath.endsWith('.json')) {
    const document = parseJson(bytes);
    if (document === NOT_JSON) return { kind: 'not-json' };
    const problem = p2Problem(relPath, document);
    if (problem !== undefined) return { kind: 'refused', reason: problem };
  }
  const content = storedContentFor(relPath, bytes, distsUrl);
  // Brotli is left to the backfill after the commit, as for any bulk ingest; a lone change's submit makes it.
  const { gzip } = await variantsFor(content, {}, { deferBrotli: true });
  const sha256 = sha256Hex(content);
  const absent = storeDir === undefined ? undefined : hasNoFileSync(storeDir, sha256);
  return { kind: 'file', file: read.file, stored: { content, sha256, gzip, absent } };
}
