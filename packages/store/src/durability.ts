import { execFile } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno } from '@metasync/shared';
import { fsyncDir } from '@metasync/shared/fs';

/**
 * The store's one durability API. Puts never fsync; they record what they
 * created, and `sync()` (called by the owner once per generation, before the
 * record that references the objects) makes all of it durable.
 *
 * Measured (ext4 on virtio): an fsync costs 0.2-3 ms, 500 parallel fsyncs
 * ~80 ms, one `syncfs` (`sync -f`) after 5,000 new files ~80 ms with ~9 ms of
 * process start. So a few files are fsynced each, in parallel, with the shard
 * directories whose entries changed (and the top directory only when a shard
 * was created); above SYNCFS_THRESHOLD_FILES one syncfs covers files and
 * directories alike.
 */
export const SYNCFS_THRESHOLD_FILES = 64;

export interface Durability {
  /** `path` was created (or relinked) in shard directory `shard`. */
  fileWritten(path: string, shard: string): void;
  /** An entry in shard directory `shard` changed (a file was unlinked). */
  shardChanged(shard: string): void;
  /** A shard directory was created: the top directory's entries changed. */
  shardCreated(shard: string): void;
  /** Paths and directories waiting for the next sync (for tests and metrics). */
  pending(): { files: number; dirs: number };
  sync(): Promise<void>;
}

/** `dir` is the store's top directory; shards are its 2-hex subdirectories. */
export function createDurability(dir: string): Durability {
  let files = new Set<string>();
  /**
   * Files written past the first SYNCFS_THRESHOLD_FILES + 1, counted and not named: that many make the sync one
   * syncfs, which needs no paths. A million-path bootstrap named every object's file until its one sync (about
   * 100 MB of path strings at its peak).
   */
  let moreFiles = 0;
  let shards = new Set<string>();
  let topChanged = false;

  async function sync(): Promise<void> {
    const batch = { files, moreFiles, shards, topChanged };
    files = new Set();
    moreFiles = 0;
    shards = new Set();
    topChanged = false;
    try {
      if (batch.files.size + batch.moreFiles > SYNCFS_THRESHOLD_FILES) {
        await syncfs(dir);
        return;
      }
      await Promise.all([
        ...[...batch.files].map((path) => fsyncFile(path)),
        ...[...batch.shards].map((shard) => fsyncDir(join(dir, shard))),
        batch.topChanged ? fsyncDir(dir) : undefined,
      ]);
    } catch (err) {
      // Nothing of a failed batch is known durable: the next sync covers it again.
      for (const path of batch.files) files.add(path);
      moreFiles += batch.moreFiles;
      for (const shard of batch.shards) shards.add(shard);
      topChanged ||= batch.topChanged;
      throw err;
    }
  }

  return {
    fileWritten(path, shard) {
      if (files.size <= SYNCFS_THRESHOLD_FILES) files.add(path);
      else if (!files.has(path)) moreFiles++;
      shards.add(shard);
    },
    shardChanged: (shard) => void shards.add(shard),
    shardCreated(shard) {
      shards.add(shard);
      topChanged = true;
    },
    pending: () => ({ files: files.size + moreFiles, dirs: shards.size + (topChanged ? 1 : 0) }),
    sync,
  };
}

/** Makes the contents of `paths` (files under `dir`) durable: one fsync each for a few, one syncfs for many. */
export async function syncFiles(dir: string, paths: readonly string[]): Promise<void> {
  if (paths.length > SYNCFS_THRESHOLD_FILES) await syncfs(dir);
  else await Promise.all(paths.map((path) => fsyncFile(path)));
}

/** Node has no syncfs(2); coreutils `sync -f` is it, and waits until the data is on disk. */
function syncfs(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['-f', dir], (err) => (err === null ? resolve() : reject(err)));
  });
}

async function fsyncFile(path: string): Promise<void> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    // Written, never referenced, and removed since (or a variant the policy did not keep): nothing to make durable.
    if (hasErrno(err, 'ENOENT')) return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
