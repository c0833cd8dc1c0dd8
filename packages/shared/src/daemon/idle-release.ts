import { getHeapStatistics } from 'node:v8';
import { releaseMemory } from './memory-release.js';

/**
 * Gives a burst's heap back once the daemon goes quiet. Serving a burst of
 * requests grows V8's heap, and V8 shrinks it again only when allocation goes
 * on; an idle mirror kept ~190 MB of heap for ~45 MB live after a serve run at
 * 100k paths. Every `intervalMs` this looks at the process's CPU share since
 * the last look: when it is below `idleCpuShare` (nothing much is being served)
 * and the heap holds more than `minSlackBytes` beyond what is used, it runs one
 * full collection. A busy daemon is never paused by it.
 */
export interface IdleReleaseOptions {
  intervalMs?: number;
  idleCpuShare?: number;
  minSlackBytes?: number;
}

export interface IdleSample {
  /** CPU time (user + system) over wall time since the last look, 0..cores. */
  cpuShare: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
}

/** Pure: whether a look at `sample` should run a collection. */
export function idleReleaseDue(sample: IdleSample, options: Required<IdleReleaseOptions>): boolean {
  return sample.cpuShare < options.idleCpuShare && sample.heapTotalBytes - sample.heapUsedBytes > options.minSlackBytes;
}

export function startIdleRelease(options: IdleReleaseOptions = {}): () => void {
  const settings: Required<IdleReleaseOptions> = {
    intervalMs: options.intervalMs ?? 5_000,
    idleCpuShare: options.idleCpuShare ?? 0.05,
    minSlackBytes: options.minSlackBytes ?? 32 * 2 ** 20,
  };
  let lastCpu = process.cpuUsage();
  let lastMs = performance.now();
  const timer = setInterval(() => {
    const cpu = process.cpuUsage(lastCpu);
    const nowMs = performance.now();
    const cpuShare = (cpu.user + cpu.system) / 1000 / Math.max(1, nowMs - lastMs);
    const heap = getHeapStatistics();
    if (idleReleaseDue({ cpuShare, heapTotalBytes: heap.total_heap_size, heapUsedBytes: heap.used_heap_size }, settings)) releaseMemory();
    lastCpu = process.cpuUsage();
    lastMs = performance.now();
  }, settings.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
