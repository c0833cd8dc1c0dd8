import * as fsCallback from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { brotliCompress, brotliCompressSync, constants as zlibConstants, gzip, gzipSync } from 'node:zlib';
import { fsyncDir, hasErrno, metasyncError, objectRelPath, sha256Hex, tempPathFor } from '@metasync/shared';

const gzipAsync = promisify(gzip);
const execFileAsync = promisify(execFile);
const brotliAsync = promisify(brotliCompress);
// The callback API skips a FileHandle per call: a bulk apply writes tens of thousands of files.
const writeFileFast = promisify(fsCallback.writeFile);
const renameFast = promisify(fsCallback.rename);
const unlinkFast = promisify(fsCallback.unlink);

/**
 * The mirror's object store, content-addressed like the primary's (pnpm cafs
 * layout): `objects/ab/<62 hex>` holds the verified raw bytes, `.gz` and `.br`
 * beside it hold precompressed variants. Never a per-path file tree: a path is
 * an index entry pointing at a hash, so a generation switch never rewrites files
 * and a file never changes once written (responses may hold it open freely).
 *
 * Variants are written (in place: nothing reads them before their raw file
 * exists) from verified bytes only, and the raw object is renamed into place
 * last, so "raw file present" means "all variants present and every byte
 * verified" (after a crash too).
 *
 * Variants come from the primary when it sent them (pack frames carry both
 * brotli and gzip, checked by decoding), so a bootstrap never recompresses;
 * objects fetched without them (single GETs, S3) are compressed here.
 */
export const VARIANT_SUFFIX = { identity: '', gzip: '.gz', br: '.br' } as const;
export type Variant = keyof typeof VARIANT_SUFFIX;

export interface ObjectStore {
  readonly dir: string;
  pathOf(sha256: string, variant?: Variant): string;
  has(sha256: string): Promise<boolean>;
  /** Which of `sha256s` are present: one stat each for a few, one listing per shard directory for many. */
  presentAmong(sha256s: readonly string[]): Promise<Set<string>>;
  /**
   * Writes verified bytes (and variants); `brotli` is the primary's br body when it sent one.
   * `durable: false` skips the per-file fsync: the caller must call `syncFilesystem()` before
   * anything refers to the object (bulk applies, where one flush beats thousands of fsyncs).
   */
  put(object: VerifiedObject, options?: { durable?: boolean }): Promise<void>;
  /** One flush of the whole filesystem holding the store (`sync -f`, i.e. syncfs(2)). */
  syncFilesystem(): Promise<void>;
  remove(sha256: string): Promise<void>;
  /** fsyncs the shard directories touched since the last call (the batch's rename barrier). */
  syncDirs(): Promise<void>;
}

export interface VerifiedObject {
  sha256: string;
  raw: Buffer;
  /** Brotli bytes known to decode to `raw` (the primary's, decoded and hashed). */
  brotli?: Buffer | undefined;
  /** Gzip bytes known to decode to `raw` (the primary's, gunzipped and compared). */
  gzip?: Buffer | undefined;
}

/** Objects smaller than this are not worth a compressed variant (headers dominate). */
const MIN_COMPRESS_BYTES = 64;
/** Compressed on the event loop up to this size (threadpool zlib costs more than the work); above, on the threadpool. */
const SYNC_COMPRESS_MAX_BYTES = 64 * 1024;
/** From this many hashes on, listing every shard directory beats one stat per hash. */
const LIST_SHARDS_FROM = 2048;
const BROTLI_OPTIONS = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5, [zlibConstants.BROTLI_PARAM_MODE]: zlibConstants.BROTLI_MODE_TEXT } };
const GZIP_OPTIONS = { level: 6 };

/** The variants the primary did not send, compressed here. */
async function compressMissing(object: VerifiedObject): Promise<{ gzip: Buffer; brotli: Buffer }> {
  const { raw } = object;
  if (raw.length <= SYNC_COMPRESS_MAX_BYTES) {
    return { gzip: object.gzip ?? gzipSync(raw, GZIP_OPTIONS), brotli: object.brotli ?? brotliCompressSync(raw, BROTLI_OPTIONS) };
  }
  const [gz, br] = await Promise.all([object.gzip ?? gzipAsync(raw, GZIP_OPTIONS), object.brotli ?? brotliAsync(raw, BROTLI_OPTIONS)]);
  return { gzip: gz, brotli: br };
}

