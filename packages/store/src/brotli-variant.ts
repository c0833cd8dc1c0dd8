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
  const staged: { temp: string; path: string; shard: string }[] = [];
  let renamed = 0;
  try {
    for (const sha256 of sha256s) {
      if (skip(sha256)) continue;
      const path = objectPath(context.dir, sha256, 'br');
      if ((await sizeOf(path)) !== undefined) continue;
      const raw = await readIdentity(context.dir, sha256);
      if (typeof raw === 'string' || sha256Hex(raw) !== sha256) continue;
      const br = brotliFor(raw);
      if (br === undefined) continue;
      const temp = tempPath(context);
      await writeFile(temp, br, { flag: 'wx', mode: 0o644 });
      staged.push({ temp, path, shard: shardOf(sha256) });
    }
    await syncFiles(
      context.dir,
      staged.map((item) => item.temp),
    );
    for (const item of staged) {
      await rename(item.temp, item.path);
      renamed++;
      // The new name is not made durable here: lost in a power loss, the variant is simply absent again.
      context.durability.shardChanged(item.shard);
    }
    return renamed;
  } finally {
    for (const item of staged.slice(renamed)) {
      await unlink(item.temp).catch((err: unknown) => {
        if (!hasErrno(err, 'ENOENT')) throw err;
      });
    }
  }
}
