import { join } from 'node:path';
import { startNginx } from '../../test/helpers/nginx.js';
import { readProcCpuMs, readProcMemory } from '../../test/helpers/proc-stats.js';
import { runWrk, type WrkResult } from '../../test/helpers/wrk.js';
import type { Bench } from '../lib/bench.js';
import type { BenchContext } from '../lib/context.js';
import { pinProcess } from '../lib/cpu.js';
import { gcPausesBetween, readGcPauses, type GcPauses } from '../lib/gc.js';
import { createKeepAliveAgent, httpRequest } from '../lib/http.js';
import { figure } from '../lib/report.js';
import { buildStaticRoot } from '../lib/static-root.js';
import { elapsedMs, nowNs } from '../lib/stats.js';

const GZIP = { 'Accept-Encoding': 'gzip' } as const;

/**
 * Random p2 files with `Accept-Encoding: gzip` over 64 keep-alive connections:
 * the mirror against nginx (1 worker, `gzip_static on`) serving the same files
 * with precompressed siblings, same wrk settings, same path sequence (seeded).
 * With two or more cores each server gets core 0 and wrk the others.
 */
export const serveBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const primary = await ctx.large.primary();
  const mirror = await ctx.large.mirror();
  const root = join(ctx.workDir, 'nginx-root');
  ctx.log(`writing the nginx root (${tree.p2Paths.length} files + .gz siblings)`);
  const rootStartNs = nowNs();
  await buildStaticRoot({ sourceDir: tree.dir, paths: tree.p2Paths, rootDir: root });
  const rootMs = elapsedMs(rootStartNs);
  const nginx = await startNginx({ root, prefix: join(ctx.workDir, 'nginx-prefix') });
  const paths = tree.p2Paths.map((path) => `/${path}`);
  const notes: string[] = [
    `nginx root written in ${(rootMs / 1000).toFixed(1)} s (gzip -9 siblings); wrk picks among ${paths.length} p2 paths, seeded identically for both servers`,
  ];
  try {
    const nginxWorkers = await nginx.workerPids();
    const mirrorPid = mirror.daemon.child.pid;
    const primaryPid = primary.daemon.child.pid;
    if (mirrorPid === undefined || primaryPid === undefined) throw new Error('daemon without a pid');
    for (const [name, url] of [
      ['nginx', nginx.url],
      ['mirror', mirror.url],
    ] as const)
      notes.push(await checkGzip(name, url, paths[0] ?? '/packages.json'));
    if (ctx.cpu.pin) {
      for (const pid of [...nginxWorkers, mirrorPid]) await pinProcess(pid, ctx.cpu.serverCpus);
      await pinProcess(primaryPid, ctx.cpu.loadCpus);
      notes.push(
        `pinned: servers (nginx worker, mirror) on cpu ${ctx.cpu.serverCpus}, wrk and the idle primary on cpu ${ctx.cpu.loadCpus}`,
      );
    } else {
      notes.push('not pinned: servers and wrk share all cores');
    }
    // Alternate the servers round by round so a burst of outside load hits both alike.
    const nginxRounds: WrkResult[] = [];
    const mirrorRounds: WrkResult[] = [];
    const gcBefore = await mirrorGcPauses(mirror.url);
    // CPU time per request survives a busy machine better than req/s: it is noted per round.
    const cpuUsPerRequest = { nginx: [] as number[], mirror: [] as number[] };
    const measureCpu = async (pid: number | undefined, url: string, into: number[]): Promise<WrkResult> => {
      const before = pid === undefined ? 0 : await readProcCpuMs(pid);
      const result = await measure(ctx, url, paths);
      if (pid !== undefined) into.push((((await readProcCpuMs(pid)) - before) * 1000) / Math.max(1, result.requests));
      return result;
    };
    for (let round = 0; round < ctx.options.serveRounds; round++) {
      const nginxRound = await measureCpu(nginxWorkers[0], nginx.url, cpuUsPerRequest.nginx);
      if (nginxRound.statusErrors + nginxRound.socketErrors > 0) {
        throw new Error(
          `the nginx baseline failed ${nginxRound.statusErrors} responses with status >= 400 and ${nginxRound.socketErrors} socket errors (see ${join(ctx.workDir, 'nginx-prefix', 'error.log')}): the comparison would be void`,
        );
      }
      nginxRounds.push(nginxRound);
      mirrorRounds.push(await measureCpu(mirrorPid, mirror.url, cpuUsPerRequest.mirror));
    }
    notes.push(
      `CPU per request (user + system, /proc, by round): nginx worker ${cpuUsPerRequest.nginx.map((us) => us.toFixed(1)).join(', ')} µs; mirror ${cpuUsPerRequest.mirror.map((us) => us.toFixed(1)).join(', ')} µs`,
    );
    const gc = gcPausesBetween(gcBefore, await mirrorGcPauses(mirror.url));
    const mirrorWrkMs = mirrorRounds.reduce((total, round) => total + round.durationSec * 1000, 0);
    notes.push(
      `mirror GC during the serve rounds (nodejs_gc_duration_seconds): ${gc.count} pauses, ${gc.totalMs.toFixed(0)} ms in all ` +
        `(${((100 * gc.totalMs) / Math.max(1, mirrorWrkMs)).toFixed(1)}% of its ${(mirrorWrkMs / 1000).toFixed(0)} s under wrk), ` +
        `${gc.over10ms} over 10 ms, ${gc.over100ms} over 100 ms`,
    );
    const nginxWorker = nginxWorkers[0];
    if (nginxWorker !== undefined) ctx.observations.nginxWorkerMemoryAfterServe = await readProcMemory(nginxWorker);
    ctx.observations.mirrorMemoryAfterServe = await readProcMemory(mirrorPid);
    const nginxResult = best(nginxRounds);
    const mirrorResult = best(mirrorRounds);
    const mirrorErrors = mirrorRounds.reduce((total, result) => total + result.statusErrors + result.socketErrors, 0);
    if (ctx.options.serveRounds > 1) {
      notes.push(
        `best of ${ctx.options.serveRounds} alternating rounds per server (req/s by round: nginx ${nginxRounds.map((r) => r.requestsPerSec.toFixed(0)).join(', ')}; mirror ${mirrorRounds.map((r) => r.requestsPerSec.toFixed(0)).join(', ')})`,
      );
    }
    if (ctx.cpu.pin) for (const pid of [mirrorPid, primaryPid]) await pinProcess(pid, ctx.cpu.allCpus);
    for (const [name, result] of [
      ['nginx', nginxResult],
      ['mirror', mirrorResult],
    ] as const) {
      notes.push(
        `${name}: ${result.requests} requests in ${result.durationSec.toFixed(1)} s, p50 ${result.latencyP50Ms.toFixed(2)} ms, p90 ${result.latencyP90Ms.toFixed(2)} ms, max ${result.latencyMaxMs.toFixed(1)} ms, ${(result.bytesPerSec / 2 ** 20).toFixed(1)} MiB/s, ${result.statusErrors} status >= 400, ${result.socketErrors} socket errors`,
      );
    }
    return {
      title: `serve random p2 files, gzip, ${ctx.options.connections} connections`,
      params: {
        files: paths.length,
        connections: ctx.options.connections,
        wrkSeconds: ctx.options.wrkSeconds,
        wrkThreads: ctx.options.wrkThreads,
        pinned: ctx.cpu.pin,
      },
      figures: [
        figure({
          metric: 'throughput',
          unit: 'req/s',
          metasync: mirrorResult.requestsPerSec,
          baseline: { name: 'nginx 1 worker gzip_static', value: nginxResult.requestsPerSec },
          ratioOf: 'metasync/baseline',
          ratioLabel: 'x nginx',
          target: { text: '>= 0.8x nginx (one core each)', on: 'ratio', atLeast: 0.8 },
        }),
        figure({
          metric: 'latency p99',
          unit: 'ms',
          metasync: mirrorResult.latencyP99Ms,
          baseline: { name: 'nginx 1 worker gzip_static', value: nginxResult.latencyP99Ms },
          ratioOf: 'metasync/baseline',
          ratioLabel: 'x nginx',
          target: { text: '<= 1.5x nginx', on: 'ratio', atMost: 1.5 },
        }),
        figure({
          metric: 'failed responses, all rounds (status >= 400 or socket errors)',
          unit: 'req',
          metasync: mirrorErrors,
          baseline: { name: 'nginx', value: 0 },
          target: { text: '0', on: 'value', atMost: 0 },
        }),
      ],
      notes,
    };
  } finally {
    await nginx.stop();
  }
};

