import { randomBytes } from 'node:crypto';
import * as fsCallback from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasErrno, sha256Hex } from '@metasync/shared';
import { decodesTo, variantsFor, type GivenVariants, type KeptVariants } from './compression.js';
import type { Durability } from './durability.js';
import type { BatchedFiles } from './batched-files.js';
import { readIfPresent, readStoredIdentity } from './identity.js';
import { objectPath, shardOf, type Variant } from './layout.js';

// The callback API skips a FileHandle per call: measurably cheaper on a 10k-file burst.
const unlink = promisify(fsCallback.unlink);

/**
 * The one write path. A new object is one file (layout.ts): its gzip variant,
 * or its raw bytes when it keeps none, written last, after a brotli variant
 * given with it. Its appearance makes the object present.
 *
 * Files are created in place (no temp + rename: a rename costs as much as the
 * file itself under a bulk write), so a put killed mid-write can leave a
 * short file that reads as a present object. That is safe because nothing
 * reuses a present object unchecked:
 *  - a put holds the bytes, and trusts a present object only when intact
 *    (decodes to those bytes, kept variants too), else removes it and writes
 *    it anew;
 *  - a caller reusing objects it holds no bytes for (the mirror after a
 *    restart, or after a failed apply) verifies them first (verifyObject);
 *  - a put whose write fails removes what it wrote before it reports.
 * Nothing serves an object before the sync and the commit that reference it.
 * A file left by a crashed put is unlinked and created anew, never truncated:
 * a reader that opened the old file keeps the bytes it opened.
 */
export interface WriteContext {
  dir: string;
  tmpDir: string;
  durability: Durability;
  /** Shard directories known to exist; shards are never removed. */
  knownShards: Set<string>;
  /** An intact object is being reused: it may be a killed process's leftover only in the page cache. */
  reused(sha256: string): void;
  /** New files are created through it (batched-files.ts: a bulk write's files in batches on a thread). */
  files: BatchedFiles;
}

type WriteGiven = GivenVariants & {
  knownAbsent?: boolean | undefined;
  knownClean?: boolean | undefined;
  deferBrotli?: boolean | undefined;
};

/**
 * Stores `raw` under `sha256` (already checked to be its hash); false when an intact copy was already present.
 * `knownClean` may be stale (a hint taken before another put of the same bytes): a file met on create is then
 * never replaced blindly, since a committed generation may be serving it; the put looks, as without the hint.
 */
export async function writeObject(context: WriteContext, sha256: string, raw: Buffer, given: WriteGiven): Promise<boolean> {
  if (given.knownClean !== true) return writeChecked(context, sha256, raw, given);
  try {
    return await writeChecked(context, sha256, raw, given);
  } catch (err) {
    if (!(err instanceof FileMet)) throw err;
    return writeChecked(context, sha256, raw, { ...given, knownClean: false });
  }
}

/** A create of a put with `knownClean` found the file there. */
class FileMet extends Error {}

async function writeChecked(context: WriteContext, sha256: string, raw: Buffer, given: WriteGiven): Promise<boolean> {
  const shard = shardOf(sha256);
  if (given.knownAbsent !== true && given.knownClean !== true) {
    const stored = await readStoredIdentity(context.dir, sha256, raw.length + 1);
    if (stored !== 'absent') {
      if (stored !== 'undecodable' && stored.raw.equals(raw) && (await variantsIntact(context, sha256, raw, given, stored.fromGzip))) {
        context.reused(sha256);
        return false;
      }
      // Damaged: the object stops existing before anything is written again.
      await removeIfPresent(context, objectPath(context.dir, sha256), shard);
      await removeIfPresent(context, objectPath(context.dir, sha256, 'gzip'), shard);
    }
  }
  await ensureShard(context, shard);
  const kept = await variantsFor(raw, given, { deferBrotli: given.deferBrotli === true });
  const brPath = objectPath(context.dir, sha256, 'br');
  // A leftover brotli file this put does not replace must not sit beside the new object.
  if (kept.br === undefined) {
    if (given.knownClean !== true) await removeIfPresent(context, brPath, shard);
  } else await createFile(context, brPath, kept.br, shard, given.knownClean === true);
  const base: Variant = kept.gzip === undefined ? 'identity' : 'gzip';
  // A put told the object is absent or damaged did not look: the other base file (a raw file an older version
  // wrote beside its gzip file, damaged by a power loss) must not outlive it, since reads and serving take it.
  if (given.knownAbsent === true && given.knownClean !== true) {
    await removeIfPresent(context, objectPath(context.dir, sha256, base === 'gzip' ? 'identity' : 'gzip'), shard);
  }
  await createFile(context, objectPath(context.dir, sha256, base), kept.gzip ?? raw, shard, given.knownClean === true);
  return true;
}

