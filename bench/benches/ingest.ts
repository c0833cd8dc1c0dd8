import { readChildRssBytes, readProcMemory } from '../../test/helpers/proc-stats.js';
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
  const pid = primary.daemon.child.pid!;
  // As mirror-rss: V8 and the allocator give freed pages back seconds after the work that freed them.
  await new Promise((resolve) => setTimeout(resolve, ctx.options.settleSeconds * 1000));
  const settled = await readProcMemory(pid);
  const watcherRssBytes = await readChildRssBytes(pid, 'inotifywait');
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
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
      `primary RSS at the last commit ${mb(primary.memoryAtIngest.rssBytes)}, peak until then ${mb(primary.memoryAtIngest.peakRssBytes)}; ${ctx.options.settleSeconds} s later ${mb(settled.rssBytes)}, and its inotifywait child ${mb(watcherRssBytes)} (DESIGN: primary <= 500 MB at 1M paths)`,
      `CPU time of the primary process until then (user + system): ${(primary.ingestCpuMs / 1000).toFixed(1)} s (steadier than wall time on a loaded machine)`,
      `corpus: ${paths} paths (${packages} packages, their ~dev files and packages.json), ${(tree.bytes / 1e6).toFixed(1)} MB, written in ${(tree.writeMs / 1000).toFixed(1)} s; ingested into ${primary.head.seq} generation(s); no DESIGN target, rsync is a reference floor`,
    ],
  };
};
