import * as fsCallback from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, metasyncError, sha256Hex } from '@metasync/shared';
import { fsyncDir } from '@metasync/shared/fs';
import type { GivenVariants } from './compression.js';
import { createDurability } from './durability.js';
import { createBatchedFiles } from './batched-files.js';
import { storeError } from './errors.js';
import { objectPath, shardOf, VARIANTS, type Variant } from './layout.js';
import { createLimiter } from './limiter.js';
import { hasObject, lackingBrotli, listShard, presentAmong, sizeOf, surveyAmong, type Survey } from './presence.js';
import { addBrotliVariants } from './brotli-variant.js';
import { readIdentity } from './identity.js';
import { verifyObject, writeObject, type WriteContext } from './write-path.js';

const unlink = promisify(fsCallback.unlink);

/**
 * The content-addressed object store shared by primary and mirror (layout in
 * layout.ts, write path in write-path.ts, durability in durability.ts,
 * compression policy in compression.ts). One process owns a store directory.
 *
 * Puts of the same bytes share one attempt, so no put sees another's
 * half-made object. Removal unlinks the raw file first, so the object stops
 * existing before its variants go (a crash in between leaves variants that the
 * next collection finds by name). It is refused while a put of the same bytes
 * is in flight, and a put that arrives during a removal waits for it and then
 * writes the object anew: there is no "exists" cache to go stale (every put
 * stats the raw file; shard directories are never removed).
 */
export interface ObjectInput extends GivenVariants {
  raw: Buffer;
  /** The address the caller expects; bytes that hash otherwise are refused (METASYNC_ERR_OBJECT_HASH_MISMATCH). */
  sha256?: string | undefined;
  /**
   * The caller has just found the object absent or damaged: the put skips its own check. Were it present
   * after all, its files are replaced by the same bytes (each unlinked and created anew; a raw file beside a
   * gzip one, from an older version, unlinked).
   */
  knownAbsent?: boolean | undefined;
  /** Stronger than knownAbsent: the caller's survey just found no file of this object at all, not even a leftover to remove. */
  knownClean?: boolean | undefined;
  /** Leave a brotli variant the caller does not give for later (addBrotli, after the commit): bulk ingest and bootstrap. */
  deferBrotli?: boolean | undefined;
}

export interface StoredObject {
  sha256: string;
  size: number;
  /** False when an intact copy already existed. */
  created: boolean;
}

export interface ObjectStore {
  readonly dir: string;
  /** Stores the bytes and their variants (`brotli`/`gzip` when the caller holds verified ones). Never fsyncs: see sync(). */
  put(object: ObjectInput): Promise<StoredObject>;
  /**
   * Adds the brotli variant to each of `sha256s` that is present and lacks one (brotli-variant.ts): made from
   * the raw bytes hashed against the name, durable before it appears. Returns how many were made.
   */
  addBrotli(sha256s: readonly string[]): Promise<number>;
  /** Makes every file and directory entry created since the last sync durable. */
  sync(): Promise<void>;
  /** What the next sync() will make durable. */
  unsynced(): { files: number; dirs: number };
  has(sha256: string): Promise<boolean>;
  /** Which of `sha256s` are present: one stat each for a few, one listing per shard directory for many. */
  presentAmong(sha256s: readonly string[]): Promise<Set<string>>;
  /** presentAmong, and (when the shards were listed) which have any file at all: a put of one without need not look (knownClean). */
  survey(sha256s: readonly string[]): Promise<Survey>;
  /**
   * True when the object is present, hashes to its name and its variants decode to it. For reuse without the
   * bytes at hand (after a restart, a present object may be an unsynced leftover damaged by a power loss).
   */
  verify(sha256: string): Promise<boolean>;
  /** The raw bytes (an object with a gzip variant keeps no raw file: decoded from it); METASYNC_ERR_OBJECT_NOT_FOUND when absent. */
  read(sha256: string): Promise<Buffer>;
  /** One variant's bytes; METASYNC_ERR_OBJECT_NOT_FOUND when absent (small or incompressible objects keep none). */
  readVariant(sha256: string, variant: Variant): Promise<Buffer>;
  /** The first of `variants` the object keeps; METASYNC_ERR_OBJECT_NOT_FOUND when none. List 'identity' last to always get bytes. */
  readPreferred(sha256: string, variants: readonly Variant[]): Promise<{ variant: Variant; bytes: Buffer }>;
  /** Where a variant's file is; 'identity' names the raw file, which an object keeping a gzip variant does not have. */
  pathOf(sha256: string, variant?: Variant): string;
  /** Unlinks the raw file and its variants; `removed: false` (nothing touched) while a put of it is in flight. */
  remove(sha256: string): Promise<{ removed: boolean; bytesFreed: number }>;
  /** The shas with any file (raw or variant) in shard directory `shard` (2 hex digits); empty when it does not exist. */
  listShard(shard: string): Promise<string[]>;
  /** The shas in shard directory `shard` that keep a gzip variant and no brotli one (the backfill's sweep). */
  lackingBrotli(shard: string): Promise<string[]>;
  /** Ends the store's file thread (batched-files.ts) once its work is done; the store still works, through libuv's pool. */
  close(): Promise<void>;
}

/** Puts in progress at once: bounds open files and memory under a burst of thousands. */
export const DEFAULT_PUT_CONCURRENCY = 32;

