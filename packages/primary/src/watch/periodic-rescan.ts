/**
 * Schedules the reconciling walk of the source tree (burst-reconcile.ts
 * `scan`): every `rescanMs` while every directory is watched (events can still
 * be lost: inotify's queue overflows, a directory moves while it is walked),
 * and every `fallbackScanMs` (or `rescanMs`, if shorter) once a watch limit is
 * reached and part of the tree has no watch at all. The next scan is timed
 * from the end of the previous one, so scans never overlap however long a
 * large tree takes.
 */
export interface PeriodicRescanOptions {
  /** 0: no periodic scan until degraded. */
  rescanMs: number;
  fallbackScanMs: number;
  scan(reason: 'periodic' | 'fallback'): Promise<void>;
  onIntervalChange(intervalMs: number): void;
}

export interface PeriodicRescan {
  /** A watch limit was reached: scan at the fallback interval from now on. */
  degrade(): void;
  close(): void;
}

export function createPeriodicRescan(options: PeriodicRescanOptions): PeriodicRescan {
  let degraded = false;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  let closed = false;

  const intervalMs = (): number =>
    degraded ? Math.min(options.fallbackScanMs, options.rescanMs > 0 ? options.rescanMs : Infinity) : options.rescanMs;

  function schedule(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    const ms = intervalMs();
    if (closed || ms <= 0) return;
    timer = setTimeout(fire, ms);
    timer.unref?.();
  }

  function fire(): void {
    timer = undefined;
    if (closed) return;
    running = true;
    options
      .scan(degraded ? 'fallback' : 'periodic')
      .finally(() => {
        running = false;
        schedule();
      })
      .catch(() => undefined); // scan reports its own errors
  }

  options.onIntervalChange(intervalMs());
  schedule();
  return {
    degrade() {
      if (degraded || closed) return;
      degraded = true;
      options.onIntervalChange(intervalMs());
      if (!running) schedule();
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
