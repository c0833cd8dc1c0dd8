import { HEADERS } from '@metasync/shared';
import { createRandom } from '../helpers/corpus.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { removeTempDirs, startMirror, startPrimary, type RunningMirror, type RunningPrimary } from '../helpers/mirror-cluster.js';
import { waitFor } from '../helpers/wait-for.js';
import { createClientLoad, type ClientMirror, type OutcomeKind } from './client-load.js';
import { keptFleet } from './kept-fleet.js';
import { startFaultSchedule, type FaultSchedule } from './fault-schedule.js';
import { readProcMemory } from '../helpers/proc-stats.js';
import { sampleProcesses, type ProcessSample } from './process-sampler.js';
import { createPublishLoad } from './publish-load.js';
import { startVisibilityTracker, type VisibilityTracker } from './visibility.js';

/**
 * The soak: a real primary and real mirrors (built bins), continuous publishing
 * through the publish API, Composer-like client load round-robin over the
 * mirrors, and fault proxies between some mirrors and the primary switching
 * modes. Timeline (every phase bounded):
 *
 *   setup: primary, seed corpus, proxies, mirrors, wait until they caught up
 *   |-- warm-up (faults cycling) --|settle clean, converge, SAMPLE start|-- main (faults cycling) --|settle clean, converge, SAMPLE end|
 *   stop load; final convergence: every mirror at the head with the primary's bytes; stop everything
 *
 * Samples are taken in the same state (links clean, mirrors caught up, load
 * running) so start and end compare like with like.
 */
export interface SoakOptions {
  /** Load time including warm-up. */
  durationMs: number;
  warmupMs: number;
  mirrors: number;
  /** How many mirrors (from the second on) reach the primary through a fault proxy. */
  faultedMirrors: number;
  workers: number;
  pauseMs: number;
  publishIntervalMs: number;
  faultPhaseMs: number;
  initialPackages: number;
  maxPackages: number;
  padBytes: number;
  /** Clean-link time before each sample. */
  settleMs: number;
  /** Mirrors' proxy fallback budget; also the grace after a fault during which a 404 is excused. */
  proxyTimeoutMs: number;
  /**
   * Mirrors' hot cache budget. Kept small so the cache is full by the end of
   * warm-up: a cache filling up to its budget is configured memory, not growth.
   */
  hotCacheBytes: number;
  seed: number;
  /** A work dir a publish-visible bench kept: the soak restarts its fleet (kept-fleet.ts), a million paths say. */
  keptFleetDir?: string | undefined;
  progress(line: string): void;
}

export const DEFAULT_SOAK_OPTIONS: SoakOptions = {
  durationMs: 600_000,
  warmupMs: 60_000,
  mirrors: 3,
  faultedMirrors: 2,
  workers: 8,
  pauseMs: 5,
  publishIntervalMs: 150,
  faultPhaseMs: 6_000,
  initialPackages: 150,
  maxPackages: 400,
  padBytes: 1_500,
  settleMs: 4_000,
  proxyTimeoutMs: 3_000,
  hotCacheBytes: 1_048_576,
  seed: 1,
  progress: () => undefined,
};

export interface SoakResult {
  options: Omit<SoakOptions, 'progress'>;
  elapsedMs: number;
  requests: number;
  outcomes: Record<OutcomeKind, number>;
  failureSamples: string[];
  publishes: number;
  publishFailures: string[];
  publishLatenciesMs: number[];
  /** Per publish, ms from the publish call returning until visible on every mirror. */
  visibleAllMs: number[];
  visiblePerMirrorMs: number[][];
  faultSwitches: Record<string, number>;
  processes: { start: Record<string, ProcessSample>; end: Record<string, ProcessSample> };
  /** RSS of each process (one reading) every 30 s of load, MiB: shows whether growth levels off. */
  rssSeriesMiB: Record<string, number[]>;
  convergence: { headSeq: number; mirrorSeqs: number[]; pathsChecked: number; mismatches: string[] };
}

async function headSeq(primaryUrl: string): Promise<number> {
  const response = await fetch(`${primaryUrl}/sync/v1/state`, { signal: AbortSignal.timeout(5_000) });
  return ((await response.json()) as { seq: number }).seq;
}

