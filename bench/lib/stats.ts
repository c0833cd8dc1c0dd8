/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN for none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

export function summarizeLatencies(samplesMs: readonly number[]): LatencySummary {
  const sum = samplesMs.reduce((total, value) => total + value, 0);
  return {
    count: samplesMs.length,
    p50Ms: percentile(samplesMs, 50),
    p90Ms: percentile(samplesMs, 90),
    p99Ms: percentile(samplesMs, 99),
    maxMs: samplesMs.length === 0 ? Number.NaN : Math.max(...samplesMs),
    meanMs: samplesMs.length === 0 ? Number.NaN : sum / samplesMs.length,
  };
}

/** Milliseconds since `startNs` (a process.hrtime.bigint() value). */
export function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

export function nowNs(): bigint {
  return process.hrtime.bigint();
}
