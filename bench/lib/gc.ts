/**
 * GC pauses of a daemon, from prom-client's default `nodejs_gc_duration_seconds`
 * histogram (perf_hooks 'gc' entries, labelled by kind) on its /metrics: read
 * before and after a run, the difference is what the run cost in pauses.
 */
export interface GcPauses {
  count: number;
  totalMs: number;
  /** Pauses longer than 10 ms and 100 ms (from the histogram's 0.01 and 0.1 buckets). */
  over10ms: number;
  over100ms: number;
}

const METRIC = 'nodejs_gc_duration_seconds';

/** Sums every kind's series of the histogram in a Prometheus text exposition. */
export function readGcPauses(text: string): GcPauses {
  let count = 0;
  let sumS = 0;
  let upTo10ms = 0;
  let upTo100ms = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(METRIC)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (!Number.isFinite(value)) continue;
    if (line.startsWith(`${METRIC}_count`)) count += value;
    else if (line.startsWith(`${METRIC}_sum`)) sumS += value;
    else if (line.startsWith(`${METRIC}_bucket`) && line.includes('le="0.01"')) upTo10ms += value;
    else if (line.startsWith(`${METRIC}_bucket`) && line.includes('le="0.1"')) upTo100ms += value;
  }
  return { count, totalMs: sumS * 1000, over10ms: count - upTo10ms, over100ms: count - upTo100ms };
}

export function gcPausesBetween(before: GcPauses, after: GcPauses): GcPauses {
  return {
    count: after.count - before.count,
    totalMs: after.totalMs - before.totalMs,
    over10ms: after.over10ms - before.over10ms,
    over100ms: after.over100ms - before.over100ms,
  };
}