async function mirrorSeq(url: string): Promise<number> {
  const response = await fetch(`${url}/packages.json`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
  return Number(response.headers.get(HEADERS.seq) ?? -1);
}

async function waitConverged(primaryUrl: string, mirrors: readonly RunningMirror[], timeoutMs: number): Promise<void> {
  const target = await headSeq(primaryUrl);
  await waitFor(async () => (await Promise.all(mirrors.map((m) => mirrorSeq(m.url)))).every((seq) => seq >= target), {
    timeoutMs,
    intervalMs: 50,
    what: `every mirror at seq >= ${target}`,
  });
}

export async function runSoak(input: Partial<SoakOptions> = {}): Promise<SoakResult> {
  const options: SoakOptions = { ...DEFAULT_SOAK_OPTIONS, ...input };
  const random = createRandom(options.seed);
  const startedMs = Date.now();
  let primary: RunningPrimary | undefined;
  const proxies: FaultProxy[] = [];
  const mirrors: RunningMirror[] = [];
  let schedule: FaultSchedule | undefined;
  let tracker: VisibilityTracker | undefined;
  try {
    const kept = keptFleet(options.keptFleetDir, options.mirrors);
    primary = await startPrimary({ args: ['--heartbeat-ms', '1000'], ...kept?.primary });
    const primaryUrl = primary.url;
    const publishLoad = createPublishLoad({
      primaryUrl,
      initialPackages: options.initialPackages,
      maxPackages: options.maxPackages,
      intervalMs: options.publishIntervalMs,
      padBytes: options.padBytes,
      newEvery: 10,
      keepVersions: 12,
      random,
      onPublished: (seq, returnedAtMs) => tracker?.track(seq, returnedAtMs),
    });
    await publishLoad.seed(8);
    options.progress(`primary ${primaryUrl}: seeded ${publishLoad.packages.length} packages`);

    const clientMirrors: ClientMirror[] = [];
    for (let i = 0; i < options.mirrors; i++) {
      const faulted = i > 0 && i <= options.faultedMirrors;
      let upstream = primaryUrl;
      if (faulted) {
        const proxy = await startFaultProxy({ upstream: primaryUrl, random });
        proxies.push(proxy);
        upstream = proxy.url;
      }
      const mirror = await startMirror({
        primaryUrl: upstream,
        keyArg: primary.keyArg,
        args: [
          '--mirror-id',
          `soak-${i}`,
          '--proxy-timeout-ms',
          String(options.proxyTimeoutMs),
          '--gc-grace-ms',
          '30000',
          '--request-timeout-ms',
          '5000',
          '--hot-cache-bytes',
          String(options.hotCacheBytes),
        ],
        ...kept?.mirror(i),
      });
      mirrors.push(mirror);
      clientMirrors.push({ url: mirror.url, proxyIndex: faulted ? proxies.length - 1 : undefined });
    }
    await waitConverged(primaryUrl, mirrors, kept?.startMs ?? 60_000);
    options.progress(`mirrors ${mirrors.map((m) => m.url).join(' ')} caught up`);

    const pids: Record<string, number> = { primary: primary.child.pid! };
    const metricsUrls: Record<string, string> = { primary: `${primaryUrl}/metrics` };
    mirrors.forEach((mirror, i) => {
      const name = `mirror-${i}${clientMirrors[i]!.proxyIndex === undefined ? '' : ' (faulted link)'}`;
      pids[name] = mirror.child.pid!;
      metricsUrls[name] = `${mirror.url}/metrics`;
    });

    tracker = startVisibilityTracker({ mirrorUrls: mirrors.map((m) => m.url), pollMs: 5 });
    schedule = startFaultSchedule({ proxies, phaseMs: options.faultPhaseMs, graceMs: options.proxyTimeoutMs + 2_000 });
    const faults = schedule;
    const clients = createClientLoad({
      mirrors: clientMirrors,
      packages: publishLoad.packages,
      workers: options.workers,
      pauseMs: options.pauseMs,
      requestTimeoutMs: 10_000,
      linkFaultedDuring: (index, fromMs, toMs) => faults.linkFaultedDuring(index, fromMs, toMs),
      linkMode: (index) => proxies[index]?.mode().kind ?? 'unknown',
      random,
    });
    const loadStartedMs = Date.now();
    const running = Promise.all([clients.run(), publishLoad.run()]);
    const rssSeriesMiB: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((name) => [name, []]));
    const report = setInterval(() => {
      for (const [name, pid] of Object.entries(pids)) {
        readProcMemory(pid).then(
          (memory) => rssSeriesMiB[name]!.push(Math.round(memory.rssBytes / 104857.6) / 10),
          (err: unknown) => options.progress(`rss reading of ${name} failed: ${(err as Error).message}`),
        );
      }
      const counts = clients.counts();
      options.progress(
        `t+${Math.round((Date.now() - loadStartedMs) / 1000)}s requests ${clients.requests()} ok ${counts.ok} 304 ${counts['not-modified']} excused-404 ${counts['404-link-down']} failed ${clients.requests() - counts.ok - counts['not-modified'] - counts['404-link-down']} publishes ${publishLoad.stats().publishes} pending-visible ${tracker?.pending()}`,
      );
    }, 30_000);

    const measure = async (label: string): Promise<Record<string, ProcessSample>> => {
      faults.pauseClean();
      await new Promise((resolve) => setTimeout(resolve, options.settleMs));
      await waitConverged(primaryUrl, mirrors, 30_000);
      const sample = await sampleProcesses(pids, { count: 5, gapMs: 200, metricsUrls });
      options.progress(
        `${label} sample: ${Object.entries(sample)
          .map(([name, s]) => `${name} rss ${(s.rssBytes / 1048576).toFixed(1)} MiB fds ${s.fds} (sockets ${s.sockets})`)
          .join('; ')}`,
      );
      return sample;
    };

    let start: Record<string, ProcessSample>;
    let end: Record<string, ProcessSample>;
    try {
      await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
      start = await measure('start (after warm-up)');
      faults.resume();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, loadStartedMs + options.durationMs - Date.now())));
      end = await measure('end');
    } finally {
      clearInterval(report);
      clients.stop();
      publishLoad.stop();
      await running;
    }
    schedule.stop();
    await waitConverged(primaryUrl, mirrors, 30_000);
    await tracker.stop();
    const convergence = await checkConvergence(
      primaryUrl,
      mirrors,
      publishLoad.packages.flatMap((p) => [`p2/${p.name}.json`, ...(p.hasDev ? [`p2/${p.name}~dev.json`] : [])]),
    );

    const publishStats = publishLoad.stats();
    const { progress: _progress, ...reported } = options;
    return {
      options: reported,
      elapsedMs: Date.now() - startedMs,
      requests: clients.requests(),
      outcomes: clients.counts(),
      failureSamples: clients.samples(),
      publishes: publishStats.publishes,
      publishFailures: publishStats.failures,
      publishLatenciesMs: publishStats.latenciesMs,
      visibleAllMs: tracker.allMirrorsMs(),
      visiblePerMirrorMs: tracker.perMirrorMs(),
      faultSwitches: schedule.switches(),
      processes: { start, end },
      rssSeriesMiB,
      convergence,
    };
  } finally {
    schedule?.stop();
    await tracker?.stop();
    for (const mirror of mirrors) await mirror.stop();
    for (const proxy of proxies) await proxy.close();
    await primary?.stop();
    await removeTempDirs();
  }
}

