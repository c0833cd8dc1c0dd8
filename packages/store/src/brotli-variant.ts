import * as fsCallback from 'node:fs';
import { promisify } from 'node:util';
import { hasErrno, sha256Hex } from '@metasync/shared';
import { brotliFor } from './compression.js';
import { syncFiles } from './durability.js';
import { objectPath, shardOf } from './layout.js';
import { sizeOf } from './presence.js';
import { readIdentity } from './identity.js';
import { tempPath, type WriteContext } from './write-path.js';

const writeFile = promisify(fsCallback.writeFile);
const rename = promisify(fsCallback.rename);
const unlink = promisify(fsCallback.unlink);

/**
 * Adds the brotli variant to present objects that lack it (puts with
 * `deferBrotli` leave it out; brotli-backfill.ts calls this after the commit).
 * The object may be read by clients already, so the variant must appear
 * whole and stay whole across a power loss:
 *
 *   raw bytes read back (gzip file decoded), hashed against its name -> brotli -> temp file
 *   -> every temp of the call made durable (fsyncs, or one syncfs)
 *   -> renamed into place (only then does serving see it)
 *
 * Compressed only from bytes that hash to the object's name, so the variant
 * decodes to the verified object. An object that does not decode or hash to
 * its name is left alone (its owner's next verify or put replaces it). Objects `skip`
 * names (a put or removal in flight) are passed over. Returns the variants made.
 */
export async function addBrotliVariants(
  context: WriteContext,
  sha256s: readonly string[],
  skip: (sha256: string) => boolean,
): Promise<number> {
  const staged: { sha256: string; temp: string; path: string; shard: string }[] = [];
  const renamedTemps = new Set<string>();
  try {
    // A few objects at once: each is a stat, a read and a write through the threadpool around the
    // compression, so one at a time left the CPU idle on every round trip.
    let next = 0;
    let failed = false;
    const stageNext = async (): Promise<void> => {
      while (!failed && next < sha256s.length) {
        try {
          const staging = await stageOne(context, sha256s[next++] as string, skip);
          if (staging !== undefined) staged.push(staging);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    // Every stage settles before a failure is reported, so the cleanup below sees each temp written.
    const stages = await Promise.allSettled(Array.from({ length: Math.min(STAGE_CONCURRENCY, sha256s.length) }, stageNext));
    const failure = stages.find((stage): stage is PromiseRejectedResult => stage.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    await syncFiles(
      context.dir,
      staged.map((item) => item.temp),
    );
    for (const item of staged) {
      // A put or removal that started since this object was staged owns it now: its temp goes (below).
      if (skip(item.sha256)) continue;
      await rename(item.temp, item.path);
      renamedTemps.add(item.temp);
      // The new name is not made durable here: lost in a power loss, the variant is simply absent again.
      context.durability.shardChanged(item.shard);
    }
    return renamedTemps.size;
  } finally {
    // Temps not renamed (a failed call, or an object a put or removal took over) go.
    for (const item of staged.filter((staging) => !renamedTemps.has(staging.temp))) {
      await unlink(item.temp).catch((err: unknown) => {
        if (!hasErrno(err, 'ENOENT')) throw err;
      });
    }
  }
}

/** Objects read, compressed and written to temp files at once. */
const STAGE_CONCURRENCY = 4;

/** The brotli variant of one object in a temp file; undefined when it needs none or must be left alone. */
async function stageOne(
  context: WriteContext,
  sha256: string,
  skip: (sha256: string) => boolean,
): Promise<{ sha256: string; temp: string; path: string; shard: string } | undefined> {
  if (skip(sha256)) return undefined;
  const path = objectPath(context.dir, sha256, 'br');
  if ((await sizeOf(path)) !== undefined) return undefined;
  const raw = await readIdentity(context.dir, sha256);
  if (typeof raw === 'string' || sha256Hex(raw) !== sha256) return undefined;
  const br = brotliFor(raw);
  if (br === undefined) return undefined;
  const temp = tempPath(context);
  try {
    await writeFile(temp, br, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  return { sha256, temp, path, shard: shardOf(sha256) };
}
