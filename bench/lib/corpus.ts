import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateCorpus, writeCorpusTree, type CorpusTree } from '../../test/helpers/corpus.js';

export type { CorpusTree } from '../../test/helpers/corpus.js';

/**
 * The corpus the benches share, as a Composer repository tree on disk, from
 * the generator the tests use (test/helpers/corpus.ts). Sized in paths, as
 * DESIGN.md's targets are: packages are taken in order until their p2 files
 * (plus ~dev files, plus packages.json) reach `paths`.
 */
export async function buildCorpusTree(options: { dir: string; paths: number; seed: number }): Promise<CorpusTree> {
  const corpus = generateCorpus({ packages: options.paths, seed: options.seed });
  let count = 1; // packages.json
  let take = 0;
  for (const pkg of corpus.packages) {
    if (count >= options.paths) break;
    count += pkg.dev > 0 ? 2 : 1;
    take++;
  }
  return await writeCorpusTree(options.dir, { seed: corpus.seed, packages: corpus.packages.slice(0, take) });
}

/** Written last into a cached corpus: its presence says the tree is whole (a run cut off mid-write leaves none). */
const COMPLETE_MARKER = 'corpus.json';

interface CachedCorpus {
  paths: number;
  seed: number;
  bytes: number;
}

/**
 * The corpus under `cacheDir/<paths>-<seed>/`, built there the first time and
 * reused afterwards (the generator is deterministic: same paths and seed, same
 * bytes). A directory without the marker is a cut-off build and is redone.
 * The benches only read the tree (the primary watches it; rsync copies it).
 */
export async function cachedCorpusTree(options: {
  cacheDir: string;
  paths: number;
  seed: number;
}): Promise<CorpusTree & { reused: boolean }> {
  const root = join(options.cacheDir, `${options.paths}-${options.seed}`);
  const dir = join(root, 'source');
  const marker = join(root, COMPLETE_MARKER);
  const listFile = join(root, 'paths.txt');
  try {
    const cached = JSON.parse(await readFile(marker, 'utf8')) as CachedCorpus;
    if (cached.paths === options.paths && cached.seed === options.seed) {
      const paths = (await readFile(listFile, 'utf8')).split('\n').filter((line) => line !== '');
      return { dir, paths, p2Paths: paths.filter((path) => path.startsWith('p2/')), bytes: cached.bytes, reused: true };
    }
  } catch {
    // No whole cached tree yet: build it below.
  }
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  const tree = await buildCorpusTree({ dir, paths: options.paths, seed: options.seed });
  await writeFile(listFile, `${tree.paths.join('\n')}\n`);
  const record: CachedCorpus = { paths: options.paths, seed: options.seed, bytes: tree.bytes };
  await writeFile(marker, JSON.stringify(record));
  return { ...tree, reused: false };
}