/** Every mirror at the primary's head, answering every path with the primary's ETag. */
async function checkConvergence(
  primaryUrl: string,
  mirrors: readonly RunningMirror[],
  paths: readonly string[],
): Promise<SoakResult['convergence']> {
  const head = await headSeq(primaryUrl);
  const mirrorSeqs = await Promise.all(mirrors.map((m) => mirrorSeq(m.url)));
  const mismatches: string[] = [];
  for (const path of ['packages.json', ...paths]) {
    const expected = (await fetch(`${primaryUrl}/${path}`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) })).headers.get('etag');
    for (const mirror of mirrors) {
      const response = await fetch(`${mirror.url}/${path}`, { method: 'HEAD', signal: AbortSignal.timeout(5_000) });
      const etag = response.headers.get('etag');
      if (response.status !== 200 || etag !== expected || response.headers.get(HEADERS.proxied) !== null) {
        if (mismatches.length < 20)
          mismatches.push(
            `${mirror.url}/${path}: ${response.status} etag ${etag} proxied ${response.headers.get(HEADERS.proxied)}, primary etag ${expected}`,
          );
        else mismatches.push('...');
      }
    }
  }
  return { headSeq: head, mirrorSeqs, pathsChecked: paths.length + 1, mismatches: mismatches.slice(0, 21) };
}
