import { readProcMemory } from '../../test/helpers/proc-stats.js';
import type { Bench } from '../lib/bench.js';
import { figure } from '../lib/report.js';

const MB = 1e6;

/**
 * The mirror's resident memory with the large corpus applied, beyond the hot
 * cache it was configured with (`--hot-cache-bytes`). Taken --settle-seconds (20) after
 * bootstrap (once the mirror dropped bootstrap's temporary data; the moment of
 * reaching the head and the peak are reported too), after the serve bench
 * warmed the cache (when it ran first) and now; the target is judged on the
 * largest of those three. nginx's worker after the same load is a
 * reference, not a target. Decimal MB, as the target is written.
 */
export const mirrorRssBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const mirror = await ctx.large.mirror();
  const pid = mirror.daemon.child.pid;
  if (pid === undefined) throw new Error('mirror process has no pid');
  const now = await readProcMemory(pid);
  const afterServe = ctx.observations.mirrorMemoryAfterServe;
  const hotCacheBytes = ctx.options.hotCacheMib * 2 ** 20;
  const steadyBytes = Math.max(mirror.memoryAfterBootstrap.rssBytes, afterServe?.rssBytes ?? 0, now.rssBytes);
  const nginx = ctx.observations.nginxWorkerMemoryAfterServe;
  const show = (bytes: number): string => `${(bytes / MB).toFixed(0)} MB`;
  return {
    title: `mirror memory at ${tree.paths.length} paths`,
    params: { paths: tree.paths.length, hotCacheBytes },
    figures: [
      figure({
        metric: 'RSS beyond the hot-cache budget',
        unit: 'MB',
        metasync: (steadyBytes - hotCacheBytes) / MB,
        ...(nginx === undefined ? {} : { baseline: { name: 'nginx worker RSS, same files', value: nginx.rssBytes / MB } }),
        target: { text: '<= 200 MB', on: 'value', atMost: 200 },
      }),
      figure({
        metric: 'peak RSS (VmHWM, incl. bootstrap) beyond the hot-cache budget',
        unit: 'MB',
        metasync: (now.peakRssBytes - hotCacheBytes) / MB,
      }),
    ],
    notes: [
      `RSS on reaching the head ${show(mirror.memoryAtBootstrap.rssBytes)}, ${ctx.options.settleSeconds} s later ${show(mirror.memoryAfterBootstrap.rssBytes)}, after serve ${afterServe === undefined ? 'n/a (serve did not run first)' : show(afterServe.rssBytes)}, now ${show(now.rssBytes)}, peak ${show(now.peakRssBytes)}; hot-cache budget ${show(hotCacheBytes)} (${ctx.options.hotCacheMib} MiB)`,
    ],
  };
};
