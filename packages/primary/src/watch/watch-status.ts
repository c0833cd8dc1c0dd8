/**
 * What the source watcher reports about itself, read by /metrics and the
 * status page: how many directories it watches, whether it has fallen back to
 * scanning (and why), and its last scan. main.ts creates one and hands it to
 * both the watcher and the app, because the app is built before the watcher
 * has walked the tree.
 */
export type ScanReason = 'burst' | 'periodic' | 'fallback';

export interface SourceScan {
  reason: ScanReason;
  files: number;
  touched: number;
  removed: number;
  durationMs: number;
  atMs: number;
}

export interface SourceWatchSnapshot {
  /** Directories with a watch (one inotify watch each on Linux). */
  watches: number;
  /** Set once a watch limit was hit: the tree is then scanned every `scanIntervalMs`. */
  degraded: { reason: string; sinceMs: number; directory: string } | undefined;
  scanIntervalMs: number;
  lastScan: SourceScan | undefined;
  scans: Readonly<Record<ScanReason, number>>;
}

export interface SourceWatchStatus {
  snapshot(): SourceWatchSnapshot;
  setWatches(count: number): void;
  setScanIntervalMs(ms: number): void;
  /** Only the first call counts: the reason the watcher first stopped adding watches. */
  markDegraded(degraded: { reason: string; sinceMs: number; directory: string }): void;
  recordScan(scan: SourceScan): void;
}

export function createSourceWatchStatus(): SourceWatchStatus {
  let watches = 0;
  let degraded: SourceWatchSnapshot['degraded'];
  let scanIntervalMs = 0;
  let lastScan: SourceScan | undefined;
  const scans: Record<ScanReason, number> = { burst: 0, periodic: 0, fallback: 0 };
  return {
    snapshot: () => ({ watches, degraded, scanIntervalMs, lastScan, scans: { ...scans } }),
    setWatches(count) {
      watches = count;
    },
    setScanIntervalMs(ms) {
      scanIntervalMs = ms;
    },
    markDegraded(next) {
      degraded ??= next;
    },
    recordScan(scan) {
      lastScan = scan;
      scans[scan.reason]++;
    },
  };
}