export async function openObjectStore(options: {
  dir: string;
  putConcurrency?: number;
  /** A daemon's store: its file thread starts now and lives until close() (batched-files.ts says why). */
  keepFileThread?: boolean;
}): Promise<ObjectStore> {
  const { dir } = options;
  const limit = createLimiter(options.putConcurrency ?? DEFAULT_PUT_CONCURRENCY);
  const tmpDir = join(dir, 'tmp');
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const knownShards = new Set((await readdir(dir)).filter((name) => /^[0-9a-f]{2}$/.test(name)));
  // A process killed before its sync may have left shard entries not yet durable; objects in them get re-synced when reused.
  if (knownShards.size > 0) await fsyncDir(dir);
  const durability = createDurability(dir);
  const inFlight = new Map<string, Promise<StoredObject>>();
  const removing = new Map<string, Promise<unknown>>();
  const pathOf = (sha256: string, variant: Variant = 'identity'): string => objectPath(dir, sha256, variant);

  /**
   * A present object found by a caller about to reference it may be a killed process's leftover still
   * only in the page cache: the next sync makes it durable too (an fsync of a clean file is nearly free).
   */
  function reused(sha256: string): void {
    for (const variant of VARIANTS) durability.fileWritten(pathOf(sha256, variant), shardOf(sha256));
  }

  const context: WriteContext = {
    dir,
    tmpDir,
    durability,
    knownShards,
    reused,
    files: createBatchedFiles({ kept: options.keepFileThread === true }),
  };

  async function put(object: ObjectInput): Promise<StoredObject> {
    const sha256 = sha256Hex(object.raw);
    if (object.sha256 !== undefined && object.sha256 !== sha256) {
      throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object bytes hash to ${sha256}, expected ${object.sha256}`, {
        expected: object.sha256,
        got: sha256,
      });
    }
    const running = inFlight.get(sha256);
    if (running !== undefined) return { ...(await running), created: false };
    const removal = removing.get(sha256);
    const attempt = limit(async () => {
      // Only the settling matters here: the removal's own caller handles its outcome.
      if (removal !== undefined) await Promise.allSettled([removal]);
      try {
        const created = await writeObject(context, sha256, object.raw, object);
        return { sha256, size: object.raw.length, created };
      } catch (err) {
        throw storeError(err, pathOf(sha256));
      }
    });
    inFlight.set(sha256, attempt);
    try {
      return await attempt;
    } finally {
      inFlight.delete(sha256);
    }
  }

  const notFound = (sha256: string, variants: readonly Variant[]) =>
    metasyncError('METASYNC_ERR_OBJECT_NOT_FOUND', `no object ${sha256} (${variants.join(', ')}) in ${dir}`, {
      sha256,
      encoding: variants.join(','),
    });

  /** The raw bytes: the gzip file decoded, else the raw file (layout.ts). */
  async function readRaw(sha256: string): Promise<Buffer> {
    const stored = await readIdentity(dir, sha256);
    if (stored === 'absent') throw notFound(sha256, ['identity']);
    if (stored === 'undecodable') {
      throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `stored object ${sha256} does not decode: ${pathOf(sha256, 'gzip')}`, {
        sha256,
        encoding: 'gzip',
      });
    }
    return stored;
  }

  /** A variant's file, undefined when the object keeps none. */
  async function readFileOf(sha256: string, variant: Exclude<Variant, 'identity'>): Promise<Buffer | undefined> {
    // Batched with the turn's other reads when there are many (a pack's objects): batched-files.ts.
    return context.files.read(pathOf(sha256, variant));
  }

  async function readVariant(sha256: string, variant: Variant): Promise<Buffer> {
    if (variant === 'identity') return readRaw(sha256);
    const bytes = await readFileOf(sha256, variant);
    if (bytes === undefined) throw notFound(sha256, [variant]);
    return bytes;
  }

  async function readPreferred(sha256: string, variants: readonly Variant[]): Promise<{ variant: Variant; bytes: Buffer }> {
    for (const variant of variants) {
      if (variant === 'identity') return { variant, bytes: await readRaw(sha256) };
      const bytes = await readFileOf(sha256, variant);
      if (bytes !== undefined) return { variant, bytes };
    }
    throw notFound(sha256, variants);
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
    // Raw, then gzip (VARIANTS order): once both are gone the object counts as absent, whatever brotli file lingers.
    for (const variant of VARIANTS) {
      const path = pathOf(sha256, variant);
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

  return {
    dir,
    put,
    async addBrotli(sha256s) {
      try {
        return await addBrotliVariants(context, sha256s, (sha256) => inFlight.has(sha256) || removing.has(sha256));
      } catch (err) {
        throw storeError(err, dir);
      }
    },
    async sync() {
      try {
        await durability.sync();
      } catch (err) {
        throw storeError(err, dir);
      }
    },
    unsynced: () => durability.pending(),
    async has(sha256) {
      const found = await hasObject(dir, sha256);
      if (found) reused(sha256);
      return found;
    },
    async survey(sha256s) {
      const found = await surveyAmong(dir, sha256s);
      for (const sha256 of found.present) reused(sha256);
      return found;
    },
    async presentAmong(sha256s) {
      const found = await presentAmong(dir, sha256s);
      for (const sha256 of found) reused(sha256);
      return found;
    },
    verify: (sha256) => verifyObject(context, sha256),
    read: readRaw,
    readVariant,
    readPreferred,
    pathOf,
    remove,
    listShard: (shard) => listShard(dir, shard),
    lackingBrotli: (shard) => lackingBrotli(dir, shard),
    close: () => context.files.close(),
  };
}

/** Which variants an object keeps and their sizes: checked once when an entry is first served, then cached. */
export async function variantsOf(store: Pick<ObjectStore, 'pathOf'>, sha256: string): Promise<{ gzipSize?: number; brSize?: number }> {
  const [gzipSize, brSize] = await Promise.all([sizeOf(store.pathOf(sha256, 'gzip')), sizeOf(store.pathOf(sha256, 'br'))]);
  return { ...(gzipSize === undefined ? {} : { gzipSize }), ...(brSize === undefined ? {} : { brSize }) };
}
