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
