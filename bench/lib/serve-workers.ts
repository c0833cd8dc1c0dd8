import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startNginx } from '../../test/helpers/nginx.js';
import type { BenchContext } from './context.js';
import { readPrimaryState, startMirror, waitForMirrorSeq } from './fleet.js';
import { figure, type Figure } from './report.js';
import { best, describeRound, errorsIn, runAlternatingRounds } from './serve-rounds.js';

const execFileAsync = promisify(execFile);

/**
 * The serve comparison with N workers on each side: the mirror with
 * `--workers N` (serving threads sharing one index) against nginx with
 * `worker_processes N`, same files, same wrk settings. Nothing is pinned: on
 * a machine with N cores wrk competes with the servers for them, alike for both.
 *
 * The mirror runs on a hard-linked copy of the bootstrapped mirror's objects
 * (immutable, replaced by rename, never written in place, so two stores may
 * share their files) and a real copy of its index (the log is appended in
 * place): it starts warm, without a second bootstrap, while the bench's own
 * mirror keeps its state for later benches.
 */
export async function serveWithWorkers(
  ctx: BenchContext,
  options: {
    workers: number;
    nginxRoot: string;
    paths: string[];
    mirrorDataDir: string;
    primary: { url: string; publishToken: string };
  },
): Promise<{ figures: Figure[]; notes: string[] }> {
  const { workers } = options;
  const dataDir = join(ctx.workDir, `mirror-data-${workers}-workers`);
  await execFileAsync('cp', ['-al', options.mirrorDataDir, dataDir]);
  await rm(join(dataDir, 'index'), { recursive: true, force: true });
  await execFileAsync('cp', ['-a', join(options.mirrorDataDir, 'index'), join(dataDir, 'index')]);
  // Its own identity: the primary tracks mirrors by id.
  await rm(join(dataDir, 'mirror-id'), { force: true });
  const mirror = await startMirror({
    primaryUrl: options.primary.url,
    dataDir,
    hotCacheMib: ctx.options.hotCacheMib,
    malloc: ctx.options.malloc,
    publishToken: options.primary.publishToken,
    mirrorId: `bench-mirror-${workers}-workers`,
    extraArgs: ['--workers', String(workers)],
  });
  const nginxPrefix = join(ctx.workDir, `nginx-prefix-${workers}-workers`);
  const nginx = await startNginx({ root: options.nginxRoot, prefix: nginxPrefix, workerProcesses: workers });
  try {
    // Serving what the bench's own mirror serves: the primary's head now (apply-one may have moved it).
    const head = await readPrimaryState(options.primary.url);
    await waitForMirrorSeq({ mirrorUrl: mirror.url, seq: head.seq, timeoutMs: 10 * 60_000, intervalMs: 50, logs: mirror.logs });
    const mirrorPid = mirror.child.pid;
    if (mirrorPid === undefined) throw new Error('mirror process has no pid');
    const rounds = await runAlternatingRounds(ctx, {
      nginx: { url: nginx.url, pids: await nginx.workerPids() },
      mirror: { url: mirror.url, pids: [mirrorPid] },
      paths: options.paths,
      pinned: false,
      nginxPrefix,
    });
    const nginxResult = best(rounds.nginx);
    const mirrorResult = best(rounds.mirror);
    const baseline = `nginx ${workers} workers gzip_static`;
    const notes = [
      `${workers} workers each (mirror --workers ${workers}, nginx worker_processes ${workers}), not pinned: wrk shares the cores with the server`,
      `CPU per request with ${workers} workers (all threads / all workers, by round): nginx ${rounds.cpuUsPerRequest.nginx.map((us) => us.toFixed(1)).join(', ')} µs; mirror ${rounds.cpuUsPerRequest.mirror.map((us) => us.toFixed(1)).join(', ')} µs`,
      describeRound(`nginx ${workers} workers`, nginxResult),
      describeRound(`mirror ${workers} workers`, mirrorResult),
    ];
    const figures = [
      figure({
        metric: `throughput, ${workers} workers`,
        unit: 'req/s',
        metasync: mirrorResult.requestsPerSec,
        baseline: { name: baseline, value: nginxResult.requestsPerSec },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x nginx',
        target: { text: '>= 1.0x nginx (equal workers)', on: 'ratio', atLeast: 1 },
      }),
      figure({
        metric: `latency p99, ${workers} workers`,
        unit: 'ms',
        metasync: mirrorResult.latencyP99Ms,
        baseline: { name: baseline, value: nginxResult.latencyP99Ms },
        ratioOf: 'metasync/baseline',
        ratioLabel: 'x nginx',
        target: { text: '<= 1.5x nginx', on: 'ratio', atMost: 1.5 },
      }),
      figure({
        metric: `failed responses, ${workers} workers, all rounds`,
        unit: 'req',
        metasync: errorsIn(rounds.mirror),
        baseline: { name: 'nginx', value: 0 },
        target: { text: '0', on: 'value', atMost: 0 },
      }),
    ];
    return { figures, notes };
  } finally {
    await nginx.stop();
    await mirror.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