async function ensureShard(context: WriteContext, shard: string): Promise<void> {
  if (context.knownShards.has(shard)) return;
  // mkdir answers the path only when it created it: the top directory's entries changed.
  if ((await mkdir(join(context.dir, shard), { recursive: true })) !== undefined) context.durability.shardCreated(shard);
  context.knownShards.add(shard);
}

/**
 * Creates `path` with `bytes`; a leftover is unlinked first (unless `clean`: the put expected none, and
 * throws FileMet), and a failed write leaves no file behind.
 */
async function createFile(context: WriteContext, path: string, bytes: Buffer, shard: string, clean = false): Promise<void> {
  try {
    try {
      await context.files.create(path, bytes);
    } catch (err) {
      if (!hasErrno(err, 'EEXIST')) throw err;
      if (clean) throw new FileMet(path);
      await unlink(path);
      await context.files.create(path, bytes);
    }
  } catch (err) {
    if (err instanceof FileMet) throw err; // not ours: left as it is
    // A short file would read as a present object (or variant): it goes before the error is reported.
    await unlink(path).catch(() => undefined);
    throw err;
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

/**
 * True when the present object hashes to its name and is intact. For a caller
 * that reuses objects it holds no bytes for (the mirror, by presentAmong): the
 * file of a put that never reached its sync may be short or garbage after a
 * power loss or a kill, and such an object must be fetched and put again.
 */
export async function verifyObject(context: WriteContext, sha256: string): Promise<boolean> {
  const stored = await readStoredIdentity(context.dir, sha256);
  return (
    typeof stored !== 'string' &&
    sha256Hex(stored.raw) === sha256 &&
    (await variantsIntact(context, sha256, stored.raw, {}, stored.fromGzip))
  );
}

/**
 * Every present file decodes to `raw` (a raw file beside a gzip one, from an older version, included), and a
 * gzip variant the policy keeps is present (brotli may come later: brotli-backfill.ts). `rawFromGzip`: `raw`
 * was just decoded from the gzip file, so that file is present and intact without a second read (a mirror
 * verifying a million objects after a restart read and decoded each twice).
 */
async function variantsIntact(
  context: WriteContext,
  sha256: string,
  raw: Buffer,
  given: GivenVariants,
  rawFromGzip: boolean,
): Promise<boolean> {
  const [identity, gzip, br] = await Promise.all([
    readIfPresent(objectPath(context.dir, sha256)),
    rawFromGzip ? undefined : readIfPresent(objectPath(context.dir, sha256, 'gzip')),
    readIfPresent(objectPath(context.dir, sha256, 'br')),
  ]);
  if (identity !== undefined && !identity.equals(raw)) return false;
  if (gzip !== undefined && !decodesTo('gzip', gzip, raw)) return false;
  if (br !== undefined && !decodesTo('br', br, raw)) return false;
  // A missing gzip variant is intact only if the policy would not keep one (compressing says; rare, and cheap
  // for small objects).
  if (rawFromGzip || gzip !== undefined) return true;
  const kept: KeptVariants = await variantsFor(raw, given, { deferBrotli: true });
  return kept.gzip === undefined;
}