async function mirrorGcPauses(url: string): Promise<GcPauses> {
  const response = await httpRequest(`${url}/metrics`);
  if (response.status !== 200) throw new Error(`GET ${url}/metrics: expected 200, got ${response.status}`);
  return readGcPauses(response.body.toString('utf8'));
}

/** The round with the most requests per second: the least disturbed by the rest of the machine. */
function best(rounds: readonly WrkResult[]): WrkResult {
  const [first, ...rest] = rounds;
  if (first === undefined) throw new Error('no wrk rounds were run');
  return rest.reduce((winner, round) => (round.requestsPerSec > winner.requestsPerSec ? round : winner), first);
}

async function measure(ctx: BenchContext, url: string, paths: string[]): Promise<WrkResult> {
  const common = {
    url,
    paths,
    connections: ctx.options.connections,
    threads: ctx.options.wrkThreads,
    headers: GZIP,
    seed: ctx.options.seed,
    ...(ctx.cpu.pin ? { cpuList: ctx.cpu.loadCpus } : {}),
  };
  if (ctx.options.wrkWarmupSeconds > 0) await runWrk({ ...common, durationSec: ctx.options.wrkWarmupSeconds, seed: ctx.options.seed + 1 });
  ctx.log(`wrk ${ctx.options.wrkSeconds} s against ${url}`);
  return await runWrk({ ...common, durationSec: ctx.options.wrkSeconds });
}

/** Both servers must really answer this path with gzip, or the comparison is not like for like. */
async function checkGzip(name: string, baseUrl: string, path: string): Promise<string> {
  const agent = createKeepAliveAgent(1);
  try {
    const response = await httpRequest(`${baseUrl}${path}`, { headers: GZIP, agent });
    if (response.status !== 200) throw new Error(`${name} ${baseUrl}${path}: expected 200, got ${response.status}`);
    return `${name} answers ${path} with content-encoding ${response.headers['content-encoding'] ?? 'identity'}, ${response.body.length} bytes`;
  } finally {
    agent.destroy();
  }
}
