import { setImmediate } from 'node:timers/promises';

/**
 * Synchronous work in slices: a walk's million lstats cost ~3 us each on this
 * thread when synchronous and 10-30 us through a busy threadpool, but a daemon
 * serving meanwhile must not stall. Call `due()` after each step; it gives the
 * event loop a turn once the slice has run `sliceMs`.
 */
export function createLoopSlices(sliceMs = DEFAULT_SLICE_MS): { due(): Promise<void> | undefined } {
  let startedMs = performance.now();
  return {
    due() {
      if (performance.now() - startedMs < sliceMs) return undefined;
      return setImmediate().then(() => {
        startedMs = performance.now();
      });
    },
  };
}

/** Longest a slice holds the event loop. */
export const DEFAULT_SLICE_MS = 5;
