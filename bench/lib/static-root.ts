import { copyFile, link, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { hasErrno, objectRelPath, sha256Hex } from '@metasync/shared';

const gzipAsync = promisify(gzip);

/**
 * The nginx baseline's document root: every path of the corpus plus a `.gz`
 * sibling, which is what `gzip_static on` serves to gzip clients.
 *
 * The `.gz` sibling is a hard link to the mirror's own gzip file of the same
 * bytes when `mirrorObjectsDir` is given and on the same file system: both
 * servers then send the very same bytes from the same inode (the store's
 * policy: level 9 up to 64 KiB, 6 above), and the root costs a link per
 * file, where compressing a million files at level 9 took 14 minutes. Files
 * the mirror keeps no gzip file for (tiny or incompressible) are compressed at
 * level 9 here. The path itself is hard-linked, or across file systems
 * symlinked (gzip clients never read it; `gzip_static` opens the sibling).
 */
export async function buildStaticRoot(options: {
  sourceDir: string;
  paths: readonly string[];
  rootDir: string;
  mirrorObjectsDir?: string;
  concurrency?: number;
}): Promise<{ linkedGzip: number; compressed: number }> {
  const concurrency = options.concurrency ?? 32;
  const counts = { linkedGzip: 0, compressed: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < options.paths.length; index = next++) {
      const path = options.paths[index];
      if (path === undefined) continue;
      const from = join(options.sourceDir, path);
      const to = join(options.rootDir, path);
      await mkdir(dirname(to), { recursive: true });
      await linkOrSymlink(from, to);
      const raw = await readFile(from);
      const stored =
        options.mirrorObjectsDir === undefined ? undefined : `${join(options.mirrorObjectsDir, objectRelPath(sha256Hex(raw)))}.gz`;
      if (stored !== undefined && (await linked(stored, `${to}.gz`))) {
        counts.linkedGzip++;
      } else {
        await writeFile(`${to}.gz`, await gzipAsync(raw, { level: 9 }));
        counts.compressed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return counts;
}

async function linkOrSymlink(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if (!hasErrno(err, 'EXDEV')) throw err;
    await symlink(from, to).catch(async (symlinkErr: unknown) => {
      if (!hasErrno(symlinkErr, 'EPERM')) throw symlinkErr;
      await copyFile(from, to);
    });
  }
}

/** True when `to` now names the same file as `from`; false when `from` is absent or elsewhere. */
async function linked(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (err) {
    if (hasErrno(err, 'ENOENT') || hasErrno(err, 'EXDEV')) return false;
    throw err;
  }
}
