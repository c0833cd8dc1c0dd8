import { setImmediate } from 'node:timers/promises';

/**
 * Synchronous work in slices: a walk's million lstats cost ~3 us each on this
 * thread when synchronous and 10-30 us through a busy threadpool, but a daemon
 * serving meanwhile must not stall. Await `turn()` before each step; once the
 * slice has run `sliceMs`, it gives the event loop a turn.
 *
 * Shared by concurrent callers (the watcher's reads in the main thread, 8 at
 * once): they wait for the same turn, and each checks again before its next
 * step, so a slice is 5 ms for all of them together (plus one step each of
 * the callers the turn woke), not 5 ms each.
 */
export function createLoopSlices(sliceMs = DEFAULT_SLICE_MS): { turn(): Promise<void> | undefined } {
  let startedMs = performance.now();
  let pending: Promise<void> | undefined;

  function due(): Promise<void> | undefined {
    if (pending !== undefined) return pending;
    if (performance.now() - startedMs < sliceMs) return undefined;
    pending = setImmediate().then(() => {
      startedMs = performance.now();
      pending = undefined;
    });
    return pending;
  }

  async function waitTurns(first: Promise<void>): Promise<void> {
    for (let wait: Promise<void> | undefined = first; wait !== undefined; wait = due()) await wait;
  }

  return {
    // Undefined while the slice lasts: a hot loop's `await undefined` allocates nothing.
    turn() {
      const wait = due();
      return wait === undefined ? undefined : waitTurns(wait);
    },
  };
}

/** Longest a slice holds the event loop. */
export const DEFAULT_SLICE_MS = 5;
