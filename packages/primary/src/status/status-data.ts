import type { MirrorRegistry, VisibleSample } from '../mirrors/registry.js';

export interface StatusMirror {
  mirrorId: string;
  region: string;
  url: string;
  seq: number;
  lagSeq: number;
  lagMs: number;
  connected: boolean;
  /** Connected and at most `staleAfterMs` behind: what the status page shows as healthy. */
  healthy: boolean;
  lastSeenAt: number;
}

export interface StatusData {
  seq: number;
  time: number;
  now: number;
  staleAfterMs: number;
  mirrors: StatusMirror[];
  visible: { samples: VisibleSample[]; p50Ms: number | null; p99Ms: number | null };
}

/** Nearest-rank percentile of already sorted values; null for none. */
export function percentile(sorted: readonly number[], fraction: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[rank] ?? null;
}

/** The status page's one data call: mirrors with health, and recent publish-to-visible latency. */
export function collectStatus(options: { registry: MirrorRegistry; nowMs: number; staleAfterMs: number; maxSamples: number }): StatusData {
  const { registry, nowMs, staleAfterMs } = options;
  const listed = registry.list(nowMs);
  const samples = registry.recentVisibleMs().slice(-options.maxSamples);
  const sorted = samples.map((s) => s.latencyMs).sort((a, b) => a - b);
  return {
    seq: listed.seq,
    time: listed.time,
    now: nowMs,
    staleAfterMs,
    mirrors: listed.mirrors.map((mirror) => ({ ...mirror, healthy: mirror.connected && mirror.lagMs <= staleAfterMs })),
    visible: { samples: [...samples], p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) },
  };
}
