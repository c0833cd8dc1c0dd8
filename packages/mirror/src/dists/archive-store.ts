/**
 * The mirror's archive cache on disk, content-addressed like the object store
 * (pnpm's cafs layout), with a name table and a disk budget:
 *
 *   <data>/dists/objects/<2 hex>/<62 hex>         the archive bytes, by sha256 (temp + fsync + rename)
 *   <data>/dists/refs/<vendor>/<name>/<ref>.<type>  "<sha256> <size>\n": which bytes that URL serves
 *   <data>/dists/tmp/                              downloads in progress (emptied at open)
 *
 * Its own directory, not the metadata store: archives are large, incompressible and
 * evictable (a miss is refetched), metadata objects are none of that, and the
 * metadata store compresses every put in memory.
 *
 * Least recently served archives are evicted once the total passes `budgetBytes`.
 * The LRU order lives in memory (one small entry per cached archive: bounded by the
 * budget, not by the repository); after a restart it starts from the refs' mtimes.
 * An archive being streamed when evicted is unlinked under its open descriptor and
 * finishes; a request that finds it gone fetches it again.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { hasErrno } from '@metasync/shared';
import { fsyncDir, writeFileAtomic } from '@metasync/shared/fs';

export interface ArchiveEntry {
  sha256: string;
  size: number;
  /** When this mirror stored it (ms): its Last-Modified. */
  storedMs: number;
}

export interface ArchiveStore {
  /** A fresh temp path for a download. */
  tmpPath(): string;
  /** Makes a downloaded temp file the bytes `key` serves (durable before it resolves), then evicts past the budget. */
  commit(key: string, input: { tmpPath: string; sha256: string; size: number }): Promise<ArchiveEntry>;
  /** The archive `key` serves, marked as just used; undefined when not cached. */
  get(key: string): ArchiveEntry | undefined;
  /** Drops `key` (e.g. its file vanished); its bytes go when no other key uses them. */
  forget(key: string): Promise<void>;
  pathOf(sha256: string): string;
  totalBytes(): number;
  count(): number;
}

export async function openArchiveStore(options: {
  dir: string;
  budgetBytes: number;
  onEvict?: (key: string) => void;
}): Promise<ArchiveStore> {
  const { dir, budgetBytes } = options;
  const objectsDir = join(dir, 'objects');
  const refsDir = join(dir, 'refs');
  const tmpDir = join(dir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  await mkdir(objectsDir, { recursive: true });
  await mkdir(refsDir, { recursive: true });
  /** key -> entry, least recently used first (Map keeps insertion order; a use re-inserts). */
  const entries = new Map<string, ArchiveEntry>();
  const users = new Map<string, number>();
  let total = 0;
  const pathOf = (sha256: string) => join(objectsDir, sha256.slice(0, 2), sha256.slice(2));
  const refPath = (key: string) => join(refsDir, key);

  function remember(key: string, entry: ArchiveEntry): void {
    entries.set(key, entry);
    const count = users.get(entry.sha256) ?? 0;
    users.set(entry.sha256, count + 1);
    if (count === 0) total += entry.size;
  }

  async function drop(key: string): Promise<void> {
    const entry = entries.get(key);
    if (entry === undefined) return;
    entries.delete(key);
    await unlinkIfPresent(refPath(key));
    const count = (users.get(entry.sha256) ?? 1) - 1;
    if (count > 0) {
      users.set(entry.sha256, count);
      return;
    }
    users.delete(entry.sha256);
    total -= entry.size;
    await unlinkIfPresent(pathOf(entry.sha256));
  }

  // Rebuild the table from the refs, oldest first; a ref whose object is missing (a crash between the
  // two writes cannot cause one, a hand-deleted file can) is dropped.
  const found: Array<{ key: string; entry: ArchiveEntry }> = [];
  for (const file of await listFiles(refsDir)) {
    const key = relative(refsDir, file);
    const match = /^([0-9a-f]{64}) (\d+)\n$/.exec(await readFile(file, 'utf8'));
    const objectStat = match === null ? undefined : await stat(pathOf(match[1]!)).catch(() => undefined);
    if (match === null || objectStat === undefined || objectStat.size !== Number(match[2])) {
      await unlinkIfPresent(file);
      continue;
    }
    found.push({ key, entry: { sha256: match[1]!, size: Number(match[2]), storedMs: Math.floor((await stat(file)).mtimeMs) } });
  }
  found.sort((a, b) => a.entry.storedMs - b.entry.storedMs);
  for (const { key, entry } of found) remember(key, entry);

  async function evict(keep: string): Promise<void> {
    for (const key of [...entries.keys()]) {
      if (total <= budgetBytes) return;
      if (key === keep) continue;
      await drop(key);
      options.onEvict?.(key);
    }
  }

  return {
    tmpPath: () => join(tmpDir, `${Date.now()}-${randomBytes(6).toString('hex')}`),
    async commit(key, input) {
      // Before the rename: dropping the old entry may unlink its bytes, which could be these very bytes.
      await drop(key);
      const target = pathOf(input.sha256);
      const handle = await open(input.tmpPath, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
      await mkdir(dirname(target), { recursive: true });
      await rename(input.tmpPath, target);
      await fsyncDir(dirname(target));
      // The ref only after its object is durable: a ref never names bytes that are not there.
      await mkdir(dirname(refPath(key)), { recursive: true });
      await writeFileAtomic(refPath(key), `${input.sha256} ${input.size}\n`);
      const entry = { sha256: input.sha256, size: input.size, storedMs: Date.now() };
      remember(key, entry);
      await evict(key);
      return entry;
    },
    get(key) {
      const entry = entries.get(key);
      if (entry === undefined) return undefined;
      entries.delete(key);
      entries.set(key, entry);
      return entry;
    },
    forget: drop,
    pathOf,
    totalBytes: () => total,
    count: () => entries.size,
  };
}

async function unlinkIfPresent(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) files.push(join(entry.parentPath, entry.name));
  }
  return files;
}
