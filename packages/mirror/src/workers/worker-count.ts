import { availableParallelism } from 'node:os';

/** More serving threads than this buys nothing on any machine we run on, and each costs a heap and a hot cache. */
export const MAX_WORKERS = 64;

/** `--workers`: a count, or `auto` = the cores this process may use (at least 1, at most MAX_WORKERS). */
export function resolveWorkerCount(workers: number | 'auto', cores: () => number = availableParallelism): number {
  return workers === 'auto' ? Math.max(1, Math.min(MAX_WORKERS, cores())) : workers;
}
