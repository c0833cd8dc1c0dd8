import { copyFile, link, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { hasErrno } from '@metasync/shared';

const gzipAsync = promisify(gzip);

/**
 * The nginx baseline's document root: every path of the corpus (hard-linked,
 * or copied across file systems) plus a `.gz` sibling compressed once at
 * level 9, which is what `gzip_static on` serves to gzip clients.
 */
export async function buildStaticRoot(options: {
  sourceDir: string;
  paths: readonly string[];
  rootDir: string;
  concurrency?: number;
}): Promise<void> {
  const concurrency = options.concurrency ?? 32;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let index = next++; index < options.paths.length; index = next++) {
      const path = options.paths[index];
      if (path === undefined) continue;
      const from = join(options.sourceDir, path);
      const to = join(options.rootDir, path);
      await mkdir(dirname(to), { recursive: true });
      await linkOrCopy(from, to);
      await writeFile(`${to}.gz`, await gzipAsync(await readFile(from), { level: 9 }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if (!hasErrno(err, 'EXDEV')) throw err;
    await copyFile(from, to);
  }
}