export async function openObjectStore(dataDir: string): Promise<ObjectStore> {
  const dir = join(dataDir, 'objects');
  await mkdir(dir, { recursive: true });
  const dirtyDirs = new Set<string>();
  const knownShards = new Set<string>();
  let createdShards = false;
  const pathOf = (sha256: string, variant: Variant = 'identity'): string => join(dir, objectRelPath(sha256) + VARIANT_SUFFIX[variant]);

  /** Creates `path` with `data`, fsynced when `durable`. */
  async function createFile(path: string, data: Uint8Array, durable: boolean): Promise<void> {
    if (!durable) {
      await writeFileFast(path, data, { flag: 'wx', mode: 0o644 });
      return;
    }
    const handle = await open(path, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Writes a variant in place. A leftover of a put that crashed is replaced by a new file, never truncated. */
  async function writeVariant(sha256: string, variant: 'gzip' | 'br', data: Uint8Array, durable: boolean): Promise<void> {
    const path = pathOf(sha256, variant);
    try {
      await createFile(path, data, durable);
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
      // With its raw file present the object is complete and may be served this instant: its
      // variant is whole (written before the raw rename) and must not be rewritten in place.
      // Without it, the variant is a crashed put's leftover: replace it.
      if (await has(sha256)) return;
      await unlinkFast(path);
      await createFile(path, data, durable);
    }
  }

  async function has(sha256: string): Promise<boolean> {
    try {
      await stat(pathOf(sha256));
      return true;
    } catch (err) {
      if (hasErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  return {
    dir,
    pathOf,
    has,
    async presentAmong(sha256s) {
      if (sha256s.length < LIST_SHARDS_FROM) {
        const found = await Promise.all(sha256s.map(has));
        return new Set(sha256s.filter((_, index) => found[index] === true));
      }
      const present = new Set<string>();
      const wanted = new Set(sha256s);
      const shards = new Set(sha256s.map((sha256) => sha256.slice(0, 2)));
      for (const shard of shards) {
        let names: string[];
        try {
          names = await readdir(join(dir, shard));
        } catch (err) {
          if (hasErrno(err, 'ENOENT')) continue;
          throw err;
        }
        // The raw file's name is the hash's remaining 62 hex digits; variants and temp files have longer names.
        for (const name of names) {
          const sha256 = shard + name;
          if (name.length === 62 && wanted.has(sha256)) present.add(sha256);
        }
      }
      return present;
    },
    async put(object, options = {}) {
      const durable = options.durable ?? true;
      const actual = sha256Hex(object.raw);
      if (actual !== object.sha256) {
        throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object ${object.sha256} hashes to ${actual}`, { sha256: object.sha256, actual });
      }
      const shard = join(dir, object.sha256.slice(0, 2));
      if (!knownShards.has(shard)) {
        // A new shard's own entry in objects/ must reach the disk too (syncDirs).
        if ((await mkdir(shard, { recursive: true })) !== undefined) createdShards = true;
        knownShards.add(shard);
      }
      const variants = object.raw.length >= MIN_COMPRESS_BYTES ? await compressMissing(object) : undefined;
      const rawPath = pathOf(object.sha256);
      const rawTemp = tempPathFor(rawPath);
      try {
        // The raw file appears whole (temp, then rename). Variants and the raw temp file are written
        // (and fsynced) together, one fsync round; the raw file is renamed into place only after
        // every variant is written, so "raw present" still means "all present".
        const writes = await Promise.allSettled([
          // A variant larger than the raw bytes is useless; serving falls back to identity.
          variants !== undefined && variants.gzip.length < object.raw.length ? writeVariant(object.sha256, 'gzip', variants.gzip, durable) : undefined,
          variants !== undefined && variants.brotli.length < object.raw.length ? writeVariant(object.sha256, 'br', variants.brotli, durable) : undefined,
          createFile(rawTemp, object.raw, durable),
        ]);
        const failed = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        await renameFast(rawTemp, rawPath);
      } catch (err) {
        await rm(rawTemp, { force: true });
        throw err;
      }
      dirtyDirs.add(shard);
    },
    async remove(sha256) {
      // Raw first: once it is gone the object counts as absent, whatever variants linger.
      for (const variant of ['identity', 'gzip', 'br'] as const) {
        await rm(pathOf(sha256, variant), { force: true });
      }
    },
    async syncFilesystem() {
      dirtyDirs.clear();
      createdShards = false;
      // Node has no syncfs(2); coreutils `sync -f` is it, and waits until the data is on disk.
      await execFileAsync('sync', ['-f', dir]);
    },
    async syncDirs() {
      const dirs = [...dirtyDirs];
      dirtyDirs.clear();
      const withTop = createdShards;
      createdShards = false;
      // objects/ itself changes only when a shard directory is created: one fsync less per apply otherwise.
      await Promise.all([...dirs.map((d) => fsyncDir(d)), withTop ? fsyncDir(dir) : undefined]);
    },
  };
}

/** Which variants exist for an object: checked once when an entry is first served, then cached. */
export async function variantsOf(store: ObjectStore, sha256: string): Promise<{ gzipSize?: number; brSize?: number }> {
  const result: { gzipSize?: number; brSize?: number } = {};
  for (const [variant, key] of [['gzip', 'gzipSize'], ['br', 'brSize']] as const) {
    try {
      result[key] = (await stat(store.pathOf(sha256, variant))).size;
    } catch (err) {
      if (!hasErrno(err, 'ENOENT')) throw err;
    }
  }
  return result;
}
