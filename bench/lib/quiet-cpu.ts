import { readProcCpuMs } from '../../test/helpers/proc-stats.js';
import type { BenchContext } from './context.js';

/**
 * Below this share of one core over a sample, all the daemons together count as idle (measured: a primary
 * re-walking its 100k-path source tree used ~13% of a core for minutes). Judged on the sum, not on each: six
 * daemons all making brotli variants on two cores each got about 30% of a core, and a 2 s sample where each
 * stayed under 25% let the 1M publish-visible run (2026-12-07) measure while every mirror was busy (load 10).
 */
const IDLE_SHARE = 0.25;
const SAMPLE_MS = 2_000;

/**
 * Waits until `pids` together used under 25% of a core over a 2 s sample, at most `maxMs`: after a
 * bootstrap the daemons make brotli variants in the background for a while (docs/operations.md,
 * "Compressed variants"), and a latency or throughput figure taken meanwhile measures that work too.
 * Returns how long it waited and whether they went quiet, for the bench's notes.
 */
export async function waitForQuietCpu(pids: readonly number[], maxMs: number): Promise<{ waitedMs: number; quiet: boolean }> {
  const started = performance.now();
  for (;;) {
    const before = await Promise.all(pids.map((pid) => readProcCpuMs(pid)));
    await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    const after = await Promise.all(pids.map((pid) => readProcCpuMs(pid)));
    const usedMs = after.reduce((sum, cpuMs, i) => sum + cpuMs - (before[i] ?? 0), 0);
    const quiet = usedMs < IDLE_SHARE * SAMPLE_MS;
    const waitedMs = performance.now() - started;
    if (quiet || waitedMs >= maxMs) return { waitedMs, quiet };
  }
}

/** Most a bench waits for the daemons' background work before it measures anyway (and says so). */
const SETTLE_MAX_MS = 15 * 60_000;

/** waitForQuietCpu for a bench's daemons (at most `maxMs`, default 15 min), logged; answers the note saying how long it waited. */
export async function settleDaemons(
  ctx: Pick<BenchContext, 'log'>,
  pids: readonly (number | undefined)[],
  maxMs = SETTLE_MAX_MS,
): Promise<string> {
  const live = pids.filter((pid): pid is number => pid !== undefined);
  ctx.log('waiting for the daemons to go idle (brotli variants made after the bootstrap)');
  const { waitedMs, quiet } = await waitForQuietCpu(live, maxMs);
  const daemons = live.length === 2 ? 'the primary and the mirror' : `the ${live.length} daemons`;
  return quiet
    ? `measured once ${daemons} were idle (waited ${(waitedMs / 1000).toFixed(0)} s for their background work)`
    : `not all of ${daemons} were idle after ${(waitedMs / 1000).toFixed(0)} s: measured anyway`;
}
