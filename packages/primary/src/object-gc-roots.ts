import { readFile } from 'node:fs/promises';
import { decodeRecords, hasErrno, metasyncError, type Snapshot } from '@metasync/shared';
import type { Journal } from './journal.js';
import type { Manifest } from './manifest.js';
import { listSnapshotFiles } from './snapshots.js';

/**
 * The object GC's roots: what may still ask for an object by hash.
 *
 *   the head manifest           every live path (the repository itself)
 *   the journal window          generations `changes?since=` still answers: a mirror catching up in
 *                               chunks applies intermediate generations and fetches their objects
 *   snapshot files on disk      until pruneSnapshots drops them (replay base, operator restores)
 *
 * Snapshot files are immutable once written, so their shas are read once per
 * set of files (the union, ~one manifest's worth of strings) and cached.
 */
export interface GcRoots {
  /** Roots whose shard (first 2 hex digits) is in `shards`; the scan of one run looks at no others. */
  collect(shards: ReadonlySet<string>): Promise<Set<string>>;
}

export function createGcRoots(options: { manifest: Manifest; journal: Journal; snapshotDir: string }): GcRoots {
  const { manifest, journal } = options;
  let cached: { key: string; shas: Set<string> } | undefined;

  async function snapshotShas(): Promise<Set<string>> {
    const files = await listSnapshotFiles(options.snapshotDir);
    const key = files.map((file) => file.seq).join(',');
    if (cached?.key === key) return cached.shas;
    const shas = new Set<string>();
    for (const file of files) {
      const entries = await readSnapshotShas(file.path);
      // Pruned since the listing: no longer a root.
      if (entries === undefined) continue;
      for (const sha256 of entries) shas.add(sha256);
    }
    cached = { key, shas };
    return shas;
  }

  return {
    async collect(shards) {
      const roots = new Set<string>();
      for (const sha256 of await snapshotShas()) if (shards.has(sha256.slice(0, 2))) roots.add(sha256);
      // Synchronous from here on: the manifest and the window are read at one instant.
      for (const entry of manifest.values()) if (shards.has(entry.sha256.slice(0, 2))) roots.add(entry.sha256);
      for (const generation of journal.generationsAfter(journal.oldestSeq())) {
        for (const entry of generation.entries) {
          if ('sha256' in entry && shards.has(entry.sha256.slice(0, 2))) roots.add(entry.sha256);
        }
      }
      return roots;
    },
  };
}

/** The shas a snapshot file names; undefined when the file is gone. */
async function readSnapshotShas(path: string): Promise<string[] | undefined> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const body = decodeRecords(data).records[0];
  if (body === undefined) throw metasyncError('METASYNC_ERR_JOURNAL_CORRUPT', `snapshot file ${path} has no snapshot record`, { path });
  return (JSON.parse(body.toString('utf8')) as Snapshot).entries.map((entry) => entry.sha256);
}
