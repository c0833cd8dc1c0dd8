import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runRsync } from '../../test/helpers/rsync.js';
import type { BenchContext } from '../lib/context.js';
import { touchJson } from './apply-one.js';

const RSYNC_ROUNDS = 5;

/** One file changed, then `rsync -a` to every mirror tree in turn: what a push-by-rsync fleet pays per change. */
export async function measureRsyncFanOut(
  ctx: BenchContext,
  sourceDir: string,
  p2Paths: readonly string[],
  root: string,
): Promise<number[]> {
  const origin = join(root, 'rsync-origin');
  await runRsync({ src: sourceDir, dst: origin });
  const trees = Array.from({ length: ctx.options.fleetRsyncTrees }, (_, index) => join(root, `rsync-mirror-${index}`));
  for (const tree of trees) await runRsync({ src: origin, dst: tree });
  // One rsync per mirror a round, cycling over the trees kept: an rsync to a tree already in step walks both trees all the same.
  const targets = Array.from({ length: ctx.options.mirrors }, (_, index) => trees[index % trees.length]!);
  const rounds: number[] = [];
  for (let round = 0; round < RSYNC_ROUNDS; round++) {
    const path = p2Paths[(round * 7919) % p2Paths.length];
    if (path === undefined) throw new Error('the fleet corpus has no p2 paths');
    const file = join(origin, path);
    await writeFile(`${file}.bench.tmp`, touchJson(await readFile(file, 'utf8'), `rsync-${round}`));
    await rename(`${file}.bench.tmp`, file);
    const startNs = process.hrtime.bigint();
    for (const target of targets) await runRsync({ src: origin, dst: target });
    rounds.push(Number(process.hrtime.bigint() - startNs) / 1e6);
  }
  return rounds;
}
