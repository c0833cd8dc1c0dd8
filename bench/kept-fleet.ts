/**
 * Figures from a publish-visible work dir kept by an earlier run (`pnpm bench -- --only publish-visible
 * --work-dir DIR ...`): at a million paths its set-up takes an hour and more, and these need none of it.
 *   - the primary restarted on its ingested data dir: spawn -> listening -> start-up reconcile, and its RSS
 *     (with its inotifywait child's) 20 s later;
 *   - with --publishes N: mirror 0 restarted on its data dir, caught up, the daemons idle (at most 5 min),
 *     then N publishes through the API one at a time, each timed from the call to the mirror's log line for
 *     its generation (as the apply-one bench's publish-API round), with the mirror's own apply time;
 *   - with --serve-seconds S --paths FILE: then wrk on mirror 0 for S s (64 connections, gzip, a random path
 *     of FILE each request), and the mirror's RSS beyond its 64 MiB hot cache 20 s later (as mirror-rss).
 *
 *   pnpm build && node --conditions=source --import tsx bench/kept-fleet.ts --work-dir DIR --source TREE \
 *     --publishes 15 --serve-seconds 60 --paths PATHS
 *
 * TREE and PATHS are the fleet's corpus (with --corpus-cache: CACHE/<paths>-<seed>/source and paths.txt). METASYNC_SOURCE_WATCHER
 * picks the primary's watcher. A report, not a test; everything binds 127.0.0.1 and is stopped at the end.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Daemon } from '../test/helpers/daemon.js';
import { readChildRssBytes, readProcMemory } from '../test/helpers/proc-stats.js';
import { runWrk } from '../test/helpers/wrk.js';
import { startMirror, startPrimary, waitForMirrorSeq, waitForStartupReconcile } from './lib/fleet.js';
import { createKeepAliveAgent, httpRequest, readPrometheusValue } from './lib/http.js';
import { putPackage } from './lib/publish.js';
import { waitForQuietCpu } from './lib/quiet-cpu.js';
import { GZIP } from './lib/serve-rounds.js';
import { median, percentile } from './lib/stats.js';

/** As publish-visible.ts's fleet. */
const PUBLISH_TOKEN = 'bench-fleet-token';
/** The mirror's default hot cache, as the benches run it. */
const HOT_CACHE_MIB = 64;

const { values } = parseArgs({
  options: {
    'work-dir': { type: 'string' },
    source: { type: 'string' },
    publishes: { type: 'string', default: '0' },
    'serve-seconds': { type: 'string', default: '0' },
    paths: { type: 'string' },
  },
});
const workDir = values['work-dir'];
const source = values.source;
if (workDir === undefined || source === undefined) {
  throw new Error('usage: kept-fleet.ts --work-dir DIR --source TREE [--publishes N] [--serve-seconds S --paths FILE]');
}
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
  const serveSeconds = Number(values['serve-seconds']);
  if (publishes > 0 || serveSeconds > 0) await withMirror(pid, publishes, serveSeconds);
} finally {
  await primary.stop();
}

async function withMirror(primaryPid: number, publishes: number, serveSeconds: number): Promise<void> {
  const mirror = await startMirror({
    primaryUrl: primary.url,
    dataDir: join(fleet, 'mirror-0-data'),
    hotCacheMib: HOT_CACHE_MIB,
    publishToken: PUBLISH_TOKEN,
    mirrorId: 'bench-0',
    malloc: 'jemalloc',
    readyTimeoutMs: 600_000,
  });
  try {
    await publishOneAtATime(mirror, primaryPid, publishes);
    if (serveSeconds > 0) await serveThenSettle(mirror, serveSeconds);
  } finally {
    await mirror.stop();
  }
}

async function publishOneAtATime(mirror: Daemon, primaryPid: number, count: number): Promise<void> {
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
  if (count > 0) console.log(`visible: median ${median(visibleMs).toFixed(1)} ms, p90 ${percentile(visibleMs, 90).toFixed(1)} ms`);
  console.log(`mirror RSS ${mb((await readProcMemory(mirror.child.pid!)).rssBytes)}`);
}

async function serveThenSettle(mirror: Daemon, seconds: number): Promise<void> {
  if (values.paths === undefined) throw new Error('--serve-seconds needs --paths FILE');
  const lines = (await readFile(values.paths, 'utf8')).split('\n');
  const paths = lines.filter((line) => line !== '').map((line) => `/${line}`);
  const served = await runWrk({ url: mirror.url, paths, connections: 64, durationSec: seconds, headers: GZIP, seed: 1 });
  const errors = served.statusErrors + served.socketErrors;
  console.log(`served ${served.requestsPerSec.toFixed(0)} req/s, p99 ${served.latencyP99Ms.toFixed(1)} ms, ${errors} errors`);
  const asStopped = await readProcMemory(mirror.child.pid!);
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  const settled = await readProcMemory(mirror.child.pid!);
  const beyond = mb(settled.rssBytes - HOT_CACHE_MIB * 2 ** 20);
  console.log(`mirror RSS as wrk stopped ${mb(asStopped.rssBytes)}, 20 s later ${mb(settled.rssBytes)}: ${beyond} beyond the hot cache`);
  console.log(`  of which ${await memoryBreakdown(mirror)}`);
}

/** Where the mirror's RSS is: anonymous vs file-backed pages (the node binary), and V8's heap vs external memory. */
async function memoryBreakdown(mirror: Daemon): Promise<string> {
  const memory = await readProcMemory(mirror.child.pid!);
  const text = (await httpRequest(`${mirror.url}/metrics`)).body.toString('utf8');
  const gauge = (name: string): number => readPrometheusValue(text, name) ?? Number.NaN;
  return [
    `anonymous ${mb(memory.rssAnonBytes)}, file-backed ${mb(memory.rssFileBytes)}, shmem ${mb(memory.rssShmemBytes)};`,
    `heap used ${mb(gauge('nodejs_heap_size_used_bytes'))} of ${mb(gauge('nodejs_heap_size_total_bytes'))}`,
    `(young generation ${mb(gauge('nodejs_heap_space_size_total_bytes{space="new"}'))}),`,
    `external ${mb(gauge('nodejs_external_memory_bytes'))}`,
  ].join(' ');
}
