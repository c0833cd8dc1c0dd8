/**
 * What the source watcher reports about itself, read by /metrics and the
 * status page: how many directories it watches, whether it has fallen back to
 * scanning (and why), its start-up reconcile and its last scan. main.ts creates one and hands it to
 * both the watcher and the app, because the app is built before the watcher
 * has walked the tree.
 */
/** overflow: inotifywait reported that the kernel's event queue overflowed (events were dropped). */
export type ScanReason = 'burst' | 'periodic' | 'fallback' | 'overflow';

export interface SourceScan {
  reason: ScanReason;
  files: number;
  touched: number;
  removed: number;
  durationMs: number;
  atMs: number;
}

/** The start-up reconcile: running from `startedAtMs` until `finished` is set. A restarted primary listens meanwhile. */
export interface SourceStartup {
  startedAtMs: number;
  finished?: { atMs: number; durationMs: number; files: number; filesRead: number; unchanged: number };
}

export interface SourceWatchSnapshot {
  /** Undefined before the watcher starts its first walk. */
  startup: SourceStartup | undefined;
  /** Directories with a watch (one inotify watch each on Linux). */
  watches: number;
  /** Set once a watch limit was hit: the tree is then scanned every `scanIntervalMs`. */
  degraded: { reason: string; sinceMs: number; directory: string } | undefined;
  scanIntervalMs: number;
  lastScan: SourceScan | undefined;
  scans: Readonly<Record<ScanReason, number>>;
  /** Source files read since start (start-up walk, events, rescans): flat while the tree is unchanged. */
  filesRead: number;
}

export interface SourceWatchStatus {
  snapshot(): SourceWatchSnapshot;
  setWatches(count: number): void;
  setScanIntervalMs(ms: number): void;
  /** Only the first call counts: the reason the watcher first stopped adding watches. */
  markDegraded(degraded: { reason: string; sinceMs: number; directory: string }): void;
  recordScan(scan: SourceScan): void;
  startupStarted(atMs: number): void;
  startupFinished(finished: NonNullable<SourceStartup['finished']>): void;
  recordRead(): void;
}

export function createSourceWatchStatus(): SourceWatchStatus {
  let watches = 0;
  let degraded: SourceWatchSnapshot['degraded'];
  let scanIntervalMs = 0;
  let lastScan: SourceScan | undefined;
  const scans: Record<ScanReason, number> = { burst: 0, periodic: 0, fallback: 0, overflow: 0 };
  let startup: SourceStartup | undefined;
  let filesRead = 0;
  return {
    snapshot: () => ({ startup, watches, degraded, scanIntervalMs, lastScan, scans: { ...scans }, filesRead }),
    recordRead() {
      filesRead++;
    },
    startupStarted(atMs) {
      startup = { startedAtMs: atMs };
    },
    startupFinished(finished) {
      if (startup !== undefined) startup = { ...startup, finished };
    },
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
