import { randomBytes } from 'node:crypto';
import * as fsCallback from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { hasErrno, isSha256Hex, metasyncError, objectRelPath, sha256Hex } from '@metasync/shared';
import { createLimiter } from './concurrency-limit.js';
import { compressObject } from './compression.js';
import { createDurability } from './durability.js';

/**
 * Content-addressed object store, pnpm cafs style:
 *
 *   <dir>/ab/cdef...        raw bytes, named by their sha256 (the object "exists" iff this does)
 *   <dir>/ab/cdef....gz     gzip, written at ingest
 *   <dir>/ab/cdef....br     brotli, written at ingest
 *   <dir>/tmp/              temp files (same filesystem, cleared on open)
 *
 * A new object: hash, compress, write the two siblings, then write the raw
 * bytes to a temp file and `link()` it into place. link fails with EEXIST
 * instead of replacing, so an existing object is never rewritten, and the raw
 * file appears whole and last: "raw exists" implies both siblings were written.
 * Siblings are written in place (no temp + link: 4 fewer syscalls per object,
 * which is most of a 10k-file burst) because nothing reads a sibling before
 * its raw file exists, and a put only rewrites siblings while the raw is absent.
 *
 * Durability is batched: puts do not fsync; `sync()` (called by the publisher
 * once per generation, before the journal record that references the objects)
 * makes every file and directory entry created since the last sync durable
 * (durability.ts: parallel fsyncs for a few files, one syncfs for a burst).
 *
 * An object found already present may be a leftover of a put whose generation
 * never committed, unsynced when the power went: so a put that finds one
 * checks it (raw bytes equal, siblings decode to them) before trusting it, and
 * re-creates it when damaged. The publisher skips the put for a path whose
 * content is unchanged, so this check runs only on a true dedupe hit.
 *
 * Removal (gc.ts is the only caller) unlinks raw first, so the object
 * stops "existing" before its siblings go; a crash in between leaves siblings
 * that the next collection finds by name. It is refused while a put of the
 * same bytes is in flight, and a put that arrives during a removal waits for
 * it and then writes the object anew: there is no "exists" cache to go stale
 * (every put stats the raw file; shard directories are never removed).
 */
export type ObjectEncoding = 'identity' | 'br' | 'gzip';

export interface StoredObject {
  sha256: string;
  size: number;
  /** False when the object already existed. */
  created: boolean;
}

export interface ObjectStore {
  readonly dir: string;
  /** Stores `content`; rejects with METASYNC_ERR_OBJECT_HASH_MISMATCH when it does not hash to `expectedSha256`. */
  put(content: Buffer, expectedSha256?: string): Promise<StoredObject>;
  has(sha256: string): Promise<boolean>;
  /** The raw bytes; METASYNC_ERR_OBJECT_NOT_FOUND when absent. */
  read(sha256: string): Promise<Buffer>;
  /** One stored variant's bytes; METASYNC_ERR_OBJECT_NOT_FOUND when absent. */
  readVariant(sha256: string, encoding: ObjectEncoding): Promise<Buffer>;
  pathOf(sha256: string, encoding: ObjectEncoding): string;
  /** Makes every file and directory entry created since the last sync durable. */
  sync(): Promise<void>;
  /** Unlinks the raw file and its siblings; `removed: false` (nothing touched) while a put of it is in flight. */
  remove(sha256: string): Promise<{ removed: boolean; bytesFreed: number }>;
  /** The shas with any file (raw or sibling) in shard directory `shard` (2 hex digits); empty when it does not exist. */
  listShard(shard: string): Promise<string[]>;
}

const SUFFIX: Record<ObjectEncoding, string> = { identity: '', br: '.br', gzip: '.gz' };

// The callback API skips a FileHandle per call: measurably cheaper on the 10k-file burst path.
const writeFile = promisify(fsCallback.writeFile);
const link = promisify(fsCallback.link);
const unlink = promisify(fsCallback.unlink);
const stat = promisify(fsCallback.stat);

/** Puts in progress at once: bounds open files and memory under a burst of thousands. */
export const DEFAULT_PUT_CONCURRENCY = 32;

