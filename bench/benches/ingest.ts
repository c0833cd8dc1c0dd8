import type { Bench } from '../lib/bench.js';
import { figure } from '../lib/report.js';

/**
 * Issue 2: a primary started on a tree of `paths` files publishes them all.
 * Timed from spawning the primary to the commit time of the last ingest
 * generation; the baseline is `rsync -a` copying the same tree cold (both
 * read every file; the primary also hashes, compresses, stores and signs).
 */
export const ingestBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const copies = await ctx.large.rsyncCopies();
  const primary = await ctx.large.primary();
  const paths = tree.paths.length;
  const packages = tree.p2Paths.filter((path) => !path.endsWith('~dev.json')).length;
  return {
    title: `primary ingest of a ${paths}-path tree`,
    params: { paths, packages, corpusMb: Number((tree.bytes / 1e6).toFixed(1)), generations: primary.head.seq },
    figures: [
      figure({
        metric: 'ingest throughput (start on tree -> last commit)',
        unit: 'paths/s',
        metasync: paths / (primary.ingestMs / 1000),
        baseline: { name: 'rsync -a cold copy', value: paths / (copies.coldCopyMs / 1000) },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x rsync',
      }),
      figure({
        metric: 'ingest time',
        unit: 's',
        metasync: primary.ingestMs / 1000,
        baseline: { name: 'rsync -a cold copy', value: copies.coldCopyMs / 1000 },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x rsync time',
      }),
    ],
    notes: [
      `CPU time of the primary process until then (user + system): ${(primary.ingestCpuMs / 1000).toFixed(1)} s (steadier than wall time on a loaded machine)`,
      `corpus: ${paths} paths (${packages} packages, their ~dev files and packages.json), ${(tree.bytes / 1e6).toFixed(1)} MB, written in ${(tree.writeMs / 1000).toFixed(1)} s; ingested into ${primary.head.seq} generation(s); no DESIGN target, rsync is a reference floor`,
    ],
  };
};
