import { createReadStream, createWriteStream } from 'node:fs';
import { link, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { fsyncDir, tempPathFor } from '@metasync/shared/fs';
import { SNAPSHOT_BODY_OFFSET, snapshotFileName, type SignedSnapshot } from './snapshot-file.js';

/**
 * Snapshots signed for mirrors live in `<snapshots>/served/`, apart from the replay bases: a bootstrapping
 * mirror asks for the head, which moves with every publish, and those files must not push the operator's
 * replay and restore points out of `--snapshot-keep`, nor become object GC roots. The directory is a cache:
 * emptied at start (removeSnapshotLeftovers). A snapshot file due while the served one is of the head is a
 * hard link to it, not a second signing.
 */
export const SERVED_DIR_NAME = 'served';

/** How long a served file (and its gzip) stays once a newer one replaced it: requests may still be opening it. */
export const RETIRE_AFTER_MS = 60_000;

/** The served body gzipped (level 6) into a file beside it: `snapshot-<seq>.<first 16 hex of its sha256>.gz`. */
export function gzipPathOf(snapshot: Pick<SignedSnapshot, 'path' | 'seq' | 'sha256'>): string {
  return snapshot.path.replace(/\.bin$/, `.${snapshot.sha256.slice(0, 16)}.gz`);
}

export async function makeGzipFile(snapshot: SignedSnapshot): Promise<{ path: string; length: number }> {
  const path = gzipPathOf(snapshot);
  const temp = tempPathFor(path);
  try {
    const body = createReadStream(snapshot.path, { start: SNAPSHOT_BODY_OFFSET, end: SNAPSHOT_BODY_OFFSET + snapshot.length - 1 });
    // Synced before the rename: a gzip cut by a crash would be served to every mirror that asks.
    await pipeline(body, createGzip({ level: 6 }), createWriteStream(temp, { flags: 'wx', flush: true }));
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  // Retired while it was made (retireLater removed the body and a gzip not there yet): nothing would remove it.
  if (!(await exists(snapshot.path))) {
    await rm(path, { force: true });
    throw new Error(`snapshot ${snapshot.path} was retired while its gzip was made`);
  }
  return { path, length: (await stat(path)).size };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes the served `snapshot` a replay base in `dir` (a hard link, atomically replacing one of its seq); its path there. */
export async function keepAsReplayBase(snapshot: SignedSnapshot, dir: string): Promise<string> {
  const path = join(dir, snapshotFileName(snapshot.seq));
  const temp = tempPathFor(path);
  try {
    await link(snapshot.path, temp);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
  return path;
}

/** Removes a served file and its gzip once requests that had it have opened it. */
export function retireLater(snapshot: SignedSnapshot, afterMs = RETIRE_AFTER_MS): void {
  // The body first, then its gzip: a gzip renamed into place after this removal finds the body gone and
  // removes itself (makeGzipFile), one renamed before it is removed here.
  const timer = setTimeout(() => {
    void (async () => {
      await rm(snapshot.path, { force: true });
      await rm(gzipPathOf(snapshot), { force: true });
    })().catch(() => undefined);
  }, afterMs);
  timer.unref();
}
