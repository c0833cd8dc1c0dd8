import { readFile } from 'node:fs/promises';
import { allocatorOfMaps } from '@metasync/shared/daemon';
import { readProcMemory } from '../../test/helpers/proc-stats.js';
import type { Bench } from '../lib/bench.js';
import { figure } from '../lib/report.js';

const MB = 1e6;

/**
 * The mirror's resident memory with the large corpus applied, beyond the hot
 * cache it was configured with (`--hot-cache-bytes`), steady: --settle-seconds
 * (20) after bootstrap (once the mirror dropped bootstrap's temporary data) and
 * as long after the serve bench warmed the cache (when it ran first); the
 * target is judged on the larger. The moment of reaching the head, the moment
 * wrk stopped and the peak are in the notes. nginx's worker after the same load is a
 * reference, not a target. Decimal MB, as the target is written.
 */
export const mirrorRssBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const mirror = await ctx.large.mirror();
  const pid = mirror.daemon.child.pid;
  if (pid === undefined) throw new Error('mirror process has no pid');
  const afterServe = ctx.observations.mirrorMemoryAfterServe;
  // Steady, as after bootstrap: V8 shrinks its heap some seconds after a burst of requests ends.
  await new Promise((resolve) => setTimeout(resolve, ctx.options.settleSeconds * 1000));
  const now = await readProcMemory(pid);
  const hotCacheBytes = ctx.options.hotCacheMib * 2 ** 20;
  const steadyBytes = Math.max(mirror.memoryAfterBootstrap.rssBytes, now.rssBytes);
  const nginx = ctx.observations.nginxWorkerMemoryAfterServe;
  // What the process really runs on (a preload that failed is only a line on stderr).
  const allocator = allocatorOfMaps(await readFile(`/proc/${pid}/maps`, 'utf8'));
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
      `RSS on reaching the head ${show(mirror.memoryAtBootstrap.rssBytes)}, ${ctx.options.settleSeconds} s later ${show(mirror.memoryAfterBootstrap.rssBytes)}, as wrk stopped ${afterServe === undefined ? 'n/a (serve did not run first)' : show(afterServe.rssBytes)}, ${ctx.options.settleSeconds} s after serve ${show(now.rssBytes)}, peak ${show(now.peakRssBytes)}; hot-cache budget ${show(hotCacheBytes)} (${ctx.options.hotCacheMib} MiB); malloc: ${allocator} (asked for ${ctx.options.malloc})`,
    ],
  };
};
