/**
 * Figures from a publish-visible work dir kept by an earlier run (`pnpm bench -- --only publish-visible
 * --work-dir DIR ...`): at a million paths its set-up takes an hour and more, and these need none of it.
 *   - the primary restarted on its ingested data dir: spawn -> listening -> start-up reconcile, and its RSS
 *     (with its inotifywait child's) 20 s later;
 *   - with --publishes N: mirror 0 restarted on its data dir, caught up, the daemons idle (at most 5 min),
 *     then N publishes through the API one at a time, each timed from the call to the mirror's log line for
 *     its generation (as the apply-one bench's publish-API round), with the mirror's own apply time.
 *
 *   pnpm build && node --conditions=source --import tsx bench/kept-fleet.ts --work-dir DIR --source TREE --publishes 15
 *
 * TREE is the fleet's source tree (with --corpus-cache: CACHE/<paths>-<seed>/source). METASYNC_SOURCE_WATCHER
 * picks the primary's watcher. A report, not a test; everything binds 127.0.0.1 and is stopped at the end.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readChildRssBytes, readProcMemory } from '../test/helpers/proc-stats.js';
import { startMirror, startPrimary, waitForMirrorSeq, waitForStartupReconcile } from './lib/fleet.js';
import { createKeepAliveAgent } from './lib/http.js';
import { putPackage } from './lib/publish.js';
import { waitForQuietCpu } from './lib/quiet-cpu.js';
import { median, percentile } from './lib/stats.js';

/** As publish-visible.ts's fleet. */
const PUBLISH_TOKEN = 'bench-fleet-token';

const { values } = parseArgs({
  options: { 'work-dir': { type: 'string' }, source: { type: 'string' }, publishes: { type: 'string', default: '0' } },
});
const workDir = values['work-dir'];
const source = values.source;
if (workDir === undefined || source === undefined) throw new Error('usage: kept-fleet.ts --work-dir DIR --source TREE [--publishes N]');
const fleet = join(workDir, 'fleet');
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`;

const spawned = performance.now();
const primary = await startPrimary({
  sourceDir: source,
  dataDir: join(fleet, 'primary-data'),
  publishToken: PUBLISH_TOKEN,
  malloc: 'jemalloc',
  readyTimeoutMs: 600_000,
});
try {
  const pid = primary.child.pid!;
  console.log(`primary listening after ${((performance.now() - spawned) / 1000).toFixed(1)} s`);
  const reconcile = await waitForStartupReconcile(primary.url, 900_000);
  console.log(`reconciled after ${((performance.now() - spawned) / 1000).toFixed(1)} s (files read: ${reconcile.filesRead})`);
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  const memory = await readProcMemory(pid);
  console.log(
    `20 s later: RSS ${mb(memory.rssBytes)}, peak ${mb(memory.peakRssBytes)}, inotifywait ${mb(await readChildRssBytes(pid, 'inotifywait'))}`,
  );
  const publishes = Number(values.publishes);
  if (publishes > 0) await publishOneAtATime(pid, publishes);
} finally {
  await primary.stop();
}

async function publishOneAtATime(primaryPid: number, count: number): Promise<void> {
  const mirror = await startMirror({
    primaryUrl: primary.url,
    dataDir: join(fleet, 'mirror-0-data'),
    hotCacheMib: 64,
    publishToken: PUBLISH_TOKEN,
    mirrorId: 'bench-0',
    malloc: 'jemalloc',
    readyTimeoutMs: 600_000,
  });
  try {
    const agent = createKeepAliveAgent(2);
    const packageName = 'bench-kept/one';
    const publish = async (versions: string[]): Promise<number> =>
      (await putPackage({ primaryUrl: primary.url, token: PUBLISH_TOKEN, packageName, versions, agent })).seq;
    await waitForMirrorSeq({ mirrorUrl: mirror.url, seq: await publish(['1.0.0']), timeoutMs: 600_000, logs: mirror.logs });
    const quiet = await waitForQuietCpu([primaryPid, mirror.child.pid!], 300_000);
    console.log(`mirror caught up; daemons ${quiet.quiet ? 'idle' : 'still busy'} after ${(quiet.waitedMs / 1000).toFixed(0)} s`);
    const visibleMs: number[] = [];
    for (let i = 0; i < count; i++) {
      const started = performance.now();
      const seq = await publish(['1.0.0', `1.0.${i + 1}`]);
      const putMs = performance.now() - started;
      // The log lines are in memory: looked at every 2 ms, not the default 50 (which would be most of the figure).
      await waitForMirrorSeq({ mirrorUrl: mirror.url, seq, timeoutMs: 30_000, logs: mirror.logs, intervalMs: 2 });
      visibleMs.push(performance.now() - started);
      const applied = mirror.logs.find((line) => line.msg === 'generation applied' && line.seq === seq);
      console.log(
        `publish ${i}: call ${putMs.toFixed(1)} ms, visible ${visibleMs.at(-1)!.toFixed(1)} ms, mirror apply ${String(applied?.durationMs)} ms`,
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    console.log(
      `visible: median ${median(visibleMs).toFixed(1)} ms, p90 ${percentile(visibleMs, 90).toFixed(1)} ms; mirror RSS ${mb((await readProcMemory(mirror.child.pid!)).rssBytes)}`,
    );
  } finally {
    await mirror.stop();
  }
}
