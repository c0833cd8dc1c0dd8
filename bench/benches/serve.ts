import { join } from 'node:path';
import { startNginx } from '../../test/helpers/nginx.js';
import { readProcMemory } from '../../test/helpers/proc-stats.js';
import type { Bench } from '../lib/bench.js';
import { pinProcess } from '../lib/cpu.js';
import { gcPausesBetween, readGcPauses, type GcPauses } from '../lib/gc.js';
import { createKeepAliveAgent, httpRequest } from '../lib/http.js';
import { figure } from '../lib/report.js';
import { best, describeRound, errorsIn, GZIP, runAlternatingRounds } from '../lib/serve-rounds.js';
import { serveWithWorkers } from '../lib/serve-workers.js';
import { settleDaemons } from '../lib/quiet-cpu.js';
import { buildStaticRoot } from '../lib/static-root.js';
import { elapsedMs, nowNs } from '../lib/stats.js';

/** The multi-core comparison: the mirror's --workers against nginx's worker_processes. */
const SERVE_WORKERS = 2;

/**
 * Random p2 files with `Accept-Encoding: gzip` over 64 keep-alive connections:
 * the mirror against nginx (1 worker, `gzip_static on`) serving the same files
 * with precompressed siblings, same wrk settings, same path sequence (seeded).
 * With two or more cores each server gets core 0 and wrk the others.
 * Then the same with 2 workers on each side, unpinned (bench/lib/serve-workers.ts).
 */
export const serveBench: Bench = async (ctx) => {
  const tree = await ctx.large.corpus();
  const primary = await ctx.large.primary();
  const mirror = await ctx.large.mirror();
  const settled = await settleDaemons(ctx, [primary.daemon.child.pid, mirror.daemon.child.pid]);
  const root = join(ctx.workDir, 'nginx-root');
  ctx.log(`writing the nginx root (${tree.p2Paths.length} files + .gz siblings)`);
  const rootStartNs = nowNs();
  // The .gz siblings link the mirror's own gzip files: the same bytes from the same inode (static-root.ts).
  const built = await buildStaticRoot({
    sourceDir: tree.dir,
    paths: tree.p2Paths,
    rootDir: root,
    mirrorObjectsDir: join(mirror.dataDir, 'objects'),
  });
  const rootMs = elapsedMs(rootStartNs);
  const nginx = await startNginx({ root, prefix: join(ctx.workDir, 'nginx-prefix') });
  const paths = tree.p2Paths.map((path) => `/${path}`);
  const notes: string[] = [
    settled,
    `nginx root written in ${(rootMs / 1000).toFixed(1)} s: ${built.linkedGzip} .gz siblings hard links to the mirror's gzip files (the same bytes it serves), ${built.compressed} compressed at level 9; wrk picks among ${paths.length} p2 paths, seeded identically for both servers`,
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
    const gcBefore = await mirrorGcPauses(mirror.url);
    const rounds = await runAlternatingRounds(ctx, {
      nginx: { url: nginx.url, pids: nginxWorkers.slice(0, 1) },
      mirror: { url: mirror.url, pids: [mirrorPid] },
      paths,
      pinned: ctx.cpu.pin,
      nginxPrefix: join(ctx.workDir, 'nginx-prefix'),
    });
    const nginxRounds = rounds.nginx;
    const mirrorRounds = rounds.mirror;
    // CPU time per request survives a busy machine better than req/s: it is noted per round.
    const cpuUsPerRequest = rounds.cpuUsPerRequest;
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
    const mirrorErrors = errorsIn(mirrorRounds);
    if (ctx.options.serveRounds > 1) {
      notes.push(
        `best of ${ctx.options.serveRounds} alternating rounds per server (req/s by round: nginx ${nginxRounds.map((r) => r.requestsPerSec.toFixed(0)).join(', ')}; mirror ${mirrorRounds.map((r) => r.requestsPerSec.toFixed(0)).join(', ')})`,
      );
    }
    if (ctx.cpu.pin) for (const pid of [mirrorPid, primaryPid]) await pinProcess(pid, ctx.cpu.allCpus);
    notes.push(describeRound('nginx', nginxResult), describeRound('mirror', mirrorResult));
    // The second nginx and the worker mirror come up only now: the one-core rounds ran alone.
    await nginx.stop();
    const multi = await serveWithWorkers(ctx, {
      workers: SERVE_WORKERS,
      nginxRoot: root,
      paths,
      mirrorDataDir: mirror.dataDir,
      primary: { url: primary.url, publishToken: primary.publishToken },
    });
    notes.push(...multi.notes);
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
        ...multi.figures,
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
