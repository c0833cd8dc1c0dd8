import { describe, expect, it } from 'vitest';
import { createLoopSlices } from './loop-slices.js';

/** Busy-waits `ms` (a synchronous step). */
function work(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

describe('loop slices', () => {
  it('hold the loop about one slice in all, however many callers share them', async () => {
    const slices = createLoopSlices(5);
    // Counted in steps rather than milliseconds, so a loaded machine's preemption cannot fail or pass it.
    let stepsSinceTick = 0;
    let mostStepsInOneTurn = 0;
    let ticking = true;
    const tick = (): void => {
      stepsSinceTick = 0;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    // 8 callers (the watcher's reads in the main thread), 400 steps of 0.5 ms: a slice of 5 ms is ~10 steps,
    // and each caller woken by a turn takes one step before it looks again; a slice per caller would be ~80.
    let steps = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (steps < 400) {
          await slices.turn();
          steps++;
          mostStepsInOneTurn = Math.max(mostStepsInOneTurn, ++stepsSinceTick);
          work(0.5);
        }
      }),
    );
    ticking = false;
    expect(mostStepsInOneTurn).toBeLessThanOrEqual(20); // ~10 in the slice, up to 8 the turn woke
  });
});
