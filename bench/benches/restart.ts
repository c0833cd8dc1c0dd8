import type { Bench } from '../lib/bench.js';
import { figure } from '../lib/report.js';
import { runRsync } from '../../test/helpers/rsync.js';

/**
 * DESIGN: "restart on an ingested tree in seconds". The ingested primary is
 * stopped (SIGTERM) and started again on its data dir (a new port); timed from the
 * spawn to listening (the journal replayed: it serves its last generation) and
 * to its start-up reconcile of the unchanged tree being committed (a stat of
 * every file against the stat cache; no file read). The baseline is what rsync
 * does for an unchanged tree: `rsync -a a/ b/` between two equal copies, which
 * stats every file too. Later benches use the restarted primary.
 */
export const restartBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const copies = await ctx.large.rsyncCopies();
  await ctx.large.primary();
  const rsync = await runRsync({ src: copies.dirA, dst: copies.dirB });
  const restarted = await ctx.large.restartPrimary();
  const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;
  return {
    title: `primary restart on its ingested ${tree.paths.length}-path tree`,
    params: { paths: tree.paths.length, filesRead: restarted.filesRead },
    figures: [
      figure({
        metric: 'restart: spawn -> listening',
        unit: 's',
        metasync: restarted.listeningMs / 1000,
        target: { text: 'in seconds (read: <= 10 s)', on: 'value', atMost: 10 },
      }),
      figure({
        metric: 'restart: spawn -> unchanged tree reconciled',
        unit: 's',
        metasync: restarted.reconciledMs / 1000,
        baseline: { name: 'rsync -a of two equal trees', value: rsync.durationMs / 1000 },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x rsync time',
      }),
    ],
    notes: [
      `CPU time of the restarted primary until reconciled (user + system): ${(restarted.cpuMs / 1000).toFixed(1)} s; files read: ${restarted.filesRead} of ${tree.paths.length}`,
      `RSS then ${mb(restarted.memory.rssBytes)}, peak ${mb(restarted.memory.peakRssBytes)}, and its inotifywait child ${mb(restarted.watcherRssBytes)} (DESIGN: primary <= 500 MB at 1M paths)`,
    ],
  };
};
