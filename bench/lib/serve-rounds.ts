import { join } from 'node:path';
import { readProcCpuMs } from '../../test/helpers/proc-stats.js';
import { runWrk, type WrkResult } from '../../test/helpers/wrk.js';
import type { BenchContext } from './context.js';

export const GZIP = { 'Accept-Encoding': 'gzip' } as const;

/** A server under wrk: its URL and the pids whose CPU time is its cost (nginx: its workers; the mirror: its process). */
export interface ServerUnderTest {
  url: string;
  pids: readonly number[];
}

export interface AlternatingRounds {
  nginx: WrkResult[];
  mirror: WrkResult[];
  /** CPU time (user + system) per request by round, µs. */
  cpuUsPerRequest: { nginx: number[]; mirror: number[] };
}

/**
 * `--serve-rounds` rounds, nginx then the mirror, alternating so that a burst
 * of outside load hits both alike. `pinned`: wrk runs on the load CPUs (the
 * servers were pinned by the caller); unpinned, everything shares all cores.
 * An nginx round with failures voids the comparison (it throws).
 */
export async function runAlternatingRounds(
  ctx: BenchContext,
  options: { nginx: ServerUnderTest; mirror: ServerUnderTest; paths: string[]; pinned: boolean; nginxPrefix: string },
): Promise<AlternatingRounds> {
  const rounds: AlternatingRounds = { nginx: [], mirror: [], cpuUsPerRequest: { nginx: [], mirror: [] } };
  const measureCpu = async (server: ServerUnderTest, into: number[]): Promise<WrkResult> => {
    const before = await cpuMsOf(server.pids);
    const result = await measure(ctx, { url: server.url, paths: options.paths, pinned: options.pinned });
    into.push((((await cpuMsOf(server.pids)) - before) * 1000) / Math.max(1, result.requests));
    return result;
  };
  for (let round = 0; round < ctx.options.serveRounds; round++) {
    const nginxRound = await measureCpu(options.nginx, rounds.cpuUsPerRequest.nginx);
    if (nginxRound.statusErrors + nginxRound.socketErrors > 0) {
      throw new Error(
        `the nginx baseline failed ${nginxRound.statusErrors} responses with status >= 400 and ${nginxRound.socketErrors} socket errors (see ${join(options.nginxPrefix, 'error.log')}): the comparison would be void`,
      );
    }
    rounds.nginx.push(nginxRound);
    rounds.mirror.push(await measureCpu(options.mirror, rounds.cpuUsPerRequest.mirror));
  }
  return rounds;
}

async function cpuMsOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await readProcCpuMs(pid);
  return total;
}

/** The round with the most requests per second: the least disturbed by the rest of the machine. */
export function best(rounds: readonly WrkResult[]): WrkResult {
  const [first, ...rest] = rounds;
  if (first === undefined) throw new Error('no wrk rounds were run');
  return rest.reduce((winner, round) => (round.requestsPerSec > winner.requestsPerSec ? round : winner), first);
}

export function errorsIn(rounds: readonly WrkResult[]): number {
  return rounds.reduce((total, result) => total + result.statusErrors + result.socketErrors, 0);
}

export function describeRound(name: string, result: WrkResult): string {
  return `${name}: ${result.requests} requests in ${result.durationSec.toFixed(1)} s, p50 ${result.latencyP50Ms.toFixed(2)} ms, p90 ${result.latencyP90Ms.toFixed(2)} ms, max ${result.latencyMaxMs.toFixed(1)} ms, ${(result.bytesPerSec / 2 ** 20).toFixed(1)} MiB/s, ${result.statusErrors} status >= 400, ${result.socketErrors} socket errors`;
}

async function measure(ctx: BenchContext, options: { url: string; paths: string[]; pinned: boolean }): Promise<WrkResult> {
  const common = {
    url: options.url,
    paths: options.paths,
    connections: ctx.options.connections,
    threads: ctx.options.wrkThreads,
    headers: GZIP,
    seed: ctx.options.seed,
    ...(options.pinned ? { cpuList: ctx.cpu.loadCpus } : {}),
  };
  if (ctx.options.wrkWarmupSeconds > 0) await runWrk({ ...common, durationSec: ctx.options.wrkWarmupSeconds, seed: ctx.options.seed + 1 });
  ctx.log(`wrk ${ctx.options.wrkSeconds} s against ${options.url}`);
  return await runWrk({ ...common, durationSec: ctx.options.wrkSeconds });
}
