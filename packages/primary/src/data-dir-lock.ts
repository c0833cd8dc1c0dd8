import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasErrno, metasyncError, type MetasyncError } from '@metasync/shared';

export const LOCK_FILE = 'primary.lock';

/** Locks held by this process: our own pid in a lock file is stale only if it is not one of these. */
const heldHere = new Set<string>();

/**
 * One primary per data dir: two appending to one journal would interleave
 * records and reuse seqs. The lock is `<data>/primary.lock` holding the owner's
 * pid, created exclusively. A lock left by a dead process (SIGKILL, crash) is
 * taken over; so is one naming our own pid that this process does not hold
 * (a container restart reuses pid 1).
 */
export async function lockDataDir(dataDir: string): Promise<{ release(): Promise<void> }> {
  const path = join(dataDir, LOCK_FILE);
  if (heldHere.has(path)) throw inUse(dataDir, path, process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      heldHere.add(path);
      return {
        async release() {
          heldHere.delete(path);
          await unlinkIfPresent(path);
        },
      };
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) throw inUse(dataDir, path, owner);
    await unlinkIfPresent(path);
  }
  throw metasyncError('METASYNC_ERR_CONFIG_INVALID', `could not lock data dir ${dataDir}: another process raced for ${path}`, { path });
}

function inUse(dataDir: string, path: string, pid: number): MetasyncError {
  return metasyncError(
    'METASYNC_ERR_CONFIG_INVALID',
    `data dir ${dataDir} is in use by another primary (pid ${pid}); if it is not running, remove ${path}`,
    {
      path,
      pid,
    },
  );
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return hasErrno(err, 'EPERM');
  }
}
