import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fsyncDir, hasErrno } from '@metasync/shared';

/**
 * The object store's batched durability: puts only note what they wrote, and
 * `sync()` makes all of it durable at once. Measured here (ext4 on virtio): an
 * fsync costs 0.2-3 ms, 500 parallel fsyncs ~80 ms, one `syncfs` (`sync -f`)
 * after 5,000 new files ~80 ms with ~9 ms of process start. So a small
 * generation fsyncs its few files in parallel, and a burst uses one syncfs
 * instead of thousands of fsyncs.
 */
export interface Durability {
  /** A file was created in shard directory `shard`. */
  written(path: string, shard: string): void;
  /** Directory entries changed in `shard` (2 hex digits), or in the store's own directory for '.'. */
  dirty(shard: string): void;
  /** Makes every file and directory entry noted since the last sync durable. */
  sync(): Promise<void>;
}

/** Above this many new files, one syncfs is cheaper than one fsync each (see above). */
export const SYNCFS_THRESHOLD_FILES = 64;
const execFileAsync = promisify(execFile);

export function createDurability(dir: string): Durability {
  let dirtyShards = new Set<string>();
  let unsyncedFiles: string[] = [];
  return {
    written(path, shard) {
      dirtyShards.add(shard);
      unsyncedFiles.push(path);
    },
    dirty(shard) {
      dirtyShards.add(shard);
    },
    async sync() {
      const files = unsyncedFiles;
      const shards = dirtyShards;
      unsyncedFiles = [];
      dirtyShards = new Set();
      if (files.length > SYNCFS_THRESHOLD_FILES) {
        await execFileAsync('sync', ['-f', dir]);
        return;
      }
      await Promise.all([
        ...files.map((path) => fsyncFile(path)),
        ...[...shards].map((shard) => fsyncDir(shard === '.' ? dir : join(dir, shard))),
      ]);
    },
  };
}

async function fsyncFile(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    // Written, never committed, and collected as garbage since: nothing left to make durable.
    if (hasErrno(err, 'ENOENT')) return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
