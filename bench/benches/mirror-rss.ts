import { readProcMemory } from '../../test/helpers/proc-stats.js';
import { mb, type Bench } from '../lib/bench.js';
import { figure } from '../lib/report.js';

/**
 * The mirror's resident memory with the large corpus applied, beyond the hot
 * cache it was configured with (`--hot-cache-mb`). Taken after bootstrap and,
 * when the serve bench ran first, after wrk warmed the cache; the target is
 * judged on the larger of the two. nginx's worker after the same load is a
 * reference, not a target.
 */
export const mirrorRssBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const mirror = await ctx.large.mirror();
  const pid = mirror.daemon.child.pid;
  if (pid === undefined) throw new Error('mirror process has no pid');
  const now = await readProcMemory(pid);
  const afterServe = ctx.observations.mirrorMemoryAfterServe;
  const hotCacheMb = ctx.options.hotCacheMb;
  const steadyBytes = Math.max(mirror.memoryAfterBootstrap.rssBytes, afterServe?.rssBytes ?? 0, now.rssBytes);
  const nginx = ctx.observations.nginxWorkerMemoryAfterServe;
  const notes = [
    `RSS after bootstrap ${mb(mirror.memoryAfterBootstrap.rssBytes).toFixed(0)} MiB, after serve ${afterServe === undefined ? 'n/a (serve did not run)' : `${mb(afterServe.rssBytes).toFixed(0)} MiB`}, now ${mb(now.rssBytes).toFixed(0)} MiB, peak (VmHWM) ${mb(now.peakRssBytes).toFixed(0)} MiB; hot cache budget ${hotCacheMb} MiB`,
  ];
  return {
    title: `mirror memory at ${tree.paths.length} paths`,
    params: { paths: tree.paths.length, hotCacheMb },
    figures: [
      figure({
        metric: 'RSS beyond the hot-cache budget',
        unit: 'MiB',
        metasync: mb(steadyBytes) - hotCacheMb,
        ...(nginx === undefined ? {} : { baseline: { name: 'nginx worker RSS, same files', value: mb(nginx.rssBytes) } }),
        target: { text: '<= 200 MB', on: 'value', atMost: 200 },
      }),
      figure({
        metric: 'peak RSS (VmHWM) beyond the hot-cache budget',
        unit: 'MiB',
        metasync: mb(now.peakRssBytes) - hotCacheMb,
      }),
    ],
    notes,
  };
};