export async function openObjectStore(options: { dir: string; putConcurrency?: number }): Promise<ObjectStore> {
  const { dir } = options;
  const limit = createLimiter(options.putConcurrency ?? DEFAULT_PUT_CONCURRENCY);
  const tmpDir = join(dir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const knownShards = new Set<string>(await readdir(dir));
  const durability = createDurability(dir);
  /** Puts of the same bytes share one attempt, so no put ever sees another's half-made object. */
  const inFlight = new Map<string, Promise<StoredObject>>();
  /** Removals in progress: a put of the same bytes waits for one to finish, then writes anew. */
  const removing = new Map<string, Promise<unknown>>();

  const pathOf = (sha256: string, encoding: ObjectEncoding): string => join(dir, objectRelPath(sha256) + SUFFIX[encoding]);

  async function ensureShard(shard: string): Promise<void> {
    if (knownShards.has(shard)) return;
    await mkdir(join(dir, shard), { recursive: true });
    knownShards.add(shard);
    durability.dirty('.');
  }

  /** Raw bytes appear whole: temp + link. Returns false when the file already existed. */
  async function linkRaw(finalPath: string, data: Buffer, shard: string): Promise<boolean> {
    const temp = join(tmpDir, randomBytes(12).toString('hex'));
    try {
      await writeFile(temp, data, { flag: 'wx', mode: 0o644 });
      await link(temp, finalPath);
      durability.written(finalPath, shard);
      return true;
    } catch (err) {
      if (hasErrno(err, 'EEXIST')) return false;
      throw err;
    } finally {
      await unlink(temp).catch((err: unknown) => {
        if (!hasErrno(err, 'ENOENT')) throw err;
      });
    }
  }

  async function sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).size;
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  async function readIfPresent(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  /** True when raw and both siblings are present and decode to `content`. */
  async function isIntact(sha256: string, content: Buffer): Promise<boolean> {
    const [raw, gz, br] = await Promise.all([
      readIfPresent(pathOf(sha256, 'identity')),
      readIfPresent(pathOf(sha256, 'gzip')),
      readIfPresent(pathOf(sha256, 'br')),
    ]);
    if (raw === undefined || gz === undefined || br === undefined || !raw.equals(content)) return false;
    try {
      return gunzipSync(gz).equals(content) && brotliDecompressSync(br).equals(content);
    } catch {
      return false; // a truncated or garbage sibling does not decode: re-create it
    }
  }

  async function put(content: Buffer, expectedSha256?: string): Promise<StoredObject> {
    const sha256 = sha256Hex(content);
    if (expectedSha256 !== undefined && expectedSha256 !== sha256) {
      throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object bytes hash to ${sha256}, expected ${expectedSha256}`, {
        expected: expectedSha256,
        got: sha256,
      });
    }
    const running = inFlight.get(sha256);
    if (running !== undefined) return { ...(await running), created: false };
    const removal = removing.get(sha256);
    const attempt = limit(async () => {
      // Only the settling matters here: the removal's own caller handles its outcome.
      if (removal !== undefined) await Promise.allSettled([removal]);
      return putOnce(sha256, content);
    });
    inFlight.set(sha256, attempt);
    try {
      return await attempt;
    } finally {
      inFlight.delete(sha256);
    }
  }

  async function putOnce(sha256: string, content: Buffer): Promise<StoredObject> {
    const shard = sha256.slice(0, 2);
    const rawPath = pathOf(sha256, 'identity');
    try {
      const rawSize = await sizeOf(rawPath);
      if (rawSize !== undefined) {
        if (rawSize === content.length && (await isIntact(sha256, content))) return { sha256, size: content.length, created: false };
        await rm(rawPath, { force: true });
        durability.dirty(shard);
      }
      await ensureShard(shard);
      const compressed = await compressObject(content);
      await Promise.all(
        (['gzip', 'br'] as const).map(async (encoding) => {
          const path = pathOf(sha256, encoding);
          await writeFile(path, compressed[encoding], { mode: 0o644 });
          durability.written(path, shard);
        }),
      );
      const created = await linkRaw(rawPath, content, shard);
      return { sha256, size: content.length, created };
    } catch (err) {
      throw storeError(err, rawPath);
    }
  }

  async function readVariant(sha256: string, encoding: ObjectEncoding): Promise<Buffer> {
    const path = pathOf(sha256, encoding);
    try {
      return await readFile(path);
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) {
        throw metasyncError('METASYNC_ERR_OBJECT_NOT_FOUND', `no object ${sha256} (${encoding}) in ${dir}`, { sha256, encoding });
      }
      throw err;
    }
  }

  function remove(sha256: string): Promise<{ removed: boolean; bytesFreed: number }> {
    // Checked and claimed in the caller's tick: a put starting after this waits for the removal.
    if (inFlight.has(sha256) || removing.has(sha256)) return Promise.resolve({ removed: false, bytesFreed: 0 });
    const attempt = removeFiles(sha256);
    removing.set(sha256, attempt);
    return attempt.finally(() => removing.delete(sha256));
  }

  async function removeFiles(sha256: string): Promise<{ removed: boolean; bytesFreed: number }> {
    let bytesFreed = 0;
    for (const encoding of ['identity', 'gzip', 'br'] as const) {
      const path = pathOf(sha256, encoding);
      const size = await sizeOf(path);
      if (size === undefined) continue;
      try {
        await unlink(path);
        bytesFreed += size;
      } catch (err) {
        if (!hasErrno(err, 'ENOENT')) throw err;
      }
    }
    return { removed: true, bytesFreed };
  }

  async function listShard(shard: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(join(dir, shard));
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const shas = new Set<string>();
    for (const name of names) {
      const sha256 = shard + name.replace(/\.(gz|br)$/, '');
      if (isSha256Hex(sha256)) shas.add(sha256);
    }
    return [...shas];
  }

  return {
    dir,
    put,
    has: async (sha256) => (await sizeOf(pathOf(sha256, 'identity'))) !== undefined,
    read: (sha256) => readVariant(sha256, 'identity'),
    readVariant,
    pathOf,
    sync: durability.sync,
    remove,
    listShard,
  };
}

function storeError(err: unknown, path: string): unknown {
  if (hasErrno(err, 'ENOSPC')) {
    return metasyncError('METASYNC_ERR_STORE_NO_SPACE', `no space left writing ${path}`, { path }, err);
  }
  return err;
}
