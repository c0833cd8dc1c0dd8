import { randomBytes } from 'node:crypto';
import * as fsCallback from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, sha256Hex } from '@metasync/shared';
import { decodesTo, variantsFor, type GivenVariants, type KeptVariants } from './compression.js';
import type { Durability } from './durability.js';
import { COMPRESSED_VARIANTS, objectPath, shardOf } from './layout.js';
import { sizeOf } from './presence.js';

// The callback API skips a FileHandle per call: measurably cheaper on a 10k-file burst.
const writeFile = promisify(fsCallback.writeFile);
const rename = promisify(fsCallback.rename);
const unlink = promisify(fsCallback.unlink);
const readFile = promisify(fsCallback.readFile);

/**
 * The one write path. A new object: variants first, then the raw bytes to a
 * temp file and `rename()` into place, so the raw file appears whole and last:
 * "raw present" implies every kept variant was written whole. The raw file was
 * absent when checked, and puts of one hash share one attempt (store.ts), so
 * the rename replaces nothing (if it ever did, it would swap in the same bytes
 * atomically). rename rather than link + unlink: one directory operation fewer
 * per object, and directory operations are most of a bootstrap's cost.
 *
 * Variants are created in place (no temp + rename: 2 fewer syscalls per object,
 * most of a 10k-file burst) because nothing reads a variant before its raw file
 * exists, and this path only runs while the raw file is absent (or, with
 * knownAbsent, a damaged leftover nothing references yet). A variant left
 * by a crashed put is unlinked and created anew, never truncated: a reader that
 * opened the old file keeps the bytes it opened.
 *
 * An object found present may be a leftover of a put whose generation never
 * committed, unsynced when the power went: it is trusted only when intact (raw
 * bytes equal, kept variants decode to them), else its raw file is unlinked
 * (the object stops existing) and it is created again.
 */
export interface WriteContext {
  dir: string;
  tmpDir: string;
  durability: Durability;
  /** Shard directories known to exist; shards are never removed. */
  knownShards: Set<string>;
  /** An intact object is being reused: it may be a killed process's leftover only in the page cache. */
  reused(sha256: string): void;
}

/** Stores `raw` under `sha256` (already checked to be its hash); false when an intact copy was already present. */
export async function writeObject(
  context: WriteContext,
  sha256: string,
  raw: Buffer,
  given: GivenVariants & { knownAbsent?: boolean | undefined; deferBrotli?: boolean | undefined },
): Promise<boolean> {
  const shard = shardOf(sha256);
  const rawPath = objectPath(context.dir, sha256);
  const rawSize = given.knownAbsent === true ? undefined : await sizeOf(rawPath);
  if (rawSize !== undefined) {
    if (rawSize === raw.length && (await isIntact(context, sha256, raw, given))) {
      context.reused(sha256);
      return false;
    }
    await removeIfPresent(context, rawPath, shard);
  }
  await ensureShard(context, shard);
  const kept = await variantsFor(raw, given, { deferBrotli: given.deferBrotli === true });
  await Promise.all(
    COMPRESSED_VARIANTS.map((variant) => {
      const path = objectPath(context.dir, sha256, variant);
      const bytes = kept[variant];
      // A leftover of a variant this policy does not keep must not sit beside the new raw file.
      return bytes === undefined ? removeIfPresent(context, path, shard) : createVariant(context, path, bytes, shard);
    }),
  );
  return renameRaw(context, rawPath, raw, shard);
}

async function ensureShard(context: WriteContext, shard: string): Promise<void> {
  if (context.knownShards.has(shard)) return;
  // mkdir answers the path only when it created it: the top directory's entries changed.
  if ((await mkdir(join(context.dir, shard), { recursive: true })) !== undefined) context.durability.shardCreated(shard);
  context.knownShards.add(shard);
}

async function createVariant(context: WriteContext, path: string, bytes: Buffer, shard: string): Promise<void> {
  try {
    await writeFile(path, bytes, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    if (!hasErrno(err, 'EEXIST')) throw err;
    await unlink(path);
    await writeFile(path, bytes, { flag: 'wx', mode: 0o644 });
  }
  context.durability.fileWritten(path, shard);
}

async function removeIfPresent(context: WriteContext, path: string, shard: string): Promise<void> {
  try {
    await unlink(path);
    context.durability.shardChanged(shard);
  } catch (err) {
    if (!hasErrno(err, 'ENOENT')) throw err;
  }
}

/** A fresh name in the store's temp directory (cleared on open, owned by this process). */
export function tempPath(context: WriteContext): string {
  return join(context.tmpDir, randomBytes(12).toString('hex'));
}

/** Raw bytes appear whole: temp + rename. */
async function renameRaw(context: WriteContext, rawPath: string, raw: Buffer, shard: string): Promise<boolean> {
  const temp = tempPath(context);
  try {
    await writeFile(temp, raw, { flag: 'wx', mode: 0o644 });
    await rename(temp, rawPath);
  } catch (err) {
    await unlink(temp).catch((unlinkErr: unknown) => {
      if (!hasErrno(unlinkErr, 'ENOENT')) throw unlinkErr;
    });
    throw err;
  }
  context.durability.fileWritten(rawPath, shard);
  return true;
}

export async function readIfPresent(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if (hasErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

/** Raw equals `raw`, every present variant decodes to it, and a gzip variant the policy keeps is present (brotli may come later). */
async function isIntact(context: WriteContext, sha256: string, raw: Buffer, given: GivenVariants): Promise<boolean> {
  const stored = await readIfPresent(objectPath(context.dir, sha256));
  return stored !== undefined && stored.equals(raw) && (await variantsIntact(context, sha256, raw, given));
}

/**
 * True when the present object hashes to its name and is intact. For a caller
 * that reuses objects it holds no bytes for (the mirror, by presentAmong): the
 * raw file of a put that never reached its sync may be empty or garbage after a
 * power loss, and such an object must be fetched and put again.
 */
export async function verifyObject(context: WriteContext, sha256: string): Promise<boolean> {
  const stored = await readIfPresent(objectPath(context.dir, sha256));
  return stored !== undefined && sha256Hex(stored) === sha256 && (await variantsIntact(context, sha256, stored, {}));
}

async function variantsIntact(context: WriteContext, sha256: string, raw: Buffer, given: GivenVariants): Promise<boolean> {
  const [gzip, br] = await Promise.all([
    readIfPresent(objectPath(context.dir, sha256, 'gzip')),
    readIfPresent(objectPath(context.dir, sha256, 'br')),
  ]);
  if (gzip !== undefined && !decodesTo('gzip', gzip, raw)) return false;
  if (br !== undefined && !decodesTo('br', br, raw)) return false;
  // A missing brotli variant is normal (deferred: brotli-backfill.ts). A missing gzip variant is intact only if the
  // policy would not keep one (compressing says; rare, and cheap for small objects).
  if (gzip !== undefined) return true;
  const kept: KeptVariants = await variantsFor(raw, given, { deferBrotli: true });
  return kept.gzip === undefined;
}
