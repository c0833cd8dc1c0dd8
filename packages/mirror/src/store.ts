import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import { fsyncDir, hasErrno, metasyncError, objectRelPath, sha256Hex, tempPathFor } from '@metasync/shared';

const gzipAsync = promisify(gzip);
const execFileAsync = promisify(execFile);
const brotliAsync = promisify(brotliCompress);

/**
 * The mirror's object store, content-addressed like the primary's (pnpm cafs
 * layout): `objects/ab/<62 hex>` holds the verified raw bytes, `.gz` and `.br`
 * beside it hold precompressed variants. Never a per-path file tree: a path is
 * an index entry pointing at a hash, so a generation switch never rewrites files
 * and a file never changes once written (responses may hold it open freely).
 *
 * A variant exists only once the raw object exists and was verified, and the
 * raw object is renamed into place last, so "raw file present" means "all
 * variants present and every byte verified" (after a crash too).
 */
export const VARIANT_SUFFIX = { identity: '', gzip: '.gz', br: '.br' } as const;
export type Variant = keyof typeof VARIANT_SUFFIX;

export interface ObjectStore {
  readonly dir: string;
  pathOf(sha256: string, variant?: Variant): string;
  has(sha256: string): Promise<boolean>;
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
  brotli?: Buffer | undefined;
}

/** Objects smaller than this are not worth a compressed variant (headers dominate). */
const MIN_COMPRESS_BYTES = 64;

export async function openObjectStore(dataDir: string): Promise<ObjectStore> {
  const dir = join(dataDir, 'objects');
  await mkdir(dir, { recursive: true });
  const dirtyDirs = new Set<string>();
  const knownShards = new Set<string>();
  const pathOf = (sha256: string, variant: Variant = 'identity'): string => join(dir, objectRelPath(sha256) + VARIANT_SUFFIX[variant]);

  async function writeDurable(path: string, data: Uint8Array, durable: boolean): Promise<void> {
    const temp = tempPathFor(path);
    const handle = await open(temp, 'wx', 0o644);
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } catch (err) {
      await handle.close();
      await rm(temp, { force: true });
      throw err;
    }
    await handle.close();
    try {
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  return {
    dir,
    pathOf,
    async has(sha256) {
      try {
        await stat(pathOf(sha256));
        return true;
      } catch (err) {
        if (hasErrno(err, 'ENOENT')) return false;
        throw err;
      }
    },
    async put(object, options = {}) {
      const durable = options.durable ?? true;
      const actual = sha256Hex(object.raw);
      if (actual !== object.sha256) {
        throw metasyncError('METASYNC_ERR_OBJECT_HASH_MISMATCH', `object ${object.sha256} hashes to ${actual}`, { sha256: object.sha256, actual });
      }
      const shard = join(dir, object.sha256.slice(0, 2));
      if (!knownShards.has(shard)) {
        await mkdir(shard, { recursive: true });
        knownShards.add(shard);
      }
      if (object.raw.length >= MIN_COMPRESS_BYTES) {
        const [gz, br] = await Promise.all([
          gzipAsync(object.raw, { level: 6 }),
          object.brotli ?? brotliAsync(object.raw, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 5 } }),
        ]);
        // A variant larger than the raw bytes is useless; serving falls back to identity.
        await Promise.all([
          gz.length < object.raw.length ? writeDurable(pathOf(object.sha256, 'gzip'), gz, durable) : undefined,
          br.length < object.raw.length ? writeDurable(pathOf(object.sha256, 'br'), br, durable) : undefined,
        ]);
      }
      await writeDurable(pathOf(object.sha256), object.raw, durable);
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
      // Node has no syncfs(2); coreutils `sync -f` is it, and waits until the data is on disk.
      await execFileAsync('sync', ['-f', dir]);
    },
    async syncDirs() {
      const dirs = [...dirtyDirs];
      dirtyDirs.clear();
      await Promise.all(dirs.map((d) => fsyncDir(d)));
      if (dirs.length > 0) await fsyncDir(dir);
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
